"""Shared settings of the reliability suite: a reproducible hypothesis profile and outcome counters.

Every fuzz test sends its generated input through `check`, which records the
outcome per kind of input: ``refused`` (a package error, an
`~anomalymatch_astro.utils.exceptions.AnomalyMatchError`) or ``accepted`` (the
input was valid and the result was checked).  Anything else fails the test.
With ``ANOMALYMATCH_RELIABILITY_COUNTS=/some/file.json`` the counts are written
there at the end of the run (docs/reliability.rst quotes them).
"""

import json
import os
from collections import Counter, defaultdict

from hypothesis import HealthCheck, settings

from anomalymatch_astro.utils.exceptions import AnomalyMatchError

#: Reproducible in CI: derandomized (the examples follow from the test), no example database.
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

COUNTS = defaultdict(Counter)


def check(kind, func, *args, errors=(AnomalyMatchError,), **kwargs):
    """Call ``func``; return its result, or None after a package error.  Counts the outcome."""
    try:
        result = func(*args, **kwargs)
    except errors as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        COUNTS[kind]["refused"] += 1
        COUNTS[kind][f"refused:{type(exc).__name__}"] += 1
        return None
    COUNTS[kind]["accepted"] += 1
    return result


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("ANOMALYMATCH_RELIABILITY_COUNTS")
    if target and COUNTS:
        with open(target, "w") as f:
            json.dump({k: dict(v) for k, v in sorted(COUNTS.items())}, f, indent=2, sort_keys=True)
