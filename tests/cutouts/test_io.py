"""parse_image: every input kind, and bad FITS input with clear errors."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
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


def _declaring(path, naxis1, naxis2, bitpix=-32, **extra):
    """A FITS file whose header declares a naxis1 x naxis2 image, followed by four blocks of zeros."""
    header = fits.Header([("SIMPLE", True), ("BITPIX", bitpix), ("NAXIS", 2), ("NAXIS1", naxis1), ("NAXIS2", naxis2)])
    header.update(_wcs().to_header())
    header.update(extra)
    path.write_bytes(header.tostring().encode() + b"\0" * 2880 * 4)
    return path


@pytest.mark.parametrize("extra", [{}, {"BZERO": 32768, "BSCALE": 1}, {"BSCALE": 2.0}])
def test_declared_image_larger_than_the_file_is_refused(tmp_path, extra):
    path = _declaring(tmp_path / "big.fits", 10**6, 10**6, 16 if extra else -32, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)  # "File may have been truncated" (an error under pytest)
        with pytest.raises(ReadError, match="declares .* bytes of data but can hold at most 14400"):
            parse_image(path)
        with fits.open(path) as hdul, pytest.raises(ReadError, match="declares"):
            parse_image(hdul)  # an HDUList opened by the caller too, not a bare TypeError on first read


def test_scaled_integer_images_stay_readable(tmp_path):
    data = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32)
    fits.PrimaryHDU(data, header=_wcs().to_header()).writeto(tmp_path / "u16.fits")  # int16 with BZERO = 32768
    hdu = fits.PrimaryHDU(np.arange(32 * 32, dtype=np.float32).reshape(32, 32), header=_wcs().to_header())
    hdu.scale("int16", bscale=0.5, bzero=10.0)
    hdu.writeto(tmp_path / "scaled.fits")
    image = parse_image(tmp_path / "u16.fits")
    np.testing.assert_array_equal(image.data[30:32, 0:3], data[30:32, 0:3])
    image.close()
    image = parse_image(tmp_path / "scaled.fits")
    np.testing.assert_allclose(image.data[0:2, 0:3], fits.getdata(tmp_path / "scaled.fits")[0:2, 0:3])
    image.close()


def test_compressed_tiles_declaring_more_than_stored_are_refused(tmp_path):
    data = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    comp = fits.CompImageHDU(data, header=_wcs().to_header(), tile_shape=(16, 16))
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(tmp_path / "ok.fits")
    image = parse_image(tmp_path / "ok.fits")
    np.testing.assert_array_equal(image.data[60:64, 0:4], data[60:64, 0:4])
    image.close()
    raw = (tmp_path / "ok.fits").read_bytes()

    def card(key, value):
        return f"{key:<8}= {value:>20}".encode()

    axes = raw.replace(card("ZNAXIS1", 64), card("ZNAXIS1", 10**6)).replace(card("ZNAXIS2", 64), card("ZNAXIS2", 10**6))
    (tmp_path / "axes.fits").write_bytes(axes)
    with pytest.raises(ReadError, match="compression tiles but stores 16"):
        parse_image(tmp_path / "axes.fits")
    tile = axes.replace(card("ZTILE1", 16), card("ZTILE1", 10**6)).replace(card("ZTILE2", 16), card("ZTILE2", 10**6))
    (tmp_path / "tile.fits").write_bytes(tile)
    with pytest.raises(ReadError, match="over the limit"):
        parse_image(tmp_path / "tile.fits")


def _multi_extension(path):
    header = _wcs().to_header()
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.full((8, 8), 1, np.float32), header=header, name="SCI"),
            fits.ImageHDU(np.full((8, 10), 2, np.float32), header=header, name="SCI", ver=2),
            fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])], name="CAT"),
        ]
    ).writeto(path)
    return path


@pytest.mark.parametrize(
    ("suffix", "value", "ext"),
    [
        ("", 1, "1"),
        ("[1]", 1, "1"),
        ("[2]", 2, "2"),
        ("[SCI]", 1, "SCI"),
        ("[sci,2]", 2, "sci,2"),
        ("[ SCI , 2 ]", 2, "SCI,2"),
    ],
)
def test_extension_syntax_in_paths(tmp_path, suffix, value, ext):
    path = _multi_extension(tmp_path / "multi.fits")
    image = parse_image(f"{path}{suffix}")
    try:
        assert np.all(np.asarray(image.data[:, :]) == value)
        assert image.source == f"multi.fits[{ext}]"
    finally:
        image.close()
    tupled = parse_image(path, ext=("SCI", 2))
    assert tupled.shape == (8, 10)
    tupled.close()


@pytest.mark.parametrize(
    ("suffix", "match"),
    [
        ("[7]", r"has no extension \[7\]; it has: \[0\] PRIMARY"),
        ("[NOPE]", r"has no extension \[NOPE\]"),
        ("[SCI,3]", r"has no extension \[SCI,3\]"),
        ("[CAT]", r"the extension \[CAT\] of .* holds no image \(BinTableHDU"),
        ("[0]", r"the extension \[0\] of .* holds no image \(PrimaryHDU"),
    ],
)
def test_extension_syntax_errors(tmp_path, suffix, match):
    path = _multi_extension(tmp_path / "multi.fits")
    with pytest.raises(ReadError, match=match):
        parse_image(f"{path}{suffix}")
    with pytest.raises(ReadError, match="does not exist"):
        parse_image(f"{tmp_path / 'other.fits'}{suffix}")


def test_extension_syntax_bad_forms(tmp_path):
    path = _multi_extension(tmp_path / "multi.fits")
    with pytest.raises(InvalidInputError, match="empty"):
        parse_image(f"{path}[ ]")
    with pytest.raises(InvalidInputError, match="whole number"):
        parse_image(f"{path}[SCI,x]")
    with pytest.raises(InvalidInputError, match="give one of them"):
        parse_image(f"{path}[1]", ext=2)


def test_file_name_with_brackets_is_a_file(tmp_path):
    """A file that really is called ``img[2].fits`` or ``img.fits[2]`` opens as that file."""
    for name in ("img[2].fits", "img.fits[2]"):
        fits.writeto(tmp_path / name, np.full((8, 8), 5, np.float32), header=_wcs().to_header())
        image = parse_image(str(tmp_path / name))
        assert image.source == f"{name}[0]" and np.all(np.asarray(image.data[:, :]) == 5)
        image.close()


def test_hdulist_extension_errors(tmp_path):
    with fits.open(_multi_extension(tmp_path / "multi.fits")) as hdul:
        assert parse_image(hdul, ext=("SCI", 2)).shape == (8, 10)
        with pytest.raises(ReadError, match="has no extension"):
            parse_image(hdul, ext=9)
        with pytest.raises(ReadError, match="holds no image"):
            parse_image(hdul, ext="CAT")
