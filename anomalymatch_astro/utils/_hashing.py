"""Content digests shared by the stores that must recognise "the same objects" (sessions, caches, score stores)."""

import hashlib

__all__ = ["ids_digest"]


def ids_digest(ids):
    """sha256 (hex) of object ids in order: two sets of objects match when their digests do.

    Examples
    --------
    >>> from anomalymatch_astro.utils import ids_digest
    >>> ids_digest(["a", "b"]) == ids_digest(["a", "b"]) != ids_digest(["b", "a"])
    True
    """
    h = hashlib.sha256()
    for obj_id in ids:
        h.update(str(obj_id).encode())
        h.update(b"\0")
    return h.hexdigest()
