"""Root pytest configuration: headless plotting and no hub access, for tests and doctests alike."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
# One torch/OpenMP thread in tests (and in the processes they start: kernels, Dask workers):
# on a busy 2-core machine two OpenMP threads spin against each other and run ~100x slower,
# and one thread makes the same-seed-same-scores guarantee independent of the core count.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")


def pytest_configure(config):
    import sys

    if "torch" in sys.modules:  # imported by a plugin before OMP_NUM_THREADS was set
        sys.modules["torch"].set_num_threads(1)
