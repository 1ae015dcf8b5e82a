"""filters_changed: temporary warning filters that threads cannot leave behind."""

import threading
import time
import warnings

from anomalymatch_astro.utils import filters_changed


def _overlapping(context):
    """Thread A enters ``context`` with an "error" filter, thread B enters while A is inside; both leave."""
    a_inside, b_started = threading.Event(), threading.Event()

    def a():
        with context(("error", Warning)):
            a_inside.set()
            b_started.wait(5)
            time.sleep(0.2)  # B tries to enter now

    def b():
        a_inside.wait(5)
        b_started.set()
        with context(("ignore", UserWarning)):
            time.sleep(0.3)  # A leaves while B is (or waits to be) inside

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def _plain(*filters):
    ctx = warnings.catch_warnings()

    class Plain:
        def __enter__(self):
            ctx.__enter__()
            for action, category in filters:
                warnings.simplefilter(action, category)

        def __exit__(self, *exc):
            return ctx.__exit__(*exc)

    return Plain()


def test_overlapping_threads_restore_the_filters():
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        before = list(warnings.filters)
        _overlapping(filters_changed)
        assert warnings.filters == before
        warnings.warn("still only a warning", UserWarning, stacklevel=1)  # not an exception


def test_plain_catch_warnings_would_leave_an_error_filter_behind():
    """The failure filters_changed prevents (seen with Dask worker threads validating downloads)."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        before = list(warnings.filters)
        _overlapping(_plain)
        assert warnings.filters != before
        assert warnings.filters[0][0] == "error"


def test_record():
    with filters_changed(("always", Warning), record=True) as caught:
        warnings.warn("seen", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["seen"]
