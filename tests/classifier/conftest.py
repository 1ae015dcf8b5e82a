"""Shared tiny data sets for the classifier tests."""

import numpy as np
import pytest
import torch

from anomalymatch_astro import CutoutSet


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 threads on a busy 2-core machine thrash (OpenMP spinning)
    yield
    torch.set_num_threads(old)


def blobs_and_rings(n_normal=40, n_anomaly=8, size=24, bands=("g", "r"), seed=0):
    """Gaussian blobs (normal) and rings (anomaly) with noise, random centres and widths."""
    rng = np.random.default_rng(seed)
    n = n_normal + n_anomaly
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    data = np.empty((n, len(bands), size, size), np.float32)
    truth = np.r_[np.zeros(n_normal, int), np.ones(n_anomaly, int)]
    rng.shuffle(truth)
    for i in range(n):
        cy, cx = rng.uniform(-2, 2, 2)
        r = np.hypot(yy - cy, xx - cx)
        if truth[i]:
            img = np.exp(-0.5 * ((r - size / 4) / 1.2) ** 2)
        else:
            img = np.exp(-0.5 * (r / rng.uniform(2.0, 4.0)) ** 2)
        for b in range(len(bands)):
            data[i, b] = (1 + b) * img + rng.normal(0, 0.05, img.shape)
    return CutoutSet.from_arrays(data, bands=bands), truth


def first_labels(cs, truth, n_anomaly=3, n_normal=6):
    an = [cs.ids[i] for i in np.flatnonzero(truth == 1)[:n_anomaly]]
    no = [cs.ids[i] for i in np.flatnonzero(truth == 0)[:n_normal]]
    return {**{i: "anomaly" for i in an}, **{i: "normal" for i in no}}


@pytest.fixture(scope="session")
def make_labels():
    """``make_labels(cs, truth, n_anomaly=3, n_normal=6)``: labels of the first objects of each class."""
    return first_labels


@pytest.fixture(scope="session")
def rings():
    return blobs_and_rings()


@pytest.fixture(scope="session")
def tiny_kwargs():
    """Fast settings: scratch network at 24 px, small batches."""
    return dict(pretrained=False, image_size=24, batch_size=4, mu=2, seed=0)
