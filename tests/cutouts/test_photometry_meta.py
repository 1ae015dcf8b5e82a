"""Zero points in the image headers travel with the cutouts and colour every composite."""

import warnings

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from anomalymatch_astro import CutoutSet, make_cutouts
from anomalymatch_astro.normalization import band_flux_scales, lupton_rgb, make_rgb

#: HST ACS F435W and F850LP zero points (PHOTFLAM erg/cm2/A per e-/s, PHOTPLAM A)
F435W = {"PHOTFLAM": 3.1e-19, "PHOTPLAM": 4329.0}
F850LP = {"PHOTFLAM": 1.5e-19, "PHOTPLAM": 9033.0}


def _header(extra=None):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [53.16, -27.78]
    wcs.wcs.crpix = [50.5, 50.5]
    wcs.wcs.cdelt = [-0.05 / 3600, 0.05 / 3600]
    header = wcs.to_header()
    header.update(extra or {})
    return header


def _image(seed, level):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:100, :100]
    return (level * np.exp(-((xx - 49.5) ** 2 + (yy - 49.5) ** 2) / 50.0) + rng.normal(0, 0.01, (100, 100))).astype(
        np.float32
    )


POSITIONS = SkyCoord([53.16, 53.1601], [-27.78, -27.7801], unit="deg")


def test_zero_points_become_flux_scales(tmp_path):
    images = {
        "f435w": fits.ImageHDU(_image(0, 1.0), _header(F435W)),
        "f850lp": fits.ImageHDU(_image(1, 2.0), _header(F850LP)),
    }
    cs = make_cutouts(images, POSITIONS, 32, progress=False)
    expected = band_flux_scales([fits.Header(F435W), fits.Header(F850LP)])
    assert cs.band_flux_scales == pytest.approx(expected)
    assert cs.band_flux_scales[1] == pytest.approx(2.107, abs=1e-3)
    assert cs.meta["photometry"]["f850lp"] == pytest.approx(F850LP)
    path = tmp_path / "c.h5"
    cs.to_hdf5(path)
    again = CutoutSet.from_hdf5(path)
    assert again.band_flux_scales == pytest.approx(expected)
    assert again[[1]].band_flux_scales == pytest.approx(expected)


def test_zero_point_in_the_primary_header(tmp_path):
    """HST drizzled files keep PHOTFLAM in the primary header and the pixels in SCI."""
    for band, zp, seed in (("b", F435W, 0), ("z", F850LP, 1)):
        fits.HDUList([fits.PrimaryHDU(header=fits.Header(zp)), fits.ImageHDU(_image(seed, 1.0), _header())]).writeto(
            tmp_path / f"{band}.fits"
        )
    cs = make_cutouts({b: str(tmp_path / f"{b}.fits") for b in "bz"}, POSITIONS, 32, progress=False)
    assert cs.band_flux_scales == pytest.approx(band_flux_scales([fits.Header(F435W), fits.Header(F850LP)]))


def test_no_zero_points_no_scales_no_warning():
    images = {"g": (_image(0, 1.0), _header()), "r": (_image(1, 1.0), _header())}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cs = make_cutouts(images, POSITIONS, 32, progress=False)
    assert cs.band_flux_scales is None
    assert "band_flux_scales" not in cs.meta


def test_one_band_without_zero_point_warns_and_is_left_unscaled():
    from anomalymatch_astro.normalization import MissingZeroPointWarning

    images = {"g": (_image(0, 1.0), _header(F435W)), "r": (_image(1, 1.0), _header())}
    with pytest.warns(MissingZeroPointWarning, match="r"):
        cs = make_cutouts(images, POSITIONS, 32, progress=False)
    assert cs.band_flux_scales.tolist() == [1.0, 1.0]


def test_composites_apply_the_scales(tmp_path):
    from anomalymatch_astro.ui import TileRenderer, cutout_rgb
    from anomalymatch_astro.visualization import plot_gallery

    images = {
        "f435w": fits.ImageHDU(_image(0, 1.0), _header(F435W)),
        "f850lp": fits.ImageHDU(_image(1, 1.0), _header(F850LP)),
        "f775w": fits.ImageHDU(_image(2, 1.0), _header({"PHOTFLAM": 1.0e-19, "PHOTPLAM": 7693.0})),
    }
    cs = make_cutouts(images, POSITIONS, 32, progress=False)
    scales = cs.band_flux_scales
    pix = cs.data[0]
    scaled, plain = cutout_rgb(pix, band_scales=scales), cutout_rgb(pix)
    assert np.allclose(scaled, lupton_rgb(pix, band_scales=scales))
    assert not np.allclose(scaled, plain)
    # the UI's tiles: decode the PNG and compare with the scaled composite
    import base64
    import io

    from PIL import Image

    images_, errors = TileRenderer(cs).render([cs.ids[0]], view="lupton")
    assert not errors
    png = Image.open(io.BytesIO(base64.b64decode(images_[cs.ids[0]].split(",", 1)[1])))
    shown = np.asarray(png, dtype=np.float32) / 255.0
    assert np.abs(np.flipud(shown) - scaled).mean() < np.abs(np.flipud(shown) - plain).mean()
    # the gallery draws the scaled composite
    fig = plot_gallery(cs, ncols=2)
    drawn = np.asarray(fig.axes[0].images[0].get_array())
    assert np.allclose(drawn, make_rgb(pix, band_scales=scales))
