"""Batched remote queries that can resume: each finished batch's answer is kept in a work folder.

A remote cross-match of a large region sends the candidates in batches (one TAP upload,
SIMBAD or VizieR query each).  With a work folder, every finished batch's answer is written
there atomically, one ECSV file per batch, named by a digest of the query and of the batch's
candidates (ids and positions): a rerun with the same folder reads the finished batches
instead of asking again, a crash loses at most the batch in flight, and a changed query,
radius or candidate list never reuses another query's answers.
"""

import hashlib
import json
import logging
import os

import numpy as np
from astropy.table import Table

from ..utils import atomic_path, ids_digest, progress_bar, write_bytes_atomic, write_json_atomic
from ..utils.exceptions import ArchiveError, InvalidInputError, ServiceError, WriteError

__all__ = ["BatchStore", "run_batches"]

log = logging.getLogger(__name__)

#: file written beside the batches, describing the query (for people; never read back)
QUERY_FILE = "query.json"


class BatchStore:
    """The answers of finished batches in a work folder (private helper of the remote cross-matches).

    Parameters
    ----------
    workdir : str or os.PathLike
        The folder (created if missing).
    query : dict
        Everything that determines the answers besides the candidates (service URL, ADQL,
        radius...): JSON-serialisable, part of every batch's digest.
    ids : array-like
        The candidates' ids, in order.
    ra, dec : array-like
        Their positions (deg).
    """

    def __init__(self, workdir, *, query, ids, ra, dec):
        self.workdir = os.fspath(workdir)
        if os.path.exists(self.workdir) and not os.path.isdir(self.workdir):
            msg = f"workdir {self.workdir!r} is a file: give a folder for the finished batches"
            raise InvalidInputError(msg)
        try:
            os.makedirs(self.workdir, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create the cross-match work folder {self.workdir!r}: {exc}"
            raise WriteError(msg) from exc
        self.query_text = json.dumps(query, sort_keys=True, default=str)
        self.query = query
        self.ids = np.asarray(ids).astype(str)
        self.ra = np.round(np.asarray(ra, dtype=np.float64), 9)
        self.dec = np.round(np.asarray(dec, dtype=np.float64), 9)

    def key(self, index, rows):
        """The file name stem of batch ``index`` (candidates ``rows``)."""
        h = hashlib.sha256(self.query_text.encode())
        h.update(ids_digest(self.ids[rows]).encode())
        h.update(self.ra[rows].astype("<f8").tobytes())
        h.update(self.dec[rows].astype("<f8").tobytes())
        return f"batch{index:05d}-{h.hexdigest()[:24]}"

    def describe(self, n_batches, batch_size):
        """Write ``query.json`` (the query, for people reading the folder)."""
        info = {"query": self.query, "n_candidates": len(self.ids), "batch_size": batch_size, "n_batches": n_batches}
        write_json_atomic(os.path.join(self.workdir, QUERY_FILE), info)

    def load(self, key):
        """The stored answer of a batch: a Table, None (no rows) or False (not finished)."""
        path = os.path.join(self.workdir, key + ".ecsv")
        if os.path.exists(os.path.join(self.workdir, key + ".none")):
            return None
        if not os.path.exists(path):
            return False
        try:
            return Table.read(path, format="ascii.ecsv")
        except Exception as exc:  # noqa: BLE001 - any unreadable file is asked again
            log.warning("re-querying the batch in %s: its stored answer cannot be read (%s)", path, exc)
            return False

    def save(self, key, part):
        """Store a finished batch's answer atomically."""
        try:
            if part is None:
                write_bytes_atomic(os.path.join(self.workdir, key + ".none"), b"")
                return
            with atomic_path(os.path.join(self.workdir, key + ".ecsv")) as tmp:
                part.write(tmp, format="ascii.ecsv")
        except OSError as exc:
            msg = f"cannot write a finished batch to the cross-match work folder {self.workdir!r}: {exc}"
            raise WriteError(msg) from exc


def _with_context(exc, text):
    """The same kind of archive error with ``text`` appended (other errors unchanged)."""
    if type(exc) in (ArchiveError, ServiceError):
        return type(exc)(f"{exc} ({text})")
    return exc


def run_batches(n, batch_size, query, *, run, service, store=None, progress=False):
    """Ask ``query`` about the candidates in batches; with a store, skip and keep finished batches.

    Parameters
    ----------
    n : int
        Number of candidates.
    batch_size : int
        Candidates per batch.
    query : callable
        ``query(rows)`` asks about the candidates ``rows`` (an index array); returns a table or None.
    run : callable
        ``run(attempt)`` runs ``attempt()`` through the HTTP layer (retries, error mapping).
    service : str
        The service's name, for messages.
    store : BatchStore, optional
        Where finished batches are kept.
    progress : bool, optional
        Show a progress bar over the batches.

    Returns
    -------
    list of `~astropy.table.Table`
        The non-empty answers, in batch order.
    """
    starts = range(0, n, batch_size)
    n_batches = len(starts)
    if store is not None:
        store.describe(n_batches, batch_size)
    parts, reused = [], 0
    bar = progress_bar(total=n_batches, desc=f"cross-match batches ({service})", progress=progress, unit="batch")
    try:
        for index, start in enumerate(starts):
            rows = np.arange(start, min(start + batch_size, n))
            key = None if store is None else store.key(index, rows)
            part = False if store is None else store.load(key)
            if part is not False:
                reused += 1
            else:
                try:
                    part = run(lambda rows=rows: query(rows))
                except ArchiveError as exc:
                    if store is None:
                        text = f"batch {index + 1} of {n_batches}; pass workdir= to keep finished batches and resume"
                    else:
                        text = (
                            f"batch {index + 1} of {n_batches}; the finished batches are kept in "
                            f"{store.workdir!r}: run again with the same workdir to resume"
                        )
                    raise _with_context(exc, text) from exc
                if part is not None and not len(part):
                    part = None
                if store is not None:
                    store.save(key, part)
            if part is not None and len(part):
                parts.append(part)
            bar.update(1)
    finally:
        bar.close()
    if store is not None:
        log.info("%s: %d of %d batches read back from %s", service, reused, n_batches, store.workdir)
    return parts
