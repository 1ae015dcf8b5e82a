"""The Astronomaly bundle: export candidates for Astronomaly's labelling UI and import its labels.

Astronomaly (Lochner & Bassett 2021) has no import format; its front-end runs a Python
script whose ``run_pipeline()`` returns the dataset, features, scores, a 2-D map and an
active-learning object.  `export_astronomaly` writes a folder in Astronomaly's own
conventions plus such a loader script::

    bundle/
      images/<id>.png          Lupton colour composite of each cutout (north up)
      metadata.csv             index ``id``; orig_id, ra, dec, ra_str, dec_str, p_anomaly, bands, ...
      features.parquet         index ``id``; float64 feature columns "0".."D-1"
      ml_scores.csv            index ``id``; ``score`` = 5 * P(anomaly), ``human_label`` -1 / 0 / 5
      visualisation.parquet    index ``id``; float64 columns "0" and "1" (default: PCA of the features)
      astronomaly_pipeline.py  the loader

Labels given in Astronomaly land in ``bundle/astronomaly_output/ml_scores.csv``;
`import_astronomaly_labels` turns them back into ``{original id: "anomaly" | "normal"}``.
"""

import csv
import json
import logging
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
from astropy import units as u

from ..utils._labels import label_word, parse_labels
from ..utils.exceptions import AnomalyMatchWarning, InvalidInputError, LabelError, UnknownIDError

__all__ = ["export_astronomaly", "import_astronomaly_labels", "safe_ids", "IMAGE_FORMATS"]

log = logging.getLogger(__name__)

#: Image formats Astronomaly's ImageThumbnailsDataset reads (``.fits.gz``/``.fits.fz`` are skipped by it).
IMAGE_FORMATS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff", "fits")
#: Columns never written to metadata.csv: Astronomaly renames every id when it sees ``objid``, and
#: the loader drops file-name columns before handing the metadata to Astronomaly.
_FORBIDDEN_METADATA = {"objid", "filename", "file", "path", "filepath", "file_name"}
_BUNDLE_FILES = (
    "metadata.csv",
    "features.parquet",
    "ml_scores.csv",
    "visualisation.parquet",
    "astronomaly_pipeline.py",
)
_ID_PREFIX = "am_"
_NUMBER_LIKE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^(nan|inf|infinity)$", re.IGNORECASE)


# ----------------------------------------------------------------------------------------- ids
def safe_ids(ids):
    """Ids that survive Astronomaly: usable as file stems, never numbers, no leading zeros.

    Every id becomes ``"am_" + id`` with characters other than letters, digits, ``-`` and
    ``_`` replaced by ``_``; clashes (also ones that differ only in case, for
    case-insensitive file systems) get a ``_2``, ``_3`` ... suffix.

    Parameters
    ----------
    ids : sequence of str
        The original (unique) ids.

    Returns
    -------
    list of str
        The safe ids, in the same order.

    Examples
    --------
    >>> from anomalymatch_astro.catalogs import safe_ids
    >>> safe_ids(["007", "1.5e3", "NGC 4993", "a/b"])
    ['am_007', 'am_1_5e3', 'am_NGC_4993', 'am_a_b']
    """
    out, seen = [], set()
    for obj_id in map(str, ids):
        base = _ID_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "_", obj_id)[:100]
        candidate, k = base, 1
        while candidate.lower() in seen:
            k += 1
            candidate = f"{base}_{k}"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def _is_safe(obj_id):
    return (
        bool(obj_id)
        and not _NUMBER_LIKE.match(obj_id)
        and not obj_id[0].isdigit()
        and re.fullmatch(r"[A-Za-z0-9_-]+", obj_id) is not None
    )


# ----------------------------------------------------------------------------------------- inputs
def _features_array(features, ids):
    """(names, float64 array (N, D)) from an array, or a Table / mapping with one column per feature."""
    from astropy.table import Table

    if isinstance(features, Table):
        names = [n for n in features.colnames if n != "id"]
        if "id" in features.colnames:
            order = {str(i): k for k, i in enumerate(features["id"])}
            missing = [i for i in ids if i not in order]
            if missing:
                msg = f"{len(missing)} object(s) have no features: {missing[:10]}"
                raise UnknownIDError(msg, ids=missing)
            rows = np.array([order[i] for i in ids])
        else:
            rows = np.arange(len(features))
        array = (
            np.column_stack([np.asarray(features[n], dtype=np.float64)[rows] for n in names])
            if names
            else np.zeros((len(rows), 0))
        )
    else:
        array = np.asarray(features, dtype=np.float64)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            msg = f"features must be a 2-d array (N, D), got shape {array.shape}"
            raise InvalidInputError(msg)
        names = [str(k) for k in range(array.shape[1])]
    if array.shape[0] != len(ids):
        msg = f"features have {array.shape[0]} rows for {len(ids)} cutouts; give one row per cutout"
        raise InvalidInputError(msg)
    if array.shape[1] == 0:
        msg = "features have no columns; Astronomaly's active learning needs at least one feature"
        raise InvalidInputError(msg)
    bad = ~np.all(np.isfinite(array), axis=1)
    if np.any(bad):
        bad_ids = [ids[i] for i in np.flatnonzero(bad)]
        msg = (
            f"{len(bad_ids)} object(s) have NaN or infinite features: {bad_ids[:10]}. Astronomaly "
            "crashes on them; impute them (e.g. with the column median) or leave those objects out "
            "of the export"
        )
        raise InvalidInputError(msg)
    return [str(n) for n in names], array


def _visualisation_array(visualisation, features, ids):
    """(row indices, float64 (M, 2)) of the 2-D map."""
    from astropy.table import Table

    if visualisation is None:
        from sklearn.decomposition import PCA

        n, d = features.shape
        coords = np.zeros((n, 2))
        k = min(2, d, n)
        if k > 0 and n > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # constant features: zero variance
                coords[:, :k] = PCA(n_components=k, random_state=0).fit_transform(features)
        coords = np.nan_to_num(coords)
        return np.arange(n), coords
    if isinstance(visualisation, Table):
        cols = [c for c in visualisation.colnames if c != "id"]
        if "id" not in visualisation.colnames or len(cols) != 2:
            msg = "a visualisation Table needs an 'id' column and exactly two coordinate columns"
            raise InvalidInputError(msg)
        index = {obj_id: k for k, obj_id in enumerate(ids)}
        vis_ids = [str(i) for i in visualisation["id"]]
        unknown = [i for i in vis_ids if i not in index]
        if unknown:
            msg = (
                f"{len(unknown)} visualisation id(s) are not among the exported objects: {unknown[:10]}; "
                "Astronomaly's map view crashes on them"
            )
            raise UnknownIDError(msg, ids=unknown)
        rows = np.array([index[i] for i in vis_ids], dtype=np.int64)
        coords = np.column_stack([np.asarray(visualisation[c], dtype=np.float64) for c in cols])
    else:
        coords = np.asarray(visualisation, dtype=np.float64)
        if coords.shape != (len(ids), 2):
            msg = f"visualisation must have shape (N, 2) = ({len(ids)}, 2), got {coords.shape}"
            raise InvalidInputError(msg)
        rows = np.arange(len(ids))
    keep = np.all(np.isfinite(coords), axis=1)
    if not np.all(keep):
        log.warning("dropping %d non-finite points from the visualisation", int((~keep).sum()))
    return rows[keep], coords[keep]


# ----------------------------------------------------------------------------------------- writers
def _pandas_metadata(index_name, columns):
    """The ``pandas`` schema metadata that makes ``pandas.read_parquet`` restore a str index."""
    import pyarrow as pa

    cols = [
        {"name": c, "field_name": c, "pandas_type": "float64", "numpy_type": "float64", "metadata": None}
        for c in columns
    ]
    cols.append(
        {
            "name": index_name,
            "field_name": index_name,
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": None,
        }
    )
    return json.dumps(
        {
            "index_columns": [index_name],
            "column_indexes": [
                {
                    "name": None,
                    "field_name": None,
                    "pandas_type": "unicode",
                    "numpy_type": "object",
                    "metadata": {"encoding": "UTF-8"},
                }
            ],
            "columns": cols,
            "creator": {"library": "pyarrow", "version": pa.__version__},
            "pandas_version": "2.0.0",
        }
    )


def _write_frame_parquet(path, ids, names, values):
    """A parquet file that pandas reads as a DataFrame indexed by ``id`` (str), float64 columns ``names``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = [
        pa.array(np.ascontiguousarray(values[:, k], dtype=np.float64), type=pa.float64()) for k in range(len(names))
    ]
    arrays.append(pa.array([str(i) for i in ids], type=pa.string()))
    schema = pa.schema(
        [pa.field(n, pa.float64()) for n in names] + [pa.field("id", pa.string())],
        metadata={b"pandas": _pandas_metadata("id", names).encode()},
    )
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)


def _fmt_float(value):
    return "" if not np.isfinite(value) else repr(float(value))


def _write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _metadata_columns(cutouts, scores, labels):
    """Display columns of metadata.csv after the id: (name, list of str values)."""
    table = cutouts.table
    n = len(cutouts)
    cols = [("orig_id", [str(i) for i in cutouts.ids])]
    coords = cutouts.coords
    if coords is not None:
        icrs = coords.icrs
        ra, dec = icrs.ra.to_value(u.deg), icrs.dec.to_value(u.deg)
        cols += [
            ("ra", [_fmt_float(v) for v in ra]),
            ("dec", [_fmt_float(v) for v in dec]),
            ("ra_str", [f"{v:.6f}" for v in ra]),
            ("dec_str", [f"{v:+.6f}" for v in dec]),
            ("radec_hms", list(icrs.to_string("hmsdms", sep=":", precision=2))),
        ]
    cols.append(("p_anomaly", [f"{p:.4f}" for p in scores]))
    cols.append(("label", [label_word(labels[i]) if i in labels else "" for i in cutouts.ids]))
    cols.append(("bands", [",".join(cutouts.bands)] * n))
    taken = {c for c, _ in cols} | {"id"}
    for name in table.colnames:
        if name in ("id", "ra", "dec") or name in taken:
            continue
        col = table[name]
        if getattr(col, "ndim", 1) != 1 or getattr(col, "dtype", None) is None or col.dtype.kind not in "biufUS":
            continue  # SkyCoord, WCS headers, vectors: not for display
        out_name = f"orig_{name}" if name.lower() in _FORBIDDEN_METADATA else name
        values = np.asarray(getattr(col, "value", col))
        if values.dtype.kind == "f":
            text = [_fmt_float(v) for v in values]
        elif values.dtype.kind == "S":
            text = [v.decode("utf-8", "replace") for v in values]
        else:
            text = [str(v) for v in values]
        cols.append((out_name, text))
        taken.add(out_name)
    return cols


def _save_image(path, cutout, image_format):
    if image_format == "fits":
        from astropy.io import fits

        fits.PrimaryHDU(np.asarray(cutout, dtype=np.float32)).writeto(path, overwrite=True)
        return
    import matplotlib.image

    from ..normalization import lupton_rgb

    with np.errstate(divide="ignore", invalid="ignore"):  # astropy's Lupton divides by 0 on empty sky
        rgb = np.nan_to_num(lupton_rgb(cutout))
    matplotlib.image.imsave(path, np.clip(rgb, 0, 1), origin="lower", format=image_format)


def _clear_bundle(directory, overwrite):
    if directory.exists() and not directory.is_dir():
        msg = f"{str(directory)!r} exists and is not a folder"
        raise InvalidInputError(msg)
    present = [name for name in (*_BUNDLE_FILES, "images", "astronomaly_output") if (directory / name).exists()]
    if present and not overwrite:
        msg = (
            f"{str(directory)!r} already holds an Astronomaly bundle ({', '.join(present)}); pass "
            "overwrite=True to replace it (import its labels first with import_astronomaly_labels: "
            "overwriting deletes astronomaly_output/)"
        )
        raise InvalidInputError(msg)
    for name in present:
        target = directory / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()


def export_astronomaly(
    directory,
    cutouts,
    scores,
    *,
    features,
    labels=None,
    visualisation=None,
    image_format="png",
    overwrite=False,
    progress=False,
):
    """Write an Astronomaly bundle: images, metadata, features, scores, a 2-D map and the loader script.

    Open it with ``python astronomaly/frontend/run_server.py <directory>/astronomaly_pipeline.py``
    from an Astronomaly checkout; the labels given there come back with
    `import_astronomaly_labels`.

    Parameters
    ----------
    directory : str or os.PathLike
        The bundle folder (created if needed).
    cutouts : `~anomalymatch_astro.CutoutSet`
        The objects to export.  Their ids are made safe for Astronomaly with `safe_ids`;
        ``metadata.csv`` keeps the original ids in ``orig_id``.
    scores : array-like
        P(anomaly) in [0, 1], one per cutout (written as ``score = 5 * p``).
    features : array-like (N, D) or `~astropy.table.Table`
        The features Astronomaly's active learning regresses on, e.g. the classifier's
        embedding (`~anomalymatch_astro.AnomalyClassifier.embed`).  A Table gives named
        features (with an optional ``id`` column).  NaN or infinite values raise
        `~anomalymatch_astro.utils.exceptions.InvalidInputError`: Astronomaly crashes on
        them, and silently imputed features would steer its active learning.
    labels : mapping, Table or path, optional
        Known labels ``{id: "anomaly" | "normal"}``; written as ``human_label`` 5 / 0
        (-1 for the rest).
    visualisation : array-like (N, 2) or Table, optional
        The 2-D map shown by Astronomaly; a Table with ``id`` and two columns may cover a
        subset of the objects.  Default: the first two principal components of the features.
    image_format : {"png", "jpg", "jpeg", "bmp", "tif", "tiff", "fits"}, optional
        Image files.  Colour formats hold a Lupton composite
        (`~anomalymatch_astro.normalization.lupton_rgb`) flipped so that north is up;
        ``"fits"`` holds the raw (C, H, W) pixels.
    overwrite : bool, optional
        Replace an existing bundle in ``directory`` (including ``astronomaly_output/``).
    progress : bool, optional
        Show a progress bar while writing images.

    Returns
    -------
    `pathlib.Path`
        The bundle folder.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro import CutoutSet
    >>> from anomalymatch_astro.catalogs import export_astronomaly
    >>> cs = CutoutSet.from_arrays(np.random.default_rng(0).normal(size=(4, 3, 16, 16)))
    >>> export_astronomaly("bundle", cs, [0.1, 0.9, 0.2, 0.4],
    ...                    features=np.eye(4))  # doctest: +SKIP
    PosixPath('bundle')
    """
    from ..utils import progress_bar

    image_format = str(image_format).lower().lstrip(".")
    if image_format not in IMAGE_FORMATS:
        msg = (
            f"image_format {image_format!r} is not read by Astronomaly; use one of {IMAGE_FORMATS} "
            "(compressed FITS such as .fits.gz or .fits.fz is skipped by Astronomaly)"
        )
        raise InvalidInputError(msg)
    if not (hasattr(cutouts, "ids") and hasattr(cutouts, "iter_batches")):
        msg = f"cutouts must be a CutoutSet, got {type(cutouts).__name__}"
        raise InvalidInputError(msg)
    orig_ids = [str(i) for i in cutouts.ids]
    n = len(orig_ids)
    if n == 0:
        msg = "there are no cutouts to export"
        raise InvalidInputError(msg)
    p = np.asarray(getattr(scores, "value", scores), dtype=np.float64)
    if p.shape != (n,):
        msg = f"scores must have one value per cutout ({n}), got shape {p.shape}"
        raise InvalidInputError(msg)
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        msg = "scores must be finite probabilities P(anomaly) in [0, 1]; score every cutout before exporting"
        raise InvalidInputError(msg)
    names, feats = _features_array(features, orig_ids)
    label_map = parse_labels(labels, known_ids=orig_ids) if labels is not None else {}
    vis_rows, vis = _visualisation_array(visualisation, feats, orig_ids)
    ids = safe_ids(orig_ids)

    directory = Path(directory)
    _clear_bundle(directory, overwrite)
    images = directory / "images"
    images.mkdir(parents=True, exist_ok=True)

    # images/<id>.<ext>
    for rows, pixels in progress_bar(
        cutouts.iter_batches(256), total=(n + 255) // 256, desc="writing images", progress=progress
    ):
        for row, cutout in zip(rows, pixels):
            _save_image(images / f"{ids[row]}.{image_format}", cutout, image_format)

    # metadata.csv
    columns = _metadata_columns(cutouts, p, label_map)
    header = ["id"] + [name for name, _ in columns]
    _write_csv(
        directory / "metadata.csv",
        header,
        ([ids[k]] + [values[k] for _, values in columns] for k in range(n)),
    )

    # ml_scores.csv: id, score, human_label and nothing else
    human = [5 if label_map.get(i) == 1 else 0 if label_map.get(i) == 0 else -1 for i in orig_ids]
    _write_csv(
        directory / "ml_scores.csv",
        ["id", "score", "human_label"],
        ([ids[k], repr(float(5.0 * p[k])), str(int(human[k]))] for k in range(n)),
    )

    # features.parquet and visualisation.parquet
    _write_frame_parquet(directory / "features.parquet", ids, names, feats)
    _write_frame_parquet(directory / "visualisation.parquet", [ids[k] for k in vis_rows], ["0", "1"], vis)

    # the loader
    from ..utils._version import __version__

    (directory / "astronomaly_pipeline.py").write_text(
        LOADER_TEMPLATE.replace("{version}", __version__), encoding="utf-8"
    )
    log.info("wrote an Astronomaly bundle of %d objects to %s", n, directory)
    return directory


# ----------------------------------------------------------------------------------------- import
def _read_id_map(bundle):
    path = Path(bundle) / "metadata.csv"
    if not path.exists():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        if "orig_id" not in header:
            return None
        k = header.index("orig_id")
        return {row[0]: row[k] for row in reader if row}


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
    with open(scores_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or "human_label" not in header:
            msg = (
                f"{str(scores_path)!r} has no human_label column (header {header}); is it Astronomaly's ml_scores.csv?"
            )
            raise LabelError(msg)
        k = header.index("human_label")
        rows = [row for row in reader if row]
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


# ----------------------------------------------------------------------------------------- loader
LOADER_TEMPLATE = '''"""Astronomaly loader for an anomalymatch_astro bundle (anomalymatch_astro {version}).

Run it from an Astronomaly checkout:

    python astronomaly/frontend/run_server.py /path/to/bundle/astronomaly_pipeline.py

The bundle is the folder of this file, or the folder named by the environment variable
ASTRONOMALY_BUNDLE.  Labels given in the UI are written to
<bundle>/astronomaly_output/ml_scores.csv, which this script prefers on a restart, and which
anomalymatch_astro.catalogs.import_astronomaly_labels reads back.  Astronomaly is imported only
inside run_pipeline(), so this file can be imported without it.
"""

import os

BUNDLE = os.environ.get("ASTRONOMALY_BUNDLE") or os.path.dirname(os.path.abspath(__file__))
IMAGE_DIR = os.path.join(BUNDLE, "images")
OUTPUT_DIR = os.path.join(BUNDLE, "astronomaly_output")
DISPLAY_IMAGE_SIZE = 128
FILENAME_COLUMNS = ("filename", "file", "path", "filepath", "file_name")


def _read_frame(path):
    """A parquet file of the bundle as a float64 DataFrame indexed by str ids."""
    import pandas as pd

    frame = pd.read_parquet(path)
    if "id" in frame.columns:
        frame = frame.set_index("id")
    frame.index = frame.index.astype(str)
    frame.index.name = "id"
    frame.columns = [str(c) for c in frame.columns]
    return frame.astype("float64")


def _read_scores():
    import pandas as pd

    path = os.path.join(OUTPUT_DIR, "ml_scores.csv")
    if not os.path.exists(path):
        path = os.path.join(BUNDLE, "ml_scores.csv")
    scores = pd.read_csv(path, index_col=0, dtype={0: str})
    scores.index = scores.index.astype(str)
    scores.index.name = "id"
    scores = scores[["score", "human_label"]].copy()
    scores["score"] = scores["score"].astype("float64")
    scores["human_label"] = scores["human_label"].fillna(-1).astype("int64")
    return scores.sort_values("score", ascending=False)


def _read_metadata():
    import pandas as pd

    metadata = pd.read_csv(os.path.join(BUNDLE, "metadata.csv"), dtype=str, keep_default_na=False)
    metadata = metadata.set_index("id")
    for name in ("ra", "dec", "p_anomaly"):
        if name in metadata.columns:
            metadata[name] = pd.to_numeric(metadata[name], errors="coerce").astype("float64")
    drop = [c for c in metadata.columns if c.lower() in FILENAME_COLUMNS]
    return metadata.drop(columns=drop)


def run_pipeline():
    """Build what Astronomaly's front-end expects: dataset, features, scores, map, active learning."""
    from astronomaly.anomaly_detection.human_loop_learning import NeighbourScore
    from astronomaly.data_management.image_reader import ImageThumbnailsDataset

    os.makedirs(OUTPUT_DIR, exist_ok=True)
    metadata = _read_metadata()
    dataset = ImageThumbnailsDataset(directory=IMAGE_DIR, output_dir=OUTPUT_DIR,
                                     additional_metadata=metadata,
                                     display_image_size=DISPLAY_IMAGE_SIZE)
    anomaly_scores = _read_scores()
    features = _read_frame(os.path.join(BUNDLE, "features.parquet"))
    features = features.loc[anomaly_scores.index]
    visualisation = None
    vis_path = os.path.join(BUNDLE, "visualisation.parquet")
    if os.path.exists(vis_path):
        visualisation = _read_frame(vis_path)
        visualisation = visualisation.loc[visualisation.index.isin(anomaly_scores.index), ["0", "1"]]
    active_learning = NeighbourScore(alpha=1, output_dir=OUTPUT_DIR, force_rerun=True)
    return {"dataset": dataset,
            "features": features,
            "anomaly_scores": anomaly_scores,
            "visualisation": visualisation,
            "active_learning": active_learning}
'''
