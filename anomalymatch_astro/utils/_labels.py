"""Parse and validate labels given as a mapping, a Table or a CSV/ECSV file.

At the API labels are the words ``"anomaly"`` and ``"normal"``; inside the package
they are the integers 1 and 0 (and -1 for unlabelled).
"""

import os
from collections import Counter
from collections.abc import Mapping

import numpy as np
from astropy.table import Table

from ._limits import MAX_JSON_DEPTH, _depth
from .exceptions import LabelError, UnknownIDError

__all__ = ["LABEL_VALUES", "parse_labels", "read_labels", "label_word"]

#: Accepted spellings of the two labels (case-insensitive for strings).
LABEL_VALUES = {
    "anomaly": 1,
    "anomalous": 1,
    "1": 1,
    "true": 1,
    "yes": 1,
    "normal": 0,
    "0": 0,
    "false": 0,
    "no": 0,
}

_MAX_LISTED = 10

#: Limits of a label file: it has two columns (a few more are tolerated) and one row per labelled object.
MAX_LABEL_COLUMNS = 64
MAX_LABEL_BYTES = 256 * 1024 * 1024
MAX_LABEL_ROWS = 10_000_000
_MAX_HEADER_BYTES = 1024 * 1024


def _listed(ids):
    ids = list(ids)
    text = ", ".join(repr(str(i)) for i in ids[:_MAX_LISTED])
    if len(ids) > _MAX_LISTED:
        text += f" ... ({len(ids)} in all)"
    return text


def label_word(value):
    """Return ``"anomaly"``, ``"normal"`` or ``"unlabelled"`` for 1, 0 or -1."""
    return {1: "anomaly", 0: "normal"}.get(int(value), "unlabelled")


def _to_int(value, obj_id):
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value) in (0.0, 1.0):
        return int(value)
    if isinstance(value, (str, bytes, np.str_)):
        text = value.decode() if isinstance(value, bytes) else str(value)
        key = text.strip().lower()
        if key in LABEL_VALUES:
            return LABEL_VALUES[key]
    msg = f"label {value!r} of id {str(obj_id)!r} is not understood; use 'anomaly' or 'normal' (or 1 / 0)"
    raise LabelError(msg, ids=[obj_id])


def read_labels(path):
    """Read a label file (CSV, ECSV or any astropy-readable table) into a Table.

    The file needs the columns ``id`` and ``label``.

    Parameters
    ----------
    path : str or os.PathLike
        The label file.

    Returns
    -------
    astropy.table.Table
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        msg = f"label file {path!r} does not exist"
        raise LabelError(msg)
    fmt = "ascii.ecsv" if path.endswith(".ecsv") else ("ascii.csv" if path.endswith(".csv") else None)
    _check_label_file(path, text=fmt is not None)
    try:
        table = Table.read(path, format=fmt) if fmt else Table.read(path)
    except Exception as exc:
        msg = f"could not read label file {path!r} ({exc}); write it as CSV or ECSV with the columns 'id' and 'label'"
        raise LabelError(msg) from exc
    if len(table.colnames) > MAX_LABEL_COLUMNS or len(table) > MAX_LABEL_ROWS:
        msg = (
            f"label file {path!r} has {len(table.colnames)} columns and {len(table)} rows, over the limits of "
            f"{MAX_LABEL_COLUMNS} columns and {MAX_LABEL_ROWS} rows; keep the columns 'id' and 'label'"
        )
        raise LabelError(msg)
    return table


def _check_label_file(path, *, text):
    """Refuse, before parsing, a label file too large, with too many rows, or a text header with too many columns."""
    size = os.path.getsize(path)
    if size > MAX_LABEL_BYTES:
        msg = f"label file {path!r} is {size} bytes, over the limit of {MAX_LABEL_BYTES}; split it into smaller files"
        raise LabelError(msg)
    with open(path, "rb") as f:
        head = f.read(_MAX_HEADER_BYTES)
        binary = head.startswith((b"SIMPLE  =", b"\x89HDF")) or head.lstrip().startswith(b"<")
        if binary and not text:  # FITS, HDF5, XML (VOTable): checked after reading
            return
        rows = head.count(b"\n")
        while block := f.read(1 << 20):
            rows += block.count(b"\n")
    if rows > MAX_LABEL_ROWS:
        msg = f"label file {path!r} has {rows} lines, over the limit of {MAX_LABEL_ROWS}; split it into smaller files"
        raise LabelError(msg)
    comments = b"".join(line for line in head.splitlines(keepends=True) if line.lstrip().startswith(b"#"))
    depth = _depth(comments)  # the ECSV header is YAML: its parser recurses once per level
    if depth > MAX_JSON_DEPTH:
        msg = f"the header of label file {path!r} is nested {depth} deep, over the limit of {MAX_JSON_DEPTH}"
        raise LabelError(msg)
    for line in head.splitlines(keepends=True):
        if not line.strip() or line.lstrip().startswith(b"#"):
            continue  # blank lines, comments and the ECSV header
        if not line.endswith((b"\n", b"\r")) and len(head) == _MAX_HEADER_BYTES:
            break
        columns = max(line.count(b","), line.count(b"\t"), len(line.split()) - 1) + 1
        if columns > MAX_LABEL_COLUMNS:
            msg = (
                f"label file {path!r} has {columns} columns, over the limit of {MAX_LABEL_COLUMNS}; "
                "keep the columns 'id' and 'label'"
            )
            raise LabelError(msg)
        return
    if len(head) == _MAX_HEADER_BYTES:
        msg = (
            f"label file {path!r} has no complete line of column names in its first {_MAX_HEADER_BYTES} "
            "bytes (far too many columns?); write it as CSV or ECSV with the columns 'id' and 'label'"
        )
        raise LabelError(msg)


def parse_labels(labels, *, known_ids=None, require_both=False):
    """Turn labels in any accepted form into ``{id: 0 | 1}``.

    Parameters
    ----------
    labels : mapping, `~astropy.table.Table`, str or os.PathLike
        ``{id: "anomaly" | "normal"}`` (1 / 0 and booleans work too), a Table with
        columns ``id`` and ``label``, or the path of a CSV/ECSV file with them.
    known_ids : sequence of str, optional
        When given, every labelled id must be one of these.
    require_both : bool, optional
        When true, at least one anomaly and one normal must be labelled.

    Returns
    -------
    dict
        ``{str id: int label}`` with 1 = anomaly and 0 = normal.

    Raises
    ------
    LabelError
        Unknown label words, duplicated or contradictory ids, or an empty class.
    UnknownIDError
        Ids that are not in ``known_ids``.

    Examples
    --------
    >>> from anomalymatch_astro.utils import parse_labels
    >>> parse_labels({"a": "anomaly", "b": "normal", "c": 1})
    {'a': 1, 'b': 0, 'c': 1}
    """
    if labels is None:
        pairs = []
    elif isinstance(labels, (str, os.PathLike)):
        return parse_labels(read_labels(labels), known_ids=known_ids, require_both=require_both)
    elif isinstance(labels, Table):
        missing = [c for c in ("id", "label") if c not in labels.colnames]
        if missing:
            msg = f"the label table lacks the column(s) {missing}; it needs 'id' and 'label' (it has {labels.colnames})"
            raise LabelError(msg)
        pairs = [(str(i), v) for i, v in zip(labels["id"], labels["label"])]
    elif isinstance(labels, Mapping):
        pairs = [(str(k), v) for k, v in labels.items()]
    else:
        msg = (
            f"labels must be a mapping {{id: 'anomaly' | 'normal'}}, a Table with columns id and label, "
            f"or a CSV/ECSV path; got {type(labels).__name__}"
        )
        raise LabelError(msg)

    counts = Counter(i for i, _ in pairs)
    result = {}
    contradictions = []
    for obj_id, value in pairs:
        value = _to_int(value, obj_id)
        if obj_id in result and result[obj_id] != value:
            contradictions.append(obj_id)
        result[obj_id] = value
    if contradictions:
        msg = f"contradictory labels (both anomaly and normal) for id(s) {_listed(sorted(set(contradictions)))}"
        raise LabelError(msg, ids=sorted(set(contradictions)))
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    if duplicates:
        msg = f"id(s) labelled more than once: {_listed(duplicates)}; keep one row per id"
        raise LabelError(msg, ids=duplicates)
    if known_ids is not None:
        known = set(map(str, known_ids))
        unknown = sorted(i for i in result if i not in known)
        if unknown:
            msg = (
                f"{len(unknown)} labelled id(s) are not in the cutouts: {_listed(unknown)}; "
                "check the id column of the label file against the catalogue"
            )
            raise UnknownIDError(msg, ids=unknown)
    if require_both:
        values = set(result.values())
        for value, word in ((1, "anomaly"), (0, "normal")):
            if value not in values:
                msg = (
                    f"no object is labelled {word!r}; training needs at least one anomaly and one "
                    "normal (label a few of each)"
                )
                raise LabelError(msg)
    return result
