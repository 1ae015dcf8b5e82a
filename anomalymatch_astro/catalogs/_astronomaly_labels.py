"""Labels given in Astronomaly, read back as ``{original id: "anomaly" | "normal"}``."""

import csv
import logging
import warnings
from pathlib import Path

from ..utils.exceptions import AnomalyMatchWarning, InvalidInputError, LabelError, UnknownIDError

__all__ = ["import_astronomaly_labels"]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------- import
def _read_csv(path):
    """All rows of a CSV file of the bundle, or `LabelError` when it is not a readable CSV."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [row for row in csv.reader(f)]
    except (csv.Error, UnicodeDecodeError) as exc:  # e.g. a field beyond csv.field_size_limit
        msg = f"{str(path)!r} is not a readable CSV file ({exc}); export the bundle from Astronomaly again"
        raise LabelError(msg) from exc


def _read_id_map(bundle):
    path = Path(bundle) / "metadata.csv"
    if not path.exists():
        return None
    header, *rows = _read_csv(path) or [[]]
    if "orig_id" not in header:
        return None
    k = header.index("orig_id")
    return {row[0]: row[k] for row in rows if row}


def import_astronomaly_labels(path, *, anomaly_min=4, normal_max=1, id_map=None):
    """Read the labels given in Astronomaly back as ``{original id: "anomaly" | "normal"}``.

    Parameters
    ----------
    path : str or os.PathLike
        The bundle folder (its ``astronomaly_output/ml_scores.csv`` is read, else its
        ``ml_scores.csv``) or an ``ml_scores.csv`` file.
    anomaly_min : int, optional
        ``human_label`` values from this up are anomalies (Astronomaly labels 0..5).
    normal_max : int, optional
        ``human_label`` values up to this are normals; values in between (and -1) stay
        unlabelled.
    id_map : mapping, optional
        Astronomaly id -> original id.  Default: the ``orig_id`` column of the bundle's
        ``metadata.csv``; ids are returned unchanged (with a warning) when there is none.

    Returns
    -------
    dict
        ``{original id: "anomaly" | "normal"}``; pass it to
        `~anomalymatch_astro.ActiveLearningSession.label` or ``fit``.

    Examples
    --------
    >>> from anomalymatch_astro.catalogs import import_astronomaly_labels
    >>> import_astronomaly_labels("bundle")  # doctest: +SKIP
    {'007': 'anomaly', 'obj12': 'normal'}
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / "astronomaly_output" / "ml_scores.csv", path / "ml_scores.csv"]
        scores_path = next((c for c in candidates if c.exists()), None)
        if scores_path is None:
            msg = f"{str(path)!r} holds no ml_scores.csv (looked for {[str(c) for c in candidates]})"
            raise LabelError(msg)
        bundle = path
    else:
        if not path.exists():
            msg = f"Astronomaly scores file {str(path)!r} does not exist"
            raise LabelError(msg)
        scores_path = path
        bundle = path.parent.parent if path.parent.name == "astronomaly_output" else path.parent
    if (
        not (isinstance(anomaly_min, (int, float)) and isinstance(normal_max, (int, float)))
        or anomaly_min <= normal_max
    ):
        msg = f"anomaly_min ({anomaly_min}) must be larger than normal_max ({normal_max})"
        raise InvalidInputError(msg)
    if id_map is None:
        id_map = _read_id_map(bundle)
        if id_map is None:
            warnings.warn(
                f"no metadata.csv with an orig_id column next to {str(scores_path)!r}; "
                "returning Astronomaly's ids unchanged",
                AnomalyMatchWarning,
                stacklevel=2,
            )
    header, *rows = _read_csv(scores_path) or [None]
    if not header or "human_label" not in header:
        msg = f"{str(scores_path)!r} has no human_label column (header {header}); is it Astronomaly's ml_scores.csv?"
        raise LabelError(msg)
    k = header.index("human_label")
    rows = [row for row in rows if row]
    result = {}
    unknown = []
    for row in rows:
        text = row[k].strip() if k < len(row) else ""
        if text in ("", "nan", "NaN"):
            continue
        try:
            value = float(text)
        except ValueError as exc:
            msg = f"human_label {text!r} of id {row[0]!r} in {str(scores_path)!r} is not a number"
            raise LabelError(msg, ids=[row[0]]) from exc
        if value < 0:
            continue
        if value >= anomaly_min:
            word = "anomaly"
        elif value <= normal_max:
            word = "normal"
        else:
            continue
        obj_id = row[0]
        if id_map is not None:
            if obj_id not in id_map:
                unknown.append(obj_id)
                continue
            obj_id = str(id_map[obj_id])
        result[obj_id] = word
    if unknown:
        msg = f"{len(unknown)} labelled id(s) in {str(scores_path)!r} are not in the bundle's id map: {unknown[:10]}"
        raise UnknownIDError(msg, ids=unknown)
    log.info("imported %d labels from %s", len(result), scores_path)
    return result
