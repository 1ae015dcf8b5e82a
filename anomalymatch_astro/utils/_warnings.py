"""Warning filters that are safe to change from several threads at once.

``warnings.catch_warnings`` saves the process-wide filter list on entry and puts it back on
exit.  Two threads inside it at the same time (Dask workers running as threads, the scoring
loader threads) can put back each other's *temporary* filters: one thread's
``simplefilter("error")`` then outlives its block and turns every later warning of the
process into an exception.  ``filters_changed`` holds one lock for the whole block, so the
blocks of this package never interleave and each restores exactly what it saved.
"""

import contextlib
import threading
import warnings

__all__ = ["filters_changed"]

_LOCK = threading.RLock()


@contextlib.contextmanager
def filters_changed(*filters, record=False):
    """``warnings.catch_warnings`` with ``filters`` applied, serialised across threads.

    Parameters
    ----------
    *filters : tuple
        ``(action, category)`` pairs for ``warnings.simplefilter``, applied in order.
    record : bool, optional
        Yield the list of caught warnings (as ``catch_warnings(record=True)``).

    Yields
    ------
    list or None
        The caught warnings with ``record=True``.

    Examples
    --------
    >>> import warnings
    >>> from anomalymatch_astro.utils import filters_changed
    >>> with filters_changed(("ignore", UserWarning)):
    ...     warnings.warn("not shown", UserWarning)
    """
    with _LOCK, warnings.catch_warnings(record=record) as caught:
        for action, category in filters:
            warnings.simplefilter(action, category)
        yield caught
