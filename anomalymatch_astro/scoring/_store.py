"""A resumable, crash-safe store of scores: memory-mapped arrays plus a batch ledger.

Layout of a store directory::

    info.json     what is being scored: n, batch size, sha256 of the ids, model hash
    scores.npy    float64 (n,), NaN until scored (a numpy memory map)
    done.npy      uint8 (n_batches,), 1 once a batch's scores are flushed to disk

A batch is marked done only after its scores are flushed, so a process killed at any
moment (``kill -9`` included) leaves a store whose done batches are complete; a re-run
recomputes only the rest.  Nothing is pickled.
"""

import os

import numpy as np

from ..utils import read_json, write_json_atomic
from ..utils.exceptions import InvalidInputError, ReadError

__all__ = ["ScoreStore"]


class ScoreStore:
    """Scores of N objects written batch by batch to disk, resumable after any interruption.

    Parameters
    ----------
    path : str or os.PathLike
        Store directory (created).
    n : int
        Number of objects.
    batch_size : int
        Objects per batch (the unit of resumption).
    key : dict
        What the scores depend on (e.g. ids digest, model hash); a store with another
        key is not reused: `~anomalymatch_astro.utils.exceptions.InvalidInputError` unless ``overwrite=True``.
    overwrite : bool, optional
        Start afresh even if a store with another key exists.
    """

    def __init__(self, path, *, n, batch_size, key, overwrite=False):
        self.path = os.fspath(path)
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.n_batches = (self.n + self.batch_size - 1) // self.batch_size
        info = {"n": self.n, "batch_size": self.batch_size, "key": key}
        info_path = os.path.join(self.path, "info.json")
        os.makedirs(self.path, exist_ok=True)
        fresh = True
        if os.path.exists(info_path):
            try:
                old = read_json(info_path)  # a byte and a nesting limit
            except ReadError:
                old = None
            if old == info and self._arrays_ok():
                fresh = False
            elif old is not None and not overwrite:
                recorded = old.get("key") if isinstance(old, dict) else old
                msg = (
                    f"{self.path!r} holds scores of other objects or another model ({recorded}); "
                    "choose another output, or pass overwrite=True to start afresh"
                )
                raise InvalidInputError(msg)
        if fresh:
            scores = np.lib.format.open_memmap(
                os.path.join(self.path, "scores.npy"), mode="w+", dtype=np.float64, shape=(self.n,)
            )
            scores[:] = np.nan
            scores.flush()
            done = np.lib.format.open_memmap(
                os.path.join(self.path, "done.npy"), mode="w+", dtype=np.uint8, shape=(self.n_batches,)
            )
            done.flush()
            del scores, done
            write_json_atomic(info_path, info, indent=None, sort_keys=False)
        self._scores = np.lib.format.open_memmap(os.path.join(self.path, "scores.npy"), mode="r+")
        self._done = np.lib.format.open_memmap(os.path.join(self.path, "done.npy"), mode="r+")

    def _arrays_ok(self):
        try:
            s = np.load(os.path.join(self.path, "scores.npy"), mmap_mode="r", allow_pickle=False)
            d = np.load(os.path.join(self.path, "done.npy"), mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return False
        return s.shape == (self.n,) and d.shape == (self.n_batches,)

    def batch_rows(self, k):
        """Rows of batch ``k``."""
        return np.arange(k * self.batch_size, min((k + 1) * self.batch_size, self.n))

    @property
    def pending(self):
        """Indices of the batches not yet done."""
        return np.flatnonzero(self._done == 0)

    def write(self, k, scores):
        """Store the scores of batch ``k`` and mark it done (scores flushed first)."""
        rows = self.batch_rows(k)
        self._scores[rows] = scores
        self._scores.flush()
        self._done[k] = 1
        self._done.flush()

    @property
    def complete(self):
        """True when every batch is done."""
        return bool(self._done.all())

    def scores(self):
        """A copy of the scores (NaN where not yet scored)."""
        return np.array(self._scores)
