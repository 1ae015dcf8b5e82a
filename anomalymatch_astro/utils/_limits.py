"""Limits on what the package reads: JSON with a byte and a nesting limit, declared sizes against file sizes.

Files can declare more than they hold (a header saying 10^9 rows in 20 KB, JSON nested
200,000 deep).  Every JSON document the package reads goes through `read_json` /
`loads_json`, which refuse such input quickly, in bounded memory, with the package's
error instead of a bare ``MemoryError`` or ``RecursionError``.
"""

import json
import os
import re

import numpy as np

from .exceptions import ReadError

__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "read_json", "loads_json", "check_declared_size"]

#: Largest JSON document read (session.json, checkpoint config.json, info.json, manifests ...).
MAX_JSON_BYTES = 64 * 1024 * 1024

#: Deepest nesting of ``[`` and ``{`` accepted in a JSON document (the package writes at most ~5).
MAX_JSON_DEPTH = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPEN = {ord("["), ord("{")}


def _depth(data):
    """Deepest nesting of brackets outside strings in JSON bytes (vectorised: fast on megabytes)."""
    brackets = _STRING.sub(b"", data).translate(None, delete=bytes(set(range(256)) - set(b"[]{}")))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int64)
    return int(np.cumsum(steps).max())


def loads_json(data, *, source="JSON", error=ReadError, max_bytes=MAX_JSON_BYTES, max_depth=MAX_JSON_DEPTH):
    """Parse JSON text or bytes within a byte and a nesting limit.

    Parameters
    ----------
    data : str or bytes
        The JSON document.
    source : str, optional
        What is read, for the message (a file name).
    error : type, optional
        The exception class to raise (a subclass of
        `~anomalymatch_astro.utils.exceptions.AnomalyMatchError`).
    max_bytes, max_depth : int, optional
        The limits.

    Returns
    -------
    object
        The parsed document.

    Raises
    ------
    ReadError
        (or ``error``) Too large, too deep, not UTF-8 or not JSON.

    Examples
    --------
    >>> from anomalymatch_astro.utils._limits import loads_json
    >>> loads_json('{"a": [1, 2]}')
    {'a': [1, 2]}
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        msg = f"{source} is {len(raw)} bytes, over the limit of {max_bytes} bytes for a JSON document"
        raise error(msg)
    depth = _depth(raw)
    if depth > max_depth:
        msg = f"{source} is nested {depth} deep, over the limit of {max_depth}; it was not written by this package"
        raise error(msg)
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # ValueError: not JSON, not UTF-8, integers of 5,000 digits
        msg = f"{source} is not valid JSON ({type(exc).__name__}: {exc})"
        raise error(msg) from exc


def read_json(path, *, error=ReadError, max_bytes=MAX_JSON_BYTES, max_depth=MAX_JSON_DEPTH):
    """Read a JSON file within a byte and a nesting limit (see `loads_json`).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    error : type, optional
        The exception class to raise.
    max_bytes, max_depth : int, optional
        The limits.

    Returns
    -------
    object

    Raises
    ------
    ReadError
        (or ``error``) Missing, unreadable, too large, too deep or not JSON.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        msg = f"cannot read {path!r}: {exc}"
        raise error(msg) from exc
    return loads_json(raw, source=repr(path), error=error, max_bytes=max_bytes, max_depth=max_depth)


def check_declared_size(declared, available, *, source, what="data"):
    """Refuse a file that declares more bytes than it (or its size bound) can hold.

    Raises `~anomalymatch_astro.utils.exceptions.ReadError` naming the file and what it declares.

    Parameters
    ----------
    declared : int
        Bytes the header or metadata declares.
    available : int
        The most bytes the file can hold for it (its size, or a bound derived from it).
    source, what : str
        For the message.
    """
    if declared > available:
        msg = (
            f"{source} declares {declared} bytes of {what} but can hold at most {available}: the file is "
            "truncated or its header is damaged; re-create or download it again"
        )
        raise ReadError(msg)
