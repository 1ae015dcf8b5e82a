"""A durable label store: every label event in SQLite, committed one transaction per call.

The store is an append-only log of label events; the current label of an id is
its newest event.  `LabelStore.undo` deletes the newest event, which restores the
previous state of that id.  On disk the database runs in WAL mode with
``synchronous=FULL``, so a label that `LabelStore.add` returned from survives a
crash or a ``kill -9`` of the process.

Schema::

    events(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, label INTEGER (1 | 0),
           time TEXT (UTC ISO 8601), user TEXT, cycle INTEGER, source TEXT)
    meta(key TEXT PRIMARY KEY, value TEXT)       -- e.g. the session's cycle counter
"""

import datetime
import getpass
import logging
import os
import sqlite3
import threading

import numpy as np
from astropy.table import Table

from ..utils.exceptions import LabelError

__all__ = ["LabelStore", "SOURCES"]

log = logging.getLogger(__name__)

#: Accepted label sources.
SOURCES = ("human", "import", "oracle")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    label INTEGER NOT NULL CHECK (label IN (0, 1)),
    time TEXT NOT NULL,
    user TEXT,
    cycle INTEGER NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_id ON events (id, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def _default_user():
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers)
        return "unknown"


def utc_now():
    """The current UTC time as an ISO 8601 string with microseconds."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


class LabelStore:
    """Label events in SQLite: add, undo, history and the current labels.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The database file; None keeps the store in memory (lost at exit).

    Examples
    --------
    >>> from anomalymatch_astro.active_learning import LabelStore
    >>> store = LabelStore()
    >>> store.add({"a": 1, "b": 0}, source="human", user="me", cycle=0)
    2
    >>> store.add({"a": 0}, source="human", user="me", cycle=1)
    1
    >>> store.current()
    {'a': 0, 'b': 0}
    >>> store.undo()["id"]
    'a'
    >>> store.current()
    {'a': 1, 'b': 0}
    """

    def __init__(self, path=None):
        self.path = None if path is None else os.fspath(path)
        self._lock = threading.RLock()
        target = ":memory:" if self.path is None else self.path
        if self.path is not None and os.path.isfile(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, "rb") as f:
                if f.read(16) != b"SQLite format 3\x00":  # never let SQLite write over something else
                    msg = f"{self.path!r} is not a SQLite label store; move it away or choose another workdir"
                    raise LabelError(msg)
        self._conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            if self.path is not None:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
            self._check()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            msg = (
                f"the label store {target!r} is not a readable anomalymatch_astro label database "
                f"({exc}); move it away and re-import the labels (e.g. from an exported CSV), or "
                "restore it from a backup"
            )
            raise LabelError(msg) from exc

    def _check(self):
        """Fail now, not mid-session, on a damaged file or a database of another schema."""
        if self._conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            msg = "the database is damaged (PRAGMA quick_check failed)"
            raise sqlite3.DatabaseError(msg)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(events)")}
        if not {"seq", "id", "label", "time", "user", "cycle", "source"} <= columns:
            msg = f"its events table has the columns {sorted(columns)}, not those of a label store"
            raise sqlite3.DatabaseError(msg)
        bad = self._conn.execute("SELECT count(*) FROM events WHERE label NOT IN (0, 1)").fetchone()[0]
        if bad:
            msg = f"{bad} label event(s) hold a label other than 0 or 1"
            raise sqlite3.DatabaseError(msg)
        self._conn.execute("SELECT key, value FROM meta LIMIT 1").fetchall()

    def __repr__(self):
        where = self.path or "memory"
        return f"<LabelStore {where}: {len(self)} labelled>"

    def close(self):
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ writing
    def add(self, labels, *, source="human", user=None, cycle=0, time=None):
        """Record label events, all in one transaction.

        Parameters
        ----------
        labels : dict
            ``{id: 1 | 0}`` (already validated).
        source : {"human", "import", "oracle"}, optional
        user : str, optional
            Who labelled (default: the login name).
        cycle : int, optional
            The session's cycle at labelling time.
        time : str, optional
            UTC ISO time (default: now).

        Returns
        -------
        int
            Number of events written.
        """
        if source not in SOURCES:
            msg = f"label source must be one of {SOURCES}, got {source!r}"
            raise LabelError(msg)
        user = _default_user() if user is None else str(user)
        time = utc_now() if time is None else str(time)
        rows = [(str(i), int(v), time, user, int(cycle), source) for i, v in labels.items()]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO events (id, label, time, user, cycle, source) VALUES (?, ?, ?, ?, ?, ?)", rows
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        log.debug("recorded %d label(s) from %s", len(rows), source)
        return len(rows)

    def undo(self):
        """Delete the newest label event; returns it as a dict, or None when there is none."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT seq, id, label, time, user, cycle, source FROM events ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                if row is not None:
                    self._conn.execute("DELETE FROM events WHERE seq = ?", (row[0],))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        if row is None:
            return None
        keys = ("seq", "id", "label", "time", "user", "cycle", "source")
        return dict(zip(keys, row))

    def set_meta(self, key, value):
        """Store a string under ``key`` in the meta table (committed)."""
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))

    def get_meta(self, key, *, default=None):
        """The meta value of ``key`` (a string), or ``default``."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    # ------------------------------------------------------------------ reading
    def current(self):
        """The current label of every labelled id, ``{id: 1 | 0}``, in order of first labelling."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT e.id, e.label FROM events e JOIN "
                "(SELECT id, MAX(seq) AS m, MIN(seq) AS f FROM events GROUP BY id) l "
                "ON e.id = l.id AND e.seq = l.m ORDER BY l.f"
            ).fetchall()
        return {i: int(v) for i, v in rows}

    def current_records(self):
        """The newest event of every labelled id, as a Table (columns as in `history`)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT e.seq, e.id, e.label, e.time, e.user, e.cycle, e.source FROM events e JOIN "
                "(SELECT id, MAX(seq) AS m FROM events GROUP BY id) l ON e.id = l.id AND e.seq = l.m "
                "ORDER BY e.seq"
            ).fetchall()
        return _table(rows)

    def history(self):
        """Every label event, oldest first, as a Table.

        Columns: ``seq``, ``id``, ``label`` ("anomaly" | "normal"), ``time`` (UTC
        ISO), ``user``, ``cycle``, ``source``.
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, id, label, time, user, cycle, source FROM events ORDER BY seq"
            ).fetchall()
        return _table(rows)

    def __len__(self):
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(DISTINCT id) FROM events").fetchone()[0])


def _table(rows):
    cols = list(zip(*rows)) if rows else [[] for _ in range(7)]
    words = np.array(["anomaly" if v == 1 else "normal" for v in cols[2]], dtype="U7")
    return Table(
        {
            "seq": np.asarray(cols[0], dtype=np.int64),
            "id": np.asarray(cols[1], dtype=str) if rows else np.array([], dtype="U1"),
            "label": words,
            "time": np.asarray(cols[3], dtype=str) if rows else np.array([], dtype="U1"),
            "user": np.asarray([u or "" for u in cols[4]], dtype=str) if rows else np.array([], dtype="U1"),
            "cycle": np.asarray(cols[5], dtype=np.int64),
            "source": np.asarray(cols[6], dtype=str) if rows else np.array([], dtype="U1"),
        }
    )
