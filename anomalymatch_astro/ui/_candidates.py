"""The gallery's candidate queue: fetching candidates from a session (slow: never under a lock) and merging them."""

import numpy as np

__all__ = ["coord_columns", "fetch_candidates", "merge_candidates"]


def coord_columns(cutouts):
    """(ra, dec) in degrees as float arrays, or (None, None) without sky positions."""
    table = cutouts.table
    if "ra" not in table.colnames or "dec" not in table.colnames:
        return None, None

    def deg(col):
        unit = getattr(col, "unit", None)
        if unit is not None:
            return np.asarray(col.to_value("deg"), dtype=np.float64)
        return np.asarray(col, dtype=np.float64)

    return deg(table["ra"]), deg(table["dec"])


def fetch_candidates(session, n, strategy, like):
    """(ids, scores, ranks) of the next ``n`` unlabelled candidates, or file order before training.

    A "similar" search can take seconds: the gallery calls this without holding its lock.
    """
    if strategy != "similar" and session.scores is None:
        rows = np.flatnonzero(~session.labelled_mask())[:n]
        ids = np.asarray(session.cutouts.ids).astype(str)[rows]
        return [str(i) for i in ids], [float("nan")] * len(ids), [0] * len(ids)
    table = session.candidates(n, strategy=strategy, like=like)
    return (
        [str(i) for i in table["id"]],
        [float(v) for v in np.asarray(table["score"])],
        [int(v) for v in np.asarray(table["rank"])],
    )


def merge_candidates(queue, info, found):
    """Append the ids of ``found`` not yet in ``queue``, in place, and set ``info[id] = (score, rank)``."""
    ids, scores, ranks = found
    known = set(queue)
    for obj_id, score, rank in zip(ids, scores, ranks):
        if obj_id not in known:
            queue.append(obj_id)
            info[obj_id] = (score, rank)
            known.add(obj_id)
