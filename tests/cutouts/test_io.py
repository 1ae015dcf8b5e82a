"""parse_image: every input kind, and bad FITS input with clear errors."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from anomalymatch_astro import make_cutouts
from anomalymatch_astro.cutouts import parse_image
from anomalymatch_astro.utils.exceptions import InvalidInputError, MissingWCSError, ReadError


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [10.0, 20.0]
    w.wcs.crpix = [16, 16]
    w.wcs.cdelt = [-1e-4, 1e-4]
    return w


def test_truncated_fits(tmp_path):
    path = tmp_path / "img.fits"
    fits.writeto(path, np.ones((64, 64), np.float32), header=_wcs().to_header())
    raw = path.read_bytes()
    (tmp_path / "trunc.fits").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ReadError, match="truncated"):
        parse_image(tmp_path / "trunc.fits")


def test_garbage_file(tmp_path):
    (tmp_path / "junk.fits").write_bytes(b"this is not a FITS file at all" * 100)
    with pytest.raises(ReadError, match="could not open"):
        parse_image(tmp_path / "junk.fits")


def test_missing_file(tmp_path):
    with pytest.raises(ReadError, match="does not exist"):
        parse_image(tmp_path / "nope.fits")


def test_header_without_celestial_wcs(tmp_path):
    path = tmp_path / "nowcs.fits"
    fits.writeto(path, np.ones((8, 8), np.float32))
    with pytest.raises(MissingWCSError, match="no celestial WCS"):
        parse_image(path)
    linear = WCS(naxis=2)
    with pytest.raises(MissingWCSError):
        parse_image((np.ones((8, 8)), linear))


def test_no_image_extension(tmp_path):
    path = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])]).writeto(path)
    with pytest.raises(ReadError, match="no image"):
        parse_image(path)


def test_degenerate_axes_squeezed_and_bad_dims():
    image = parse_image((np.ones((1, 8, 9)), _wcs()))
    assert image.shape == (8, 9)
    with pytest.raises(InvalidInputError, match="2-D"):
        parse_image((np.ones((2, 8, 9)), _wcs()))
    with pytest.raises(InvalidInputError, match="cannot use"):
        parse_image(42)


def test_header_as_wcs_and_file_left_closed(tmp_path):
    path = tmp_path / "img.fits"
    fits.writeto(path, np.arange(32 * 32, dtype=np.float32).reshape(32, 32), header=_wcs().to_header())
    image = parse_image(path)
    assert image.source.endswith("img.fits[0]")
    image.close()
    image = parse_image((np.ones((4, 4)), _wcs().to_header()))
    assert image.wcs.has_celestial


def test_error_from_make_cutouts_names_file(tmp_path):
    (tmp_path / "bad.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    coords = _wcs().pixel_to_world([16], [16])
    with pytest.raises(ReadError, match="bad.fits"):
        make_cutouts({"g": tmp_path / "bad.fits"}, coords, 8, progress=False)
