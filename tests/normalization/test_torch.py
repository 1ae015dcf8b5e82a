"""The torch normaliser equals the numpy Normalizer (every stretch and interval, NaN, flat, empty bands)."""

import itertools
import logging

import numpy as np
import pytest
import torch

from anomalymatch_astro.normalization import INTERVALS, STRETCHES, Normalizer, normalize_tensor, tensor_supported
from anomalymatch_astro.utils.exceptions import InvalidInputError


def _awkward(size=20, seed=1):
    """Cutouts with NaN patches, an all-NaN band, a constant band, +-inf pixels and an all-NaN cutout."""
    rng = np.random.default_rng(seed)
    x = (rng.lognormal(size=(7, 3, size, size)) * 100 - 50).astype(np.float32)
    x[0, 0, :3] = np.nan
    x[1, 1] = np.nan
    x[2, 2] = 7.0
    x[3, 0, 5, 5] = np.inf
    x[3, 1, 2, 2] = -np.inf
    x[4] = np.nan
    x[5, 0, :, :] = rng.integers(0, 3, size=(size, size))  # many ties
    x[6, 2, 0, 0] = np.nan  # a single NaN
    x[6, 2, 1:, :] = np.nan  # ... and only one row of finite pixels left
    return x


PERCENTILES = [99.5, 90.0, 100.0, (1.0, 80.0), (0.0, 100.0), (10.0, 99.0)]
CASES = list(itertools.product(STRETCHES, ("percentile", "minmax"), PERCENTILES, (True, False), (0.1, 3.0)))


@pytest.mark.parametrize(("stretch", "interval", "percentile", "per_band", "a"), CASES)
def test_equals_numpy(stretch, interval, percentile, per_band, a):
    norm = Normalizer(stretch=stretch, interval=interval, percentile=percentile, per_band=per_band, asinh_a=a)
    x = _awkward()
    expected = norm(x)
    got = normalize_tensor(torch.from_numpy(x), norm)
    assert got.dtype == torch.float32 and tuple(got.shape) == x.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("percentile", [99.5, (0.5, 99.0), (30.0, 70.0)])
def test_equals_numpy_large_images(percentile):
    """150 px x 3 bands: the tail (top-k) route and the full-sort route both match numpy."""
    x = np.random.default_rng(2).normal(100, 5, size=(3, 3, 150, 150)).astype(np.float32)
    x[0, 1, :10] = np.nan
    norm = Normalizer(percentile=percentile)
    np.testing.assert_allclose(normalize_tensor(torch.from_numpy(x), norm).numpy(), norm(x), atol=2e-6)


@pytest.mark.parametrize("shape", [(16, 16), (3, 16, 16), (2, 3, 16, 16)])
def test_shapes_and_dtypes(shape):
    x = np.random.default_rng(3).normal(size=shape)
    norm = Normalizer()
    expected = norm(x)  # float64 in: cast to float32 first, by both
    got = normalize_tensor(torch.from_numpy(x), norm)
    assert got.dtype == torch.float32 and tuple(got.shape) == shape
    np.testing.assert_allclose(got.numpy(), expected, atol=2e-6)
    half = torch.from_numpy(x.astype(np.float16))
    np.testing.assert_allclose(normalize_tensor(half, norm).numpy(), norm(x.astype(np.float16)), atol=2e-6)


def test_empty_batch():
    assert tuple(normalize_tensor(torch.zeros(0, 3, 8, 8), Normalizer()).shape) == (0, 3, 8, 8)


def test_constant_and_all_nan_map_to_zero():
    x = np.full((2, 2, 8, 8), 5.0, np.float32)
    x[1, 1] = np.nan
    for interval in ("percentile", "minmax"):
        out = normalize_tensor(torch.from_numpy(x), Normalizer(interval=interval)).numpy()
        assert np.array_equal(out, np.zeros_like(out))


def test_zscale_is_not_supported():
    assert tensor_supported(Normalizer()) and tensor_supported(Normalizer().to_dict())
    assert tensor_supported(Normalizer(interval="minmax"))
    assert not tensor_supported(Normalizer(interval="zscale"))
    assert set(INTERVALS) == {"percentile", "minmax", "zscale"}  # a new interval needs a torch version (or not)
    with pytest.raises(InvalidInputError, match="no torch version"):
        normalize_tensor(torch.zeros(1, 1, 4, 4), Normalizer(interval="zscale"))
    with pytest.raises(InvalidInputError, match="at most 4 dimensions"):
        normalize_tensor(torch.zeros(1, 1, 1, 4, 4), Normalizer())


def test_prepare_batch_uses_torch_and_falls_back_for_zscale(caplog):
    import torch.nn.functional as F

    from anomalymatch_astro.classifier import prepare_batch

    x = _awkward(size=24)
    for norm in (Normalizer(), Normalizer(stretch="log", interval="minmax", per_band=False)):
        ref = F.interpolate(torch.from_numpy(norm(x)), size=(16, 16), mode="bilinear", antialias=True)
        got = prepare_batch(x, normalizer=norm, image_size=16)
        np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=2e-6)
        got_t = prepare_batch(torch.from_numpy(x), normalizer=norm.to_dict(), image_size=16, device="cpu")
        np.testing.assert_allclose(got_t.numpy(), ref.numpy(), atol=2e-6)
    zs = Normalizer(interval="zscale", stretch="sqrt")
    with caplog.at_level(logging.INFO, logger="anomalymatch_astro.classifier._inference"):
        got = prepare_batch(torch.from_numpy(x), normalizer=zs, image_size=24)
    assert "no torch version" in caplog.text
    np.testing.assert_array_equal(got.numpy(), zs(x))  # the numpy path itself: bit-identical
