import numpy as np
import pytest


@pytest.fixture
def separable():
    """Embeddings where 5% anomalies are shifted along a few directions, with labels (-1 unlabelled)."""
    rng = np.random.default_rng(1)
    n, d = 1000, 32
    x = rng.normal(size=(n, d)).astype(np.float32)
    truth = np.zeros(n, dtype=bool)
    truth[rng.choice(n, 50, replace=False)] = True
    x[truth, :4] += 2.0
    y = np.full(n, -1)
    y[np.flatnonzero(truth)[:5]] = 1
    y[np.flatnonzero(~truth)[:60]] = 0
    return x, y, truth
