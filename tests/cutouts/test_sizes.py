"""Cutout size per object (cutout_sizes) and make_cutouts(..., output_size=) flux-conserving resampling."""

import numpy as np
import pytest
from astropy import units as u
from astropy.table import QTable, Table
from astropy.wcs import WCS

from anomalymatch_astro import CutoutSet, make_cutouts
from anomalymatch_astro.cutouts import cutout_sizes
from anomalymatch_astro.utils.exceptions import InvalidInputError, NonFinitePixelsWarning, PartialOverlapWarning

SCALE = 0.1 * u.arcsec


def _wcs(shape):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    wcs.wcs.cdelt = [-SCALE.to_value(u.deg), SCALE.to_value(u.deg)]
    return wcs


def _gauss(shape, x0, y0, sigma, flux):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return flux / (2 * np.pi * sigma**2) * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))


@pytest.fixture(scope="module")
def field():
    """Two Gaussians of the same flux, one 2x the other's size, on a 400 px image.

    They sit on pixel corners, where an even-sized cutout is centred exactly.
    """
    shape = (400, 400)
    image = _gauss(shape, 100.5, 200.5, 4.0, 1000.0) + _gauss(shape, 300.5, 200.5, 8.0, 1000.0)
    wcs = _wcs(shape)
    table = QTable({"id": ["small", "big"]})
    table["coord"] = wcs.pixel_to_world(np.array([100.5, 300.5]), np.array([200.5, 200.5]))
    table["semimajor_sigma"] = [4.0, 8.0] * u.pix
    return image.astype(np.float32), wcs, table


def test_cutout_sizes_from_pixels_and_angles():
    t = Table({"a": [2.0, 10.0, 100.0, np.nan]})
    sizes = cutout_sizes(t, column="a", factor=3, pixel_scale=SCALE, min_size=2 * u.arcsec, max_size=10 * u.arcsec)
    assert sizes.unit == u.arcsec
    np.testing.assert_allclose(sizes.value, [2.0, 6.0, 10.0, 2.0])  # clipped; NaN gets min_size
    q = QTable({"r": [0.5, 1.0] * u.arcsec})
    np.testing.assert_allclose(cutout_sizes(q, column="r", factor=2).to_value(u.arcsec), [2.0, 4.0])
    # photutils' kron_radius counts semi-major axes
    k = Table({"kron_radius": [2.0, 3.0], "semimajor_sigma": [1.0, 2.0]})
    sizes = cutout_sizes(k, scale_column="semimajor_sigma", factor=1, pixel_scale=SCALE)
    np.testing.assert_allclose(sizes.to_value(u.arcsec), [0.4, 1.2])
    # a WCS as pixel scale; NaN without min_size gets the median of the others
    sizes = cutout_sizes(Table({"a": [1.0, 3.0, np.nan]}), column="a", factor=1, pixel_scale=_wcs((10, 10)))
    np.testing.assert_allclose(sizes.to_value(u.arcsec), [0.2, 0.6, 0.4])


def test_cutout_sizes_errors():
    t = Table({"a": [1.0]})
    with pytest.raises(InvalidInputError, match="pixel_scale"):
        cutout_sizes(t, column="a")
    with pytest.raises(InvalidInputError, match="not in the catalogue"):
        cutout_sizes(t, column="kron_radius")
    with pytest.raises(InvalidInputError, match="factor"):
        cutout_sizes(t, column="a", factor=0, pixel_scale=SCALE)
    with pytest.raises(InvalidInputError, match="larger"):
        cutout_sizes(t, column="a", pixel_scale=SCALE, min_size=5, max_size=2)
    with pytest.raises(InvalidInputError, match="usable"):
        cutout_sizes(Table({"a": [np.nan]}), column="a", pixel_scale=SCALE)


@pytest.mark.parametrize("times", [2, 4])
def test_resampled_gaussians_keep_flux_and_look_alike(field, times):
    image, wcs, table = field
    # cut each Gaussian at `times` x 2.5 sigma radius: the big one's cutout is twice as large
    sizes = cutout_sizes(table, column="semimajor_sigma", factor=2.5 * times / 2, pixel_scale=SCALE)
    cs = make_cutouts({"r": (image, wcs)}, table, sizes, output_size=32, progress=False)
    assert cs.shape == (2, 1, 32, 32)
    assert cs.table["cut_shape"][1, 0] == 2 * cs.table["cut_shape"][0, 0]
    for i in range(2):
        x0, y0 = int(cs.table["x_origin"][i]), int(cs.table["y_origin"][i])
        h, w = cs.table["cut_shape"][i]
        flux_in = image[y0 : y0 + h, x0 : x0 + w].sum()
        assert np.sum(cs.data[i]) == pytest.approx(flux_in, rel=1e-5)  # exact flux conservation
        assert np.sum(cs.data[i]) == pytest.approx(1000.0, rel=0.03 if times == 2 else 0.005)
    # normalised, the two look the same: same profile on the common grid
    a, b = cs.data[0, 0] / cs.data[0, 0].sum(), cs.data[1, 0] / cs.data[1, 0].sum()
    assert np.abs(a - b).max() < 0.05 * a.max()
    # each row has its own WCS: the centre of the output grid points at the source
    for i in range(2):
        x, y = cs.wcs(i).world_to_pixel(table["coord"][i])
        assert abs(x - 15.5) < 0.01 and abs(y - 15.5) < 0.01
    assert cs.meta["cutout_shape"] == [32, 32] and cs.meta["per_object_size"]


def test_per_object_size_by_column_and_order(field, tmp_path):
    image, wcs, table = field
    t = QTable(table)
    t["size"] = np.array([60, 20])  # pixels, not sorted by size
    cs = make_cutouts({"r": (image, wcs)}, t, "size", output_size=(16, 16), progress=False)
    assert cs.ids.tolist() == ["small", "big"]
    assert cs.table["cut_shape"].tolist() == [[60, 60], [20, 20]]
    # a scalar size with output_size is resampled too, and the set round-trips through HDF5
    one = make_cutouts({"r": (image, wcs)}, t, 48, output_size=16, progress=False)
    assert one.shape == (2, 1, 16, 16)
    one.to_hdf5(tmp_path / "c.h5")
    back = CutoutSet.from_hdf5(tmp_path / "c.h5")
    np.testing.assert_array_equal(back.data, one.data)
    np.testing.assert_allclose(back.wcs(1).wcs.cdelt, one.wcs(1).wcs.cdelt)


def test_per_object_size_errors_and_skip(field):
    image, wcs, table = field
    with pytest.raises(InvalidInputError, match="output_size"):
        make_cutouts({"r": (image, wcs)}, table, "semimajor_sigma", progress=False)
    with pytest.raises(InvalidInputError, match="entries"):
        make_cutouts({"r": (image, wcs)}, table, [10, 20, 30] * u.arcsec, output_size=16, progress=False)
    with pytest.raises(InvalidInputError, match="not in the position table"):
        make_cutouts({"r": (image, wcs)}, table, "nope", output_size=16, progress=False)
    with pytest.raises(InvalidInputError, match="pixels"):
        make_cutouts({"r": (image, wcs)}, table, 32, output_size=3 * u.arcsec, progress=False)
    # a position off the image is skipped and recorded
    t = QTable(table)
    far = wcs.pixel_to_world(2000.0, 2000.0)
    t.add_row({"id": "off", "coord": far, "semimajor_sigma": 4.0 * u.pix})
    with pytest.warns(PartialOverlapWarning):
        cs = make_cutouts(
            {"r": (image, wcs)}, t, [4, 6, 8] * u.arcsec, output_size=16, on_missing="skip", progress=False
        )
    assert cs.ids.tolist() == ["small", "big"] and cs.meta["skipped_ids"] == ["off"]


def test_nan_pixels_are_filled_locally_or_stay_nan(field):
    image, wcs, table = field
    img = image.copy()
    img[195:197, 95:97] = np.nan
    with pytest.warns(NonFinitePixelsWarning):
        cs = make_cutouts({"r": (img, wcs)}, table[:1], 64, output_size=16, progress=False)
    assert np.isfinite(cs.data).all()  # 4 NaN of the 16 per output pixel: filled from the rest
    # where an output pixel has no finite input it is NaN (the cutout hangs off the image)
    edge = QTable(table[:1])
    edge["coord"] = wcs.pixel_to_world(np.array([10.0]), np.array([200.0]))
    with pytest.warns(PartialOverlapWarning):
        cs = make_cutouts({"r": (image, wcs)}, edge, 64, output_size=16, progress=False)
    assert np.isnan(cs.data[0, 0, :, :5]).all() and np.isfinite(cs.data[0, 0, :, 6:]).all()
