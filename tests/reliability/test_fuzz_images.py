"""Fuzzed FITS headers, pixels and files, and fuzzed catalogues, through parse_image / make_cutouts."""

import io
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import QTable, Table
from astropy.wcs import WCS
from hypothesis import given, settings
from hypothesis import strategies as st

from anomalymatch_astro import make_cutouts
from anomalymatch_astro.cutouts import parse_image, parse_positions
from anomalymatch_astro.utils.exceptions import AnomalyMatchWarning

from .conftest import FUZZ, check

CTYPES = [
    "RA---TAN",
    "DEC--TAN",
    "GLON-CAR",
    "GLAT-CAR",
    "RA---SIN",
    "DEC--SIN",
    "RA---XYZ",
    "",
    "FREQ",
    "DEC--TAN-SIP",
    "LINEAR",
    "\x7f",
    "RA---TAN",
]
# FITS headers cannot hold NaN/inf: astropy refuses to write them, so only finite values here
FLOATS = st.one_of(st.floats(-1e300, 1e300), st.floats(-400, 400), st.sampled_from([0.0, 1e-5, -1e-5, 1e300]))
KEYWORDS = st.fixed_dictionaries(
    {},
    optional={
        "CTYPE1": st.sampled_from(CTYPES),
        "CTYPE2": st.sampled_from(CTYPES),
        "CRVAL1": FLOATS,
        "CRVAL2": FLOATS,
        "CRPIX1": FLOATS,
        "CRPIX2": FLOATS,
        "CDELT1": FLOATS,
        "CDELT2": FLOATS,
        "CD1_1": FLOATS,
        "CD2_2": FLOATS,
        "CD1_2": FLOATS,
        "PC1_1": FLOATS,
        "CUNIT1": st.sampled_from(["deg", "arcsec", "m", "bogus"]),
        "RADESYS": st.sampled_from(["ICRS", "FK5", "GALACTIC", "nonsense"]),
        "EQUINOX": FLOATS,
        "LONPOLE": FLOATS,
        "WCSAXES": st.integers(-1, 5),
        "BSCALE": st.sampled_from([1.0, 2.0, 0.0]),
        "BZERO": st.sampled_from([0.0, 32768.0]),
        "BUNIT": st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8),
    },
)


def _good_header(shape=(16, 16)):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    w.wcs.cdelt = [-1 / 3600, 1 / 3600]
    return w.to_header()


@st.composite
def pixel_arrays(draw):
    ndim = draw(st.sampled_from([2, 2, 2, 2, 3, 0, 1, 4]))
    shape = tuple(draw(st.lists(st.integers(1, 12), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int16, np.int32, np.uint8]))
    data = np.asarray(
        draw(st.sampled_from([0.0, 1.0, -5.0])) + np.arange(int(np.prod(shape))).reshape(shape) % 7, dtype=dtype
    )
    if data.dtype.kind == "f" and data.size:
        special = draw(st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 1e38]), max_size=5))
        flat = data.reshape(-1)
        for k, value in enumerate(special):
            flat[(k * 7) % flat.size] = value
    return data


def _sane(cs, n):
    assert cs.shape[0] <= n and cs.data.dtype == np.float32
    assert not np.isinf(cs.data).any()  # NaN for missing/bad pixels, never inf
    assert len(set(cs.ids)) == len(cs)


def _cut(image):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnomalyMatchWarning)
        return make_cutouts(
            {"r": image}, SkyCoord([150.0, 150.001], [2.0, 2.001], unit="deg"), 4, on_missing="flag", progress=False
        )


@FUZZ
@given(keywords=KEYWORDS, data=pixel_arrays())
def test_fits_header_and_pixels(tmp_path_factory, keywords, data):
    header = _good_header(data.shape[-2:] if data.ndim >= 2 else (16, 16))
    path = tmp_path_factory.mktemp("fits") / "img.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for key, value in keywords.items():
                header[key] = value
            fits.PrimaryHDU(data, header=header).writeto(path, output_verify="silentfix")
        except Exception:  # noqa: BLE001 -- astropy refuses to write it: nothing to read back
            return
    image = check("FITS header + pixels", parse_image, path)
    if image is not None:
        assert len(image.shape) == 2 and image.wcs.has_celestial
        image.close()
        cs = check("FITS header + pixels (make_cutouts)", _cut, path)
        if cs is not None:
            _sane(cs, 2)


def _good_fits_bytes(compressed=False):
    data = np.arange(24 * 24, dtype=np.float32).reshape(24, 24)
    buf = io.BytesIO()
    if compressed:
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header=_good_header((24, 24)))]).writeto(buf)
    else:
        fits.PrimaryHDU(data, header=_good_header((24, 24))).writeto(buf)
    return buf.getvalue()


@FUZZ
@given(
    compressed=st.booleans(),
    cut=st.one_of(st.just(1.0), st.floats(0, 1)),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8),
)
def test_truncated_and_corrupted_fits_files(tmp_path_factory, compressed, cut, flips):
    content = bytearray(_good_fits_bytes(compressed))
    for where, value in flips:
        content[int(where * (len(content) - 1))] = value
    content = bytes(content[: int(cut * len(content))]) if cut < 0.999 else bytes(content)
    path = tmp_path_factory.mktemp("bad") / "img.fits"
    path.write_bytes(content)
    image = check("truncated/corrupted FITS file", parse_image, path)
    if image is not None:
        image.close()
        cs = check("truncated/corrupted FITS file (make_cutouts)", _cut, path)
        if cs is not None:
            _sane(cs, 2)


@FUZZ
@given(data=pixel_arrays(), wcs_kind=st.sampled_from(["wcs", "header", "none", "3d", "string"]))
def test_in_memory_arrays(data, wcs_kind):
    wcs = {
        "wcs": WCS(_good_header()),
        "header": _good_header(),
        "none": WCS(naxis=2),
        "3d": WCS(naxis=3),
        "string": "RA---TAN",
    }[wcs_kind]
    image = check("(array, wcs) input", parse_image, (data, wcs))
    if image is not None:
        cs = check("(array, wcs) input (make_cutouts)", _cut, (data, wcs))
        if cs is not None:
            _sane(cs, 2)


UNITS = st.sampled_from([None, None, u.deg, u.deg, u.rad, u.arcsec, u.m, u.dimensionless_unscaled, u.hourangle])
COORDS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1000, 1000),
    st.sampled_from([150.0, 2.0, 90.0, -90.0, 360.0, 91.0]),
)


@st.composite
def catalogues(draw):
    n = draw(st.integers(0, 5))
    coords = st.one_of(st.floats(149.99, 150.01), st.floats(1.99, 2.01), COORDS)
    table = QTable()
    names = ["ra", "dec"] if draw(st.booleans()) else []
    names += draw(
        st.lists(st.sampled_from(["ra", "dec", "RA", "DEC", "id", "mag", "ra_deg", "coord"]), unique=True, max_size=4)
    )
    for name in dict.fromkeys(names):
        if name == "id":
            values = draw(st.lists(st.one_of(st.text(max_size=4), st.integers(-3, 3)), min_size=n, max_size=n))
            table[name] = np.array([str(v) for v in values], dtype=object) if n else np.array([], dtype=str)
        elif name == "coord":
            table[name] = SkyCoord(np.full(n, 150.0), np.full(n, 2.0), unit="deg")
        else:
            values = np.array(draw(st.lists(coords, min_size=n, max_size=n)), dtype=float)
            if draw(st.integers(0, 4)) == 0:
                values = values.astype(str)
                table[name] = values
                continue
            unit = draw(UNITS)
            table[name] = values * unit if unit is not None else values
    return table


@settings(FUZZ, max_examples=80)
@given(
    table=catalogues(),
    ids=st.one_of(
        st.none(), st.none(), st.none(), st.just("id"), st.just("nope"), st.lists(st.text(max_size=3), max_size=5)
    ),
)
def test_catalogues(table, ids):
    parsed = check("catalogue (parse_positions)", parse_positions, table, ids=ids)
    if parsed is not None:
        coords, obj_ids, _ = parsed
        assert obj_ids is None or len(obj_ids) == len(coords)
    image = (np.ones((32, 32), np.float32), WCS(_good_header((32, 32))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnomalyMatchWarning)
        cs = check(
            "catalogue (make_cutouts)", make_cutouts, {"r": image}, table, 4, ids=ids, on_missing="skip", progress=False
        )
    if cs is not None:
        _sane(cs, len(table))


@pytest.mark.parametrize(
    "table",
    [
        Table({"ra": [150.0, 150.0], "dec": [2.0, 2.0], "id": ["a", "a"]}),  # duplicate ids
        Table({"ra": [150.0], "dec": [95.0]}),  # |dec| > 90
        Table({"ra": ["x"], "dec": ["y"]}),  # text
        Table({"ra": [150.0] * u.m, "dec": [2.0] * u.m}),  # wrong unit
        Table({"x": [1.0]}),  # no position columns
    ],
)
def test_bad_catalogue_refused(table):
    from anomalymatch_astro.utils.exceptions import InvalidInputError

    image = (np.ones((32, 32), np.float32), WCS(_good_header((32, 32))))
    with pytest.raises(InvalidInputError):
        make_cutouts({"r": image}, table, 4, progress=False)
