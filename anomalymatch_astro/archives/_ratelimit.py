"""A request rate limit held across every Dask worker: `GlobalRateLimit`, and an `ArchiveClient` that obeys it."""

import threading
import time

from ..utils.exceptions import InvalidInputError
from ._client import ArchiveClient

__all__ = ["GlobalRateLimit", "LimitedClient"]


class GlobalRateLimit:
    """A rate limit shared by every Dask worker (and thread) that holds a copy of this object.

    The time of the next free request slot lives on the Dask scheduler, in a
    `distributed.Variable`, and a `distributed.Lock` makes reserving a slot atomic, so N
    workers together send at most ``rate`` requests per second.  Outside a Dask worker the
    limit is kept per process.

    Parameters
    ----------
    rate : float
        Most requests per second (0: no limit).
    name : str, optional
        The name of the scheduler-side lock and variable (default: a new unique name).

    Attributes
    ----------
    waited : float
        Seconds this copy has waited so far.
    last_slot : float or None
        The time (``time.time()``) at which this copy's last request was allowed to go.
    """

    def __init__(self, rate, *, name=None):
        import uuid

        self.rate = float(rate)
        if not self.rate >= 0:
            msg = f"rate must be >= 0 requests per second, got {rate!r}"
            raise InvalidInputError(msg)
        self.name = name or f"anomalymatch-rate-{uuid.uuid4().hex[:12]}"
        self.waited = 0.0
        self.last_slot = None

    def __getstate__(self):
        return {"rate": self.rate, "name": self.name, "waited": 0.0, "last_slot": None}

    def start(self, client):
        """Set up the shared slot on ``client``'s scheduler (call once, before the workers use it)."""
        import distributed

        if self.rate > 0:
            distributed.Variable(self.name, client=client).set(0.0)

    def wait(self):
        """Block until this caller may send one request; return the seconds waited."""
        if self.rate <= 0:
            return 0.0
        interval = 1.0 / self.rate
        client = _worker_client()
        if client is None:
            slot = _LOCAL.setdefault(self.name, [0.0])
            with _LOCAL_LOCK.setdefault(self.name, threading.Lock()):
                now = time.time()
                start = max(now, slot[0])
                slot[0] = start + interval
        else:
            import distributed

            with distributed.Lock(self.name):
                var = distributed.Variable(self.name, client=client)
                try:
                    nxt = float(var.get(timeout=5))
                except (TimeoutError, OSError):
                    nxt = 0.0
                now = time.time()
                start = max(now, nxt)
                var.set(start + interval)
        self.last_slot = start
        delay = start - now
        if delay > 0:
            time.sleep(delay)
        self.waited += delay
        return delay


_LOCAL, _LOCAL_LOCK = {}, {}


def _worker_client():
    try:
        from distributed import get_client, get_worker
    except ImportError:  # pragma: no cover - distributed comes with the distributed extra
        return None
    try:
        get_worker()
    except ValueError:
        return None
    return get_client()


class LimitedClient(ArchiveClient):
    """An `ArchiveClient` whose every request waits for a `GlobalRateLimit` slot."""

    def __init__(self, limiter, **kwargs):
        self._limiter = limiter
        super().__init__(rate_limit=0, **kwargs)

    def _throttle(self):
        self._limiter.wait()
        with self._lock:
            self.n_requests += 1
