"""Colour composites: per-band sky subtraction and flux scales (issue 16 item 4)."""

import warnings

import numpy as np
import pytest
from astropy.io import fits

from anomalymatch_astro.normalization import (
    SKY_MODES,
    MissingZeroPointWarning,
    band_flux_scales,
    lupton_rgb,
    make_rgb,
)
from anomalymatch_astro.utils.exceptions import InvalidInputError


@pytest.fixture
def pedestal_cutout():
    """Three bands (bluest first) of one neutral object on a sky that differs per band."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    obj = 50.0 * np.exp(-((yy - 24) ** 2 + (xx - 24) ** 2) / (2 * 3.0**2))
    pedestals = np.array([30.0, 6.0, 2.0])  # blue, green, red: an unsubtracted sky, as in HST count rates
    return (obj[None] + pedestals[:, None, None] + rng.normal(0, 1.0, (3, 48, 48))).astype(np.float32)


def _background_mean(rgb):
    """Mean R, G, B of the pixels far from the centre."""
    yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    far = np.hypot(yy - 24, xx - 24) > 15
    return rgb[far].mean(axis=0)


def test_per_band_sky_gives_neutral_background(pedestal_cutout):
    r, g, b = _background_mean(lupton_rgb(pedestal_cutout, sky="median"))
    assert max(r, g, b) - min(r, g, b) < 0.01
    r, g, b = _background_mean(lupton_rgb(pedestal_cutout))  # the default subtracts it
    assert max(r, g, b) - min(r, g, b) < 0.01


def test_without_sky_subtraction_the_background_is_tinted(pedestal_cutout):
    r, g, b = _background_mean(lupton_rgb(pedestal_cutout, sky=None))
    assert b - r > 0.1  # the bluest band's higher sky shows as a blue cast


def test_annulus_sky_and_neutral_object(pedestal_cutout):
    rgb = lupton_rgb(pedestal_cutout, sky="annulus")
    r, g, b = _background_mean(rgb)
    assert max(r, g, b) - min(r, g, b) < 0.01
    centre = rgb[24, 24]
    assert centre.min() > 0.3 and np.ptp(centre) < 0.02  # the neutral object stays grey-white
    assert SKY_MODES == (None, "median", "annulus")


def test_band_scales_multiply_each_band():
    cut = np.zeros((3, 16, 16), np.float32)
    cut[:, 8, 8] = [1.0, 1.0, 4.0]  # the red band in a unit 4 times smaller
    rgb = lupton_rgb(cut, band_scales=[1.0, 1.0, 0.25], sky=None, minimum=0.0, stretch=1.0)
    np.testing.assert_allclose(rgb[8, 8, 0], rgb[8, 8, 2], rtol=1e-6)
    plain = lupton_rgb(cut, sky=None, minimum=0.0, stretch=1.0)
    assert plain[8, 8, 0] > plain[8, 8, 2]
    via_make = make_rgb(cut, band_scales=[1.0, 1.0, 0.25], sky=None, stretch=1.0)
    assert via_make[8, 8, 0] == pytest.approx(via_make[8, 8, 2], rel=1e-6)


@pytest.mark.parametrize("bad", [[1.0, 2.0], [1.0, np.nan, 1.0]])
def test_band_scales_checked(pedestal_cutout, bad):
    with pytest.raises(InvalidInputError, match="band_scales"):
        lupton_rgb(pedestal_cutout, band_scales=bad)


def test_unknown_sky_mode(pedestal_cutout):
    with pytest.raises(InvalidInputError, match="sky must be"):
        make_rgb(pedestal_cutout, sky="mode")


def test_normalized_method_unchanged_without_band_scales(pedestal_cutout):
    from anomalymatch_astro.normalization import Normalizer

    norm = Normalizer(per_band=False)
    plain = make_rgb(pedestal_cutout, method="normalized", normalizer=norm)
    assert plain.shape == (48, 48, 3)
    scaled = make_rgb(pedestal_cutout, method="normalized", normalizer=norm, band_scales=[1.0, 1.0, 10.0])
    assert scaled[..., 0].mean() > plain[..., 0].mean()  # the red band, scaled up, is brighter


# ----------------------------------------------------------------------------- flux scales
def test_band_flux_scales_from_photflam():
    # ACS F435W, F606W, F850LP-like inverse sensitivities and pivot wavelengths
    heads = [
        fits.Header({"PHOTFLAM": 3.1e-19, "PHOTPLAM": 4329.0}),
        fits.Header({"PHOTFLAM": 7.9e-20, "PHOTPLAM": 5918.0}),
        fits.Header({"PHOTFLAM": 1.5e-19, "PHOTPLAM": 9033.0}),
    ]
    fnu = band_flux_scales(heads)
    expected = [f * p**2 / (3.1e-19 * 4329.0**2) for f, p in ((3.1e-19, 4329.0), (7.9e-20, 5918.0), (1.5e-19, 9033.0))]
    np.testing.assert_allclose(fnu, expected, rtol=1e-12)
    assert fnu[0] == 1.0
    flam = band_flux_scales(heads, unit="flam", reference=2)
    np.testing.assert_allclose(flam, [3.1e-19 / 1.5e-19, 7.9e-20 / 1.5e-19, 1.0], rtol=1e-12)


def test_band_flux_scales_from_magnitude_zero_points_and_photflam_mixed():
    # an AB zero point of 25 and its PHOTFLAM equivalent at the same pivot: the same f_nu per unit
    pivot = 6000.0
    fnu_per_unit = 10 ** (-0.4 * (25.0 + 48.6))
    photflam = fnu_per_unit * 2.99792458e18 / pivot**2
    heads = [{"MAGZERO": 25.0}, {"PHOTFLAM": photflam, "PHOTPLAM": pivot}, {"ZP": 27.5}, {"MAGZP": 22.5}]
    np.testing.assert_allclose(band_flux_scales(heads), [1.0, 1.0, 10**-1.0, 10**1.0], rtol=1e-9)


def test_missing_zero_point_warns_and_falls_back_to_one():
    heads = [fits.Header({"MAGZERO": 25.0}), fits.Header({"EXPTIME": 100.0}), None]
    with pytest.warns(MissingZeroPointWarning, match="r: no zero point") as rec:
        scales = band_flux_scales(heads, bands=["g", "r", "i"])
    assert "i: no header" in str(rec[0].message)
    np.testing.assert_array_equal(scales, [1.0, 1.0, 1.0])
    with pytest.warns(MissingZeroPointWarning, match="PHOTPLAM"):  # f_nu needs the pivot wavelength
        np.testing.assert_array_equal(band_flux_scales([{"PHOTFLAM": 1e-19}, {"MAGZERO": 25.0}]), [1.0, 1.0])


def test_all_headers_present_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(band_flux_scales([{"ZP": 25.0}, {"ZP": 26.0}]), [1.0, 10**-0.4])


def test_band_flux_scales_errors():
    with pytest.raises(InvalidInputError, match="unit"):
        band_flux_scales([{"ZP": 25.0}], unit="jy")
    with pytest.raises(InvalidInputError, match="not a band index"):
        band_flux_scales([{"ZP": 25.0}], reference=3)
    with pytest.raises(InvalidInputError, match="reference band"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        band_flux_scales([{"ZP": 25.0}, {}], reference=1)
