"""The gallery's candidate queue: fetching candidates from a session (slow: never under a lock) and merging them."""

import numpy as np

__all__ = ["Systems", "coord_columns", "fetch_candidates", "merge_candidates"]


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


def fetch_candidates(session, n, strategy, like, *, group=True):
    """(ids, scores, ranks) of the next ``n`` unlabelled candidates, or file order before training.

    With ``group`` (and systems in the session), one candidate per system: before
    training, the first unlabelled member of each system in file order.  A "similar"
    search can take seconds: the gallery calls this without holding its lock.
    """
    from ..active_learning import first_per_system

    if strategy != "similar" and session.scores is None:
        rows = first_per_system(np.flatnonzero(~session.labelled_mask()), session.systems if group else None)[:n]
        ids = np.asarray(session.cutouts.ids).astype(str)[rows]
        return [str(i) for i in ids], [float("nan")] * len(ids), [0] * len(ids)
    table = session.candidates(n, strategy=strategy, like=like, group=group)
    return (
        [str(i) for i in table["id"]],
        [float(v) for v in np.asarray(table["score"])],
        [int(v) for v in np.asarray(table["rank"])],
    )


def merge_candidates(queue, info, found, *, system_of=None):
    """Append the ids of ``found`` not yet in ``queue``, in place, and set ``info[id] = (score, rank)``.

    With ``system_of`` (a function of an id giving its system), an id whose system is already in the queue is skipped
    too: after its shown member is labelled, a system comes back with its next member.
    """
    ids, scores, ranks = found
    known = set(queue)
    key = (lambda i: i) if system_of is None else system_of
    seen = {key(i) for i in queue}
    for obj_id, score, rank in zip(ids, scores, ranks):
        if obj_id not in known and key(obj_id) not in seen:
            queue.append(obj_id)
            info[obj_id] = (score, rank)
            known.add(obj_id)
            seen.add(key(obj_id))


class Systems:
    """The systems of a gallery's objects: which system an id is in, and its other members."""

    def __init__(self, systems, ids, row):
        self.systems = np.asarray(systems)
        self.ids = np.asarray(ids).astype(str)
        self.row = row  # {id: row}
        sizes = np.bincount(self.systems) if len(self.systems) else np.zeros(0, dtype=np.int64)
        self.rows = {}  # {system: rows} of the systems with more than one member
        for r in np.flatnonzero(np.isin(self.systems, np.flatnonzero(sizes > 1))):
            self.rows.setdefault(int(self.systems[r]), []).append(int(r))
        self.any_members = bool(self.rows)

    def system_of(self, obj_id):
        """The system of ``obj_id``."""
        return int(self.systems[self.row[obj_id]])

    def pending(self, queue, labelled):
        """How many ids of ``queue`` are in a system that still has an unlabelled member."""
        open_systems = np.bincount(self.systems[~labelled], minlength=len(self.systems)) > 0
        return sum(1 for i in queue if open_systems[self.system_of(i)])

    def members(self, obj_id, scores, labels):
        """The other members of ``obj_id``'s system as ``{"id", "score", "label"}``, best score first."""
        rows = [r for r in self.rows.get(self.system_of(obj_id), []) if r != self.row[obj_id]]
        if scores is not None:
            rows.sort(key=lambda r: -scores[r] if np.isfinite(scores[r]) else np.inf)
        out = []
        for r in rows:
            other = str(self.ids[r])
            score = None if scores is None or not np.isfinite(scores[r]) else round(float(scores[r]), 5)
            out.append({"id": other, "score": score, "label": labels.get(other)})
        return out
