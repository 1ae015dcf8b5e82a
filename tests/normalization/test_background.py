"""Local sky subtraction in the Normalizer: numpy == torch, pedestal invariance, settings round trip."""

import numpy as np
import pytest
import torch
from astropy.stats import sigma_clipped_stats

from anomalymatch_astro.normalization import BACKGROUNDS, Normalizer, normalize_tensor, tensor_supported
from anomalymatch_astro.normalization._background import annulus_mask, sky_levels, sky_levels_tensor
from anomalymatch_astro.utils.exceptions import InvalidInputError

MODES = ("median", "annulus")


def _awkward(size=20, seed=1):
    """Sky + object cutouts with NaN patches, an all-NaN band, constant bands, +-inf pixels, an all-NaN cutout."""
    rng = np.random.default_rng(seed)
    x = rng.normal(30.0, 2.0, size=(8, 3, size, size)).astype(np.float32)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    x += (400 * np.exp(-(yy**2 + xx**2) / 8.0)).astype(np.float32)  # the central object
    x[0, 0, :3] = np.nan
    x[1, 1] = np.nan
    x[2, 2] = 7.0  # a constant band
    x[2, 1] = -3.0  # a constant, negative band
    x[3, 0, 5, 5] = np.inf
    x[3, 1, 2, 2] = -np.inf
    x[4] = np.nan
    x[5, 0] = rng.integers(0, 3, size=(size, size))  # many ties
    x[6, 2, 0, 0] = np.nan
    x[6, 2, 1:, :] = np.nan  # one row of finite pixels left
    x[7, 1, 0, 0] = 1e4  # a bright neighbour in the annulus
    return x


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("interval", ["percentile", "minmax"])
@pytest.mark.parametrize("per_band", [True, False])
@pytest.mark.parametrize("stretch", ["asinh", "linear"])
def test_numpy_equals_torch(mode, interval, per_band, stretch):
    norm = Normalizer(background=mode, interval=interval, per_band=per_band, stretch=stretch)
    assert tensor_supported(norm)
    x = _awkward()
    got = normalize_tensor(torch.from_numpy(x), norm)
    assert got.dtype == torch.float32 and tuple(got.shape) == x.shape
    np.testing.assert_allclose(got.numpy(), norm(x), rtol=0, atol=2e-6)


@pytest.mark.parametrize("mode", MODES)
def test_sky_levels_numpy_equals_torch(mode):
    x = _awkward(size=33, seed=4)
    np_sky = sky_levels(x, mode=mode, sigma=3.0, annulus=(0.35, 0.5))
    t_sky = sky_levels_tensor(torch.from_numpy(x), mode=mode, sigma=3.0, annulus=(0.35, 0.5)).numpy()
    assert np_sky.dtype == np.float64 and np_sky.shape == (8, 3)
    np.testing.assert_allclose(t_sky, np_sky, rtol=1e-12, atol=1e-12)
    assert np_sky[2, 2] == 7.0 and np_sky[2, 1] == -3.0  # constant bands: their value
    assert np_sky[1, 1] == 0.0 and (np_sky[4] == 0.0).all()  # no finite pixel: no sky


@pytest.mark.parametrize("mode", MODES)
def test_matches_astropy_sigma_clipped_median(mode):
    x = _awkward(size=31, seed=2)
    sky = sky_levels(x, mode=mode, sigma=2.5, annulus=(0.3, 0.5))
    mask = annulus_mask(31, 31, (0.3, 0.5)) if mode == "annulus" else np.ones(31 * 31, bool)
    for i in (0, 3, 5, 6, 7):
        for b in range(3):
            pixels = x[i, b].reshape(-1)[mask].astype(np.float64)
            _, median, _ = sigma_clipped_stats(pixels[np.isfinite(pixels)], sigma=2.5, maxiters=5)
            assert sky[i, b] == pytest.approx(median, rel=1e-9, abs=1e-9)


def test_annulus_excludes_the_object():
    x = _awkward(size=40)
    whole = sky_levels(x[:1], mode="median", sigma=3.0, annulus=(0.35, 0.5))
    ring = sky_levels(x[:1], mode="annulus", sigma=3.0, annulus=(0.35, 0.5))
    assert abs(ring[0, 1] - 30.0) < 0.5 and abs(whole[0, 1] - 30.0) < 1.0
    mask = annulus_mask(40, 40, (0.35, 0.5)).reshape(40, 40)
    assert not mask[15:25, 15:25].any() and mask[0, 20] and not mask[0, 0]
    assert annulus_mask(1, 1, (0.35, 0.5)).sum() == 0
    assert (sky_levels(x[:1, :, :1, :1], mode="annulus", sigma=3.0, annulus=(0.35, 0.5)) == 0).all()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("interval", ["percentile", "minmax", "zscale"])
def test_pedestal_is_removed(mode, interval):
    x = _awkward()[[0, 5, 7]]
    x[:, :, :, :] = np.where(np.isfinite(x), x, 30.0)
    norm = Normalizer(background=mode, interval=interval)
    np.testing.assert_allclose(norm(x + 100.0), norm(x), atol=1e-5)
    if tensor_supported(norm):
        got = normalize_tensor(torch.from_numpy(x + 100.0), norm).numpy()
        np.testing.assert_allclose(got, norm(x), atol=1e-5)


def test_background_changes_the_result_and_floors_at_the_sky():
    x = _awkward()[:1]
    plain, sky = Normalizer()(x), Normalizer(background="annulus")(x)
    assert not np.allclose(plain, sky, atol=1e-3)
    ring = annulus_mask(20, 20, (0.35, 0.5)).reshape(20, 20)
    # about half the sky pixels lie below the sky level and map to 0
    assert 0.3 < np.mean(sky[0, 1][ring] == 0.0) < 0.7


def test_input_not_modified():
    x = _awkward()
    before = x.copy()
    Normalizer(background="median")(x)
    np.testing.assert_array_equal(x, before)


def test_backgrounds():
    assert BACKGROUNDS == (None, *MODES)


def test_settings_round_trip():
    norm = Normalizer(background="annulus", background_sigma=2.5, annulus=(0.3, 0.45), per_band=False)
    settings = norm.to_dict()
    assert settings["background"] == "annulus" and settings["annulus"] == [0.3, 0.45]
    assert settings["background_sigma"] == 2.5
    back = Normalizer.from_json(norm.to_json())
    assert back == norm and back.annulus == (0.3, 0.45) and back.background_sigma == 2.5
    assert Normalizer.from_dict(Normalizer(background="median").to_dict()).background == "median"
    assert Normalizer(background="median") != Normalizer() != norm


def test_old_settings_restore_no_background():
    old = {"stretch": "asinh", "interval": "percentile", "percentile": 99.5, "asinh_a": 0.1, "per_band": True}
    norm = Normalizer.from_dict(old)
    assert norm.background is None and norm == Normalizer()
    assert Normalizer().to_dict() == old  # the settings without background are what they always were
    x = _awkward()
    np.testing.assert_array_equal(norm(x), Normalizer()(x))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"background": "mean"},
        {"background": "annulus", "background_sigma": 0},
        {"background_sigma": float("nan")},
        {"annulus": (0.5, 0.35)},
        {"annulus": (-0.1, 0.5)},
        {"annulus": 0.5},
    ],
)
def test_validation(kwargs):
    with pytest.raises(InvalidInputError):
        Normalizer(**kwargs)
