"""Normalizer and display composites."""

import numpy as np
import pytest
from astropy.visualization import AsinhStretch, PercentileInterval, ZScaleInterval

from anomalymatch_astro.normalization import Normalizer, lupton_rgb, make_rgb
from anomalymatch_astro.utils.exceptions import InvalidInputError


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(100, 5, size=(3, 2, 24, 24)).astype(np.float32)
    x[:, :, 10:14, 10:14] += 500
    return x


def test_percentile_asinh_matches_astropy(batch):
    norm = Normalizer(stretch="asinh", interval="percentile", percentile=99.0, asinh_a=0.1)
    out = norm(batch)
    for i in range(3):
        for b in range(2):
            vmin, vmax = PercentileInterval(99.0).get_limits(batch[i, b])
            expected = AsinhStretch(a=0.1)(np.clip((batch[i, b] - vmin) / (vmax - vmin), 0, 1))
            np.testing.assert_allclose(out[i, b], expected, atol=2e-5)


def test_zscale_joint_and_nan(batch):
    batch[0, 0, 0, 0] = np.nan
    batch[0, 1, 0, 0] = np.inf
    out = Normalizer(interval="zscale", per_band=False)(batch)
    assert np.isfinite(out).all() and out.dtype == np.float32
    assert out[0, 0, 0, 0] == 0.0
    vmin, vmax = ZScaleInterval().get_limits(batch[1][np.isfinite(batch[1])])
    assert np.isclose(out[1].max(), 1.0)


def test_each_cutout_independent(batch):
    norm = Normalizer()
    np.testing.assert_array_equal(norm(batch)[1], norm(batch[1:2])[0])


def test_json_round_trip_and_validation():
    norm = Normalizer(stretch="log", interval="percentile", percentile=(1, 99), per_band=False)
    assert Normalizer.from_json(norm.to_json()) == norm
    assert Normalizer.from_dict(norm.to_dict()).percentile == (1.0, 99.0)
    with pytest.raises(InvalidInputError):
        Normalizer(stretch="hist")
    with pytest.raises(InvalidInputError):
        Normalizer(percentile=(99, 1))
    with pytest.raises(InvalidInputError):
        Normalizer.from_dict({"stretch": "asinh", "bogus": 1})


def test_constant_and_empty_images():
    out = Normalizer()(np.full((1, 1, 4, 4), 7.0))
    assert np.isfinite(out).all()
    out = Normalizer()(np.full((1, 1, 4, 4), np.nan))
    assert (out == 0).all()


def test_lupton_rgb(batch):
    rgb = lupton_rgb(batch[0])
    assert rgb.shape == (24, 24, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert rgb[12, 12].sum() > rgb[0, 0].sum()
    assert make_rgb(batch[0], method="normalized").shape == (24, 24, 3)
    with pytest.raises(InvalidInputError):
        make_rgb(batch[0], method="bogus")
