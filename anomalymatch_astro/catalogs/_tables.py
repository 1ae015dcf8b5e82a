"""Scores -> an Astropy catalogue (`~astropy.table.QTable`) with labels and provenance."""

import logging
from collections.abc import Mapping
from datetime import datetime, timezone

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable, Table

from ..utils import label_word, parse_labels
from ..utils.exceptions import InvalidInputError, LabelError, UnknownIDError

__all__ = ["scores_to_table", "TABLE_COLUMNS"]

log = logging.getLogger(__name__)

#: The columns `scores_to_table` always writes (``coord``, ``ra`` and ``dec`` only when positions are known).
TABLE_COLUMNS = (
    "id",
    "coord",
    "ra",
    "dec",
    "score",
    "rank",
    "label",
    "label_source",
    "label_time",
    "label_cycle",
    "bands",
)

#: Appended to a column of the cutouts table whose name the catalogue uses itself (``label`` -> ``label_catalog``).
CLASH_SUFFIX = "_catalog"


def _utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _cutout_parts(cutouts):
    """(ids, bands, per-object QTable) of a CutoutSet or a Table with an ``id`` column."""
    if isinstance(cutouts, Table):
        if "id" not in cutouts.colnames:
            msg = f"the table of objects needs an 'id' column (it has {cutouts.colnames})"
            raise InvalidInputError(msg)
        table = QTable(cutouts, copy=True)
        bands = tuple(table.meta.get("bands", ()))
        if "coord" in table.colnames and isinstance(table["coord"], SkyCoord):
            icrs = table["coord"].icrs
            table["ra"], table["dec"] = icrs.ra.to(u.deg), icrs.dec.to(u.deg)
            del table["coord"]
        return np.asarray(table["id"]).astype(str), bands, table
    if hasattr(cutouts, "ids") and hasattr(cutouts, "table") and hasattr(cutouts, "bands"):
        return np.asarray(cutouts.ids).astype(str), tuple(cutouts.bands), QTable(cutouts.table, copy=True)
    msg = f"cutouts must be a CutoutSet or a Table with an 'id' column, got {type(cutouts).__name__}"
    raise InvalidInputError(msg)


def _score_array(scores, ids):
    if isinstance(scores, Mapping):
        missing = [str(i) for i in ids if i not in scores]
        if missing:
            msg = f"{len(missing)} object(s) have no score: {missing[:10]}; give one score per cutout"
            raise UnknownIDError(msg, ids=missing)
        unknown = sorted(set(map(str, scores)) - set(ids))
        if unknown:
            msg = f"{len(unknown)} scored id(s) are not in the cutouts: {unknown[:10]}"
            raise UnknownIDError(msg, ids=unknown)
        values = np.array([scores[i] for i in ids], dtype=np.float64)
    else:
        values = np.asarray(getattr(scores, "value", scores), dtype=np.float64)
        if values.ndim != 1 or len(values) != len(ids):
            msg = f"scores must be a 1-d array with one value per cutout ({len(ids)}), got shape {values.shape}"
            raise InvalidInputError(msg)
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        msg = f"scores must be probabilities P(anomaly) in [0, 1]; got values from {finite.min():g} to {finite.max():g}"
        raise InvalidInputError(msg)
    return values


def _ranks(scores):
    """1 = most anomalous; ties keep input order; NaN scores rank last."""
    key = np.where(np.isfinite(scores), -scores, np.inf)
    order = np.argsort(key, kind="stable")
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def _apply_records(records, known, label, source, time, cycle):
    if not isinstance(records, Table):
        msg = (
            f"label_records must be a Table with columns id, label (source, time, cycle, user); "
            f"got {type(records).__name__}"
        )
        raise LabelError(msg)
    missing = [c for c in ("id", "label") if c not in records.colnames]
    if missing:
        msg = f"label_records lacks the column(s) {missing}; it needs at least 'id' and 'label'"
        raise LabelError(msg)
    n = len(records)
    order = np.arange(n)
    if "seq" in records.colnames and n:  # a label store's event number: exact order
        order = np.argsort(np.asarray(records["seq"]), kind="stable")
    elif "time" in records.colnames and n:
        times = [str(t) for t in records["time"]]
        order = np.array(sorted(range(n), key=lambda i: (times[i], i)))
    unknown = sorted({str(records["id"][i]) for i in range(n)} - set(known))
    if unknown:
        msg = f"{len(unknown)} id(s) in label_records are not in the cutouts: {unknown[:10]}"
        raise UnknownIDError(msg, ids=unknown)
    for i in order:  # oldest first, so the newest record of each id wins
        obj_id = str(records["id"][i])
        value = parse_labels({obj_id: records["label"][i]})[obj_id]
        row = known[obj_id]
        label[row] = label_word(value)
        source[row] = str(records["source"][i]) if "source" in records.colnames else ""
        time[row] = str(records["time"][i]) if "time" in records.colnames else ""
        if "cycle" in records.colnames:
            cyc = records["cycle"][i]
            cycle[row] = -1 if np.ma.is_masked(cyc) else int(cyc)


def _add_user_columns(table, base, *, used):
    """Append the columns of ``base`` not in ``used``; one named like a catalogue column gets ``_catalog`` appended."""
    for name in base.colnames:
        if name in used:
            continue
        new = name
        if name in table.colnames or name in TABLE_COLUMNS:
            new = f"{name}{CLASH_SUFFIX}"
            if new in base.colnames or new in table.colnames:
                msg = (
                    f"the cutouts table has a column {name!r}, which the catalogue writes itself, and a "
                    f"column {new!r} where it would be kept; rename one of them"
                )
                raise InvalidInputError(msg)
            log.info("the column %r of the cutouts table is kept as %r (%r is the catalogue's own)", name, new, name)
        table[new] = base[name]


def scores_to_table(cutouts, scores, *, labels=None, label_records=None, provenance=None):
    """Make the catalogue of scored objects: one row per cutout, with labels and provenance.

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet` or `~astropy.table.Table`
        The scored objects (a Table needs an ``id`` column; ``ra``/``dec`` or a
        ``coord`` SkyCoord column are used when present).
    scores : array-like or mapping
        P(anomaly) in [0, 1] per cutout, in the cutouts' order, or ``{id: score}``.
        NaN (not scored) is allowed and ranks last.
    labels : mapping, Table or path, optional
        ``{id: "anomaly" | "normal"}`` (or 1 / 0); see
        `~anomalymatch_astro.utils.parse_labels`.  These override ``label_records``.
    label_records : `~astropy.table.Table`, optional
        The label history with columns ``id``, ``label`` and optionally ``source``,
        ``time`` (ISO), ``cycle`` and ``user``; the newest record of each id wins.
    provenance : dict, optional
        Extra provenance for ``table.meta`` (model hash, normaliser settings, training
        configuration ...).

    Returns
    -------
    `~astropy.table.QTable`
        Columns ``id``, ``coord`` (SkyCoord, ICRS), ``ra``, ``dec`` (deg) when positions
        are known, ``score`` (float64), ``rank`` (1 = most anomalous), ``label``
        (``"anomaly"``, ``"normal"`` or ``""``), ``label_source``, ``label_time``,
        ``label_cycle`` (-1 when unlabelled), ``bands`` (comma-joined), then the other
        columns of ``cutouts.table``.  A column of ``cutouts.table`` named like one of
        these (e.g. the ``label`` of photutils' ``SourceCatalog``, or ``score``) is kept
        under its name with ``_catalog`` appended (``label_catalog``); ``id`` and, when
        both are present, ``ra``/``dec`` are the positions used above.  ``meta`` holds ``anomalymatch_astro_version``,
        ``created`` (UTC ISO time), ``bands``, ``n_objects`` and the ``provenance`` items.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.coordinates import SkyCoord
    >>> from anomalymatch_astro import CutoutSet
    >>> from anomalymatch_astro.catalogs import scores_to_table
    >>> cs = CutoutSet.from_arrays(np.zeros((3, 1, 8, 8)), ids=["a", "b", "c"], bands=["r"],
    ...                            coords=SkyCoord([10, 11, 12], [1, 2, 3], unit="deg"))
    >>> t = scores_to_table(cs, [0.2, 0.9, 0.5], labels={"b": "anomaly"})
    >>> t["id", "score", "rank", "label"]
    <QTable length=3>
     id  score  rank  label
    str1 float64 int64  str7
    ---- ------- ----- -------
       a     0.2     3
       b     0.9     1 anomaly
       c     0.5     2
    """
    ids, bands, base = _cutout_parts(cutouts)
    n = len(ids)
    score = _score_array(scores, ids)
    known = {obj_id: i for i, obj_id in enumerate(ids)}

    label = np.full(n, "", dtype=object)
    source = np.full(n, "", dtype=object)
    time = np.full(n, "", dtype=object)
    cycle = np.full(n, -1, dtype=np.int64)
    if label_records is not None:
        _apply_records(label_records, known, label, source, time, cycle)
    if labels is not None:
        for obj_id, value in parse_labels(labels, known_ids=ids).items():
            row = known[obj_id]
            word = label_word(value)
            if label[row] != word:  # a label not backed by the records
                label[row], source[row], time[row], cycle[row] = word, "", "", -1

    table = QTable()
    table["id"] = ids
    positions = "ra" in base.colnames and "dec" in base.colnames
    if positions:
        ra = u.Quantity(base["ra"], u.deg) if getattr(base["ra"], "unit", None) else base["ra"] * u.deg
        dec = u.Quantity(base["dec"], u.deg) if getattr(base["dec"], "unit", None) else base["dec"] * u.deg
        ra = np.asarray(ra.to_value(u.deg), dtype=np.float64) * u.deg
        dec = np.asarray(dec.to_value(u.deg), dtype=np.float64) * u.deg
        table["coord"] = SkyCoord(ra, dec, frame="icrs")
        table["ra"] = ra
        table["dec"] = dec
    table["score"] = score
    table["rank"] = _ranks(score)
    table["label"] = np.array(label.tolist(), dtype="U7")
    table["label_source"] = np.array(source.tolist(), dtype=str)
    table["label_time"] = np.array(time.tolist(), dtype=str)
    table["label_cycle"] = cycle
    table["bands"] = np.array([",".join(bands)] * n, dtype=str)
    _add_user_columns(table, base, used={"id", "ra", "dec"} if positions else {"id"})
    from ..utils._version import __version__

    meta = {
        "anomalymatch_astro_version": __version__,
        "created": _utc_now(),
        "bands": list(bands),
        "n_objects": int(n),
    }
    if hasattr(cutouts, "meta") and not isinstance(cutouts, Table) and cutouts.meta:
        meta["cutouts"] = dict(cutouts.meta)
    if provenance:
        if not isinstance(provenance, Mapping):
            msg = f"provenance must be a dict, got {type(provenance).__name__}"
            raise InvalidInputError(msg)
        meta.update(provenance)
    table.meta.update(meta)
    return table
