"""make_cutouts on real HST data (CANDELS GOODS-N, from astroquery's wheel) and astropy's M13."""

import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import Cutout2D, NDData
from astropy.table import Table
from astropy.wcs import WCS

from anomalymatch_astro import make_cutouts
from anomalymatch_astro.utils.exceptions import (
    InvalidInputError,
    NonFinitePixelsWarning,
    NoOverlapError,
    PartialOverlapWarning,
)

BANDS = ("f606w", "f814w", "f850lp")


@pytest.fixture(scope="module")
def candels(candels_path):
    with fits.open(candels_path) as hdul:
        return {b: (hdul[i + 1].data.astype(np.float32), WCS(hdul[i + 1].header)) for i, b in enumerate(BANDS)}


def _positions(wcs, pixels):
    x, y = np.array(pixels, dtype=float).T
    return wcs.pixel_to_world(x, y)


def _image_input(kind, data, wcs, path=None, ext=None):
    if kind == "tuple":
        return (data, wcs)
    if kind == "nddata":
        return NDData(data, wcs=wcs)
    if kind == "hdu":
        return fits.ImageHDU(data, header=wcs.to_header())
    if kind == "hdulist":
        return fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header=wcs.to_header())])
    return path


@pytest.mark.parametrize("kind", ["path", "hdu", "hdulist", "nddata", "tuple"])
def test_matches_cutout2d_per_band(candels, candels_path, kind, tmp_path):
    data, wcs = candels["f814w"]
    path = tmp_path / "f814w.fits"
    fits.writeto(path, data, header=wcs.to_header())
    coords = _positions(wcs, [(50.3, 49.7), (20.0, 70.5), (33.5, 41.2)])
    cs = make_cutouts({"f814w": _image_input(kind, data, wcs, path)}, coords, 17, progress=False)
    for i, c in enumerate(coords):
        ref = Cutout2D(data, c, 17, wcs=wcs, mode="partial", fill_value=np.nan)
        np.testing.assert_array_equal(cs.data[i, 0], ref.data.astype(np.float32))
        # the cutout's WCS is Cutout2D's
        np.testing.assert_allclose(cs.wcs(i).wcs.crpix, ref.wcs.wcs.crpix)


def test_three_real_bands_on_one_grid(candels_path):
    """Bands given as HDUList extensions of one file stack in the given order."""
    with fits.open(candels_path) as hdul:
        images = {b: hdul[i + 1] for i, b in enumerate(BANDS)}
        wcs = WCS(hdul[1].header)
        coords = _positions(wcs, [(50, 50), (30, 60)])
        cs = make_cutouts(images, coords, 32, progress=False)
        assert cs.bands == BANDS
        assert cs.meta["resampled_bands"] == []
        for c in range(len(BANDS)):
            ref = Cutout2D(hdul[c + 1].data, coords[1], 32, wcs=wcs)
            np.testing.assert_array_equal(cs.data[1, c], ref.data)
    assert cs.data.dtype == np.float32


def _point_source_image(shape, x, y, sigma=1.5):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)).astype(np.float32)


def _centroid(img):
    img = np.nan_to_num(img)
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    return (img * xx).sum() / img.sum(), (img * yy).sum() / img.sum()


@pytest.mark.parametrize("method", ["interp", "reproject_interp"])
def test_resampled_band_puts_point_source_back(candels, method):
    """A band on another pixel scale, rotated, is reprojected back to within 0.1 px."""
    data, wcs = candels["f606w"]
    true_world = wcs.pixel_to_world(51.3, 47.6)
    ref_img = data + 50 * _point_source_image(data.shape, 51.3, 47.6)
    # another band: 1.5x coarser pixels, rotated by 30 deg, different centre
    other = WCS(naxis=2)
    other.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    other.wcs.crval = [true_world.ra.deg + 0.0002, true_world.dec.deg - 0.0001]
    other.wcs.crpix = [40.0, 35.0]
    scale = 1.5 * 0.03 / 3600
    theta = np.deg2rad(30)
    other.wcs.cd = scale * np.array([[-np.cos(theta), np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    ox, oy = other.world_to_pixel(true_world)
    other_img = _point_source_image((80, 80), float(ox), float(oy), sigma=1.5 / 1.5)
    cs = make_cutouts(
        {"ref": (ref_img, wcs), "rot": (other_img, other)},
        true_world.reshape((1,)),
        31,
        reproject=method,
        progress=False,
    )
    assert cs.meta["resampled_bands"] == ["rot"]
    expected = cs.wcs(0).world_to_pixel(true_world)
    cx, cy = _centroid(cs.data[0, 1])
    assert abs(cx - expected[0]) < 0.1
    assert abs(cy - expected[1]) < 0.1


def test_interp_agrees_with_reproject_interp(candels):
    data, wcs = candels["f850lp"]
    rotated = wcs.deepcopy()
    rotated.wcs.cd = wcs.wcs.cd @ np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    coords = _positions(wcs, [(50, 50), (45.5, 52.25)])
    a = make_cutouts({"x": (data, rotated)}, coords, 16, grid_wcs=wcs, reproject="interp", progress=False)
    b = make_cutouts({"x": (data, rotated)}, coords, 16, grid_wcs=wcs, reproject="reproject_interp", progress=False)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-4, atol=1e-5)


def test_positions_near_and_beyond_edges(candels):
    data, wcs = candels["f606w"]
    coords = _positions(wcs, [(2, 50), (50, 98.5), (-30, 50)])
    table = Table({"ra": coords.ra.deg, "dec": coords.dec.deg, "id": ["edge", "top", "outside"]})
    with pytest.raises(NoOverlapError, match="outside lacks f606w"):
        make_cutouts({"f606w": (data, wcs)}, table, 16, progress=False)
    with pytest.warns(PartialOverlapWarning) as record:
        cs = make_cutouts({"f606w": (data, wcs)}, table, 16, on_missing="flag", progress=False)
    messages = " ".join(str(w.message) for w in record)
    assert "1 position(s) lack some band" in messages and "2 cutout(s) overlap" in messages
    assert list(cs.table["missing_bands"]) == ["", "", "f606w"]
    assert cs.table["partial"].tolist() == [True, True, True]
    assert 0.4 < cs.table["coverage"][0] < 0.7
    assert np.isnan(cs.data[0, 0, :, :5]).all() and np.isfinite(cs.data[0, 0, :, 12:]).all()
    with pytest.warns(PartialOverlapWarning) as record:
        cs = make_cutouts({"f606w": (data, wcs)}, table, 16, on_missing="skip", progress=False)
    assert any("skipped 1" in str(w.message) for w in record)
    assert cs.ids.tolist() == ["edge", "top"] and cs.meta["skipped_ids"] == ["outside"]


def test_band_missing_for_some_positions(candels):
    data, wcs = candels["f606w"]
    small = wcs.deepcopy()  # a second band that covers only the left half
    coords = _positions(wcs, [(20, 50), (90, 50)])
    with pytest.raises(NoOverlapError, match="lacks r"):
        make_cutouts({"g": (data, wcs), "r": (data[:, :40], small)}, coords, 8, progress=False)


def test_nan_and_inf_pixels_masked_and_counted(candels):
    data, wcs = candels["f606w"]
    bad = data.copy()
    bad[48:50, 48:50] = np.nan
    bad[10, 10] = np.inf
    coords = _positions(wcs, [(50, 50), (80, 80)])
    with pytest.warns(NonFinitePixelsWarning):
        cs = make_cutouts({"g": (bad, wcs)}, coords, 10, progress=False)
    assert cs.table["n_nonfinite"].tolist() == [4, 0]
    assert not np.isinf(cs.data).any()


def test_angular_size_and_skycoord_table(candels):
    data, wcs = candels["f606w"]
    coords = _positions(wcs, [(50, 50)])
    cs = make_cutouts({"g": (data, wcs)}, Table({"coord": coords, "mag": [21.0]}), 0.6 * u.arcsec, progress=False)
    assert cs.image_shape == (20, 20)  # 0.6" at 0.03"/px
    assert cs.table["mag"][0] == 21.0
    assert cs.coords.separation(coords[0]).arcsec < 1e-6


def test_tile_compressed_fits_matches_plain(m13_paths):
    with fits.open(m13_paths["plain"]) as hdul:
        wcs = WCS(hdul[0].header)
        plain = hdul[0].data.astype(np.float32)
    coords = _positions(wcs, [(150, 150), (40, 260)])
    cs = make_cutouts({"v": m13_paths["rice"]}, coords, 32, progress=False)
    cs_plain = make_cutouts({"v": m13_paths["plain"]}, coords, 32, progress=False)
    np.testing.assert_array_equal(cs_plain.data[:, 0], np.stack([Cutout2D(plain, c, 32, wcs=wcs).data for c in coords]))
    # Rice is lossy for floats but exact for these int16 data
    np.testing.assert_array_equal(cs.data, cs_plain.data)


def test_bad_arguments(candels):
    data, wcs = candels["f606w"]
    coords = _positions(wcs, [(50, 50)])
    with pytest.raises(InvalidInputError, match="reproject must be"):
        make_cutouts({"g": (data, wcs)}, coords, 8, reproject="cubic")
    with pytest.raises(InvalidInputError, match="angle units"):
        make_cutouts({"g": (data, wcs)}, coords, 3 * u.kg)
    with pytest.raises(InvalidInputError, match="'ra' and 'dec'"):
        make_cutouts({"g": (data, wcs)}, Table({"x": [1]}), 8)
    with pytest.raises(InvalidInputError, match="reference_band"):
        make_cutouts({"g": (data, wcs)}, coords, 8, reference_band="z")


def test_no_warning_on_clean_input(candels):
    data, wcs = candels["f606w"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_cutouts({"g": (data, wcs)}, _positions(wcs, [(50, 50)]), 8, progress=False)
