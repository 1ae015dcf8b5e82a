import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from anomalymatch_astro.datasets import ANOMALY_KINDS, MockSurvey, make_lens_survey, make_mock_survey
from anomalymatch_astro.utils.exceptions import InvalidInputError

N = 60


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    return make_mock_survey(tmp_path_factory.mktemp("mock"), n_objects=N, anomaly_fraction=0.2, seed=3)


def test_files_and_dataclass(survey):
    assert isinstance(survey, MockSurvey)
    assert survey.bands == ("g", "r", "i")
    assert survey.reference_band == "g"
    assert list(survey.images) == ["g", "r", "i"]
    for path in survey.images.values():
        assert path.exists()
    assert survey.catalog_path.exists()
    assert survey.pixel_scale == 0.2 * u.arcsec


def test_deterministic(survey, tmp_path):
    again = make_mock_survey(tmp_path, n_objects=N, anomaly_fraction=0.2, seed=3)
    for band in survey.bands:
        np.testing.assert_array_equal(fits.getdata(survey.images[band]), fits.getdata(again.images[band]))
    assert list(again.catalog["kind"]) == list(survey.catalog["kind"])
    np.testing.assert_array_equal(again.catalog["ra"], survey.catalog["ra"])
    other = make_mock_survey(tmp_path / "other", n_objects=N, anomaly_fraction=0.2, seed=4)
    assert not np.array_equal(fits.getdata(other.images["g"]), fits.getdata(survey.images["g"]))


def test_wcs_celestial_and_grids_differ(survey):
    scales, cds = {}, {}
    for band, path in survey.images.items():
        header = fits.getheader(path)
        wcs = WCS(header)
        assert wcs.has_celestial and wcs.celestial.naxis == 2
        assert wcs.wcs.ctype[0] == "RA---TAN" and wcs.wcs.ctype[1] == "DEC--TAN"
        assert 149.9 < header["CRVAL1"] < 150.3 and 2.0 < header["CRVAL2"] < 2.4
        scales[band] = proj_plane_pixel_scales(wcs) * 3600
        cds[band] = wcs.pixel_scale_matrix
    np.testing.assert_allclose(scales["g"], 0.2)
    np.testing.assert_allclose(scales["r"], 0.2)
    np.testing.assert_allclose(scales["i"], 0.3)
    # r is rotated by 25 deg: off-diagonal terms of the CD matrix
    assert abs(cds["g"][0, 1]) < 1e-12
    angle = np.degrees(np.arctan2(cds["r"][0, 1], -cds["r"][0, 0]))
    assert angle == pytest.approx(25.0)
    shapes = {b: fits.getdata(p).shape for b, p in survey.images.items()}
    assert len(set(shapes.values())) == 3


def test_catalog_columns(survey):
    cat = survey.catalog
    for col in ("id", "ra", "dec", "kind", "is_anomaly", "mag_g", "mag_r", "mag_i", "sersic_n", "r_eff_arcsec"):
        assert col in cat.colnames
    assert len(cat) == N
    assert len(set(cat["id"])) == N
    assert all(i.startswith("MS") and len(i) == 8 for i in cat["id"])
    assert cat["ra"].unit == u.deg
    assert cat["is_anomaly"].dtype == bool
    np.testing.assert_array_equal(cat["is_anomaly"], np.isin(cat["kind"], ANOMALY_KINDS))
    stars = cat["kind"] == "star"
    assert stars.any() and np.all(np.isnan(cat["sersic_n"][stars]))
    galaxies = cat["kind"] == "galaxy"
    assert np.all(cat["r_eff_arcsec"][galaxies] > 0)
    # round trip of the written ECSV
    back = Table.read(survey.catalog_path)
    assert list(back["id"]) == list(cat["id"])
    assert back.meta["bands"] == ["g", "r", "i"]


def test_anomaly_fraction_and_kinds(survey):
    cat = survey.catalog
    assert int(cat["is_anomaly"].sum()) == round(0.2 * N)
    assert set(cat["kind"][cat["is_anomaly"]]) == set(ANOMALY_KINDS)
    assert {"star", "galaxy"} <= set(cat["kind"])


def test_positions_inside_every_band(survey):
    coords = survey.coords
    for band, path in survey.images.items():
        data = fits.getdata(path)
        x, y = WCS(fits.getheader(path)).world_to_pixel(coords)
        margin = 32 * 0.2 / (0.3 if band == "i" else 0.2)  # a 64-px reference cutout fits
        assert np.all(x > margin) and np.all(x < data.shape[1] - 1 - margin)
        assert np.all(y > margin) and np.all(y < data.shape[0] - 1 - margin)


def _aperture_sum(survey, band, row, radius_arcsec):
    path = survey.images[band]
    data = fits.getdata(path)
    header = fits.getheader(path)
    x, y = WCS(header).world_to_pixel(survey.coords[row])
    yy, xx = np.mgrid[: data.shape[0], : data.shape[1]]
    r = np.hypot(xx - x, yy - y) * header["PIXSCALE"]
    inside = r < radius_arcsec
    return data[inside].sum(), header["SKYSIG"] * np.sqrt(inside.sum())


def test_injected_anomalies_visible(survey):
    cat = survey.catalog
    for kind in ("lens", "merger", "colour"):
        row = int(np.where(cat["kind"] == kind)[0][0])
        flux, noise = _aperture_sum(survey, survey.bands[1], row, 3.0)
        assert flux > 10 * noise, kind
    row = int(np.where(cat["kind"] == "trail")[0][0])
    band = cat["detail"][row].rsplit("_", 1)[1]
    assert band in survey.bands
    # the artefact is in one band only: that band's peak near the object stands far above the noise
    data = fits.getdata(survey.images[band])
    header = fits.getheader(survey.images[band])
    x, y = np.round(WCS(header).world_to_pixel(survey.coords[row])).astype(int)
    assert data[y - 12 : y + 13, x - 12 : x + 13].max() > 8 * header["SKYSIG"]


def test_empty_sky_is_noise(survey):
    data = fits.getdata(survey.images["g"])
    header = fits.getheader(survey.images["g"])
    corner = data[:20, :20]
    assert abs(np.median(corner)) < header["SKYSIG"]
    assert 0.5 * header["SKYSIG"] < np.std(corner) < 2 * header["SKYSIG"]


def test_lens_survey(tmp_path):
    s = make_lens_survey(tmp_path, n_objects=40, lens_fraction=0.05, seed=1, n_background=10)
    assert set(s.catalog["kind"][s.catalog["is_anomaly"]]) == {"lens"}
    assert int(s.catalog["is_anomaly"].sum()) == 2
    assert all(d.startswith("hard_sis") for d in s.catalog["detail"][s.catalog["is_anomaly"]])
    assert s.images["g"].name == "lens_g.fits"
    # a lens-search target list: every normal target is an elliptical like the lens galaxies
    normal = ~np.asarray(s.catalog["is_anomaly"])
    assert set(s.catalog["detail"][normal]) == {"elliptical"}
    lenses = np.asarray(s.catalog["is_anomaly"])
    assert np.all(s.catalog["mag_r"][lenses] < 21.5) and np.all(s.catalog["axis_ratio"][lenses] >= 0.7)
    assert s.catalog.meta["population"] == "ellipticals"


def test_seed_none_is_recorded(tmp_path):
    s = make_mock_survey(tmp_path, n_objects=4, anomaly_fraction=0.0, seed=None, n_background=0)
    assert isinstance(s.catalog.meta["seed"], int)
    again = make_mock_survey(
        tmp_path / "again", n_objects=4, anomaly_fraction=0.0, seed=s.catalog.meta["seed"], n_background=0
    )
    np.testing.assert_array_equal(fits.getdata(s.images["r"]), fits.getdata(again.images["r"]))


def test_single_band_and_options(tmp_path):
    s = make_mock_survey(
        tmp_path,
        n_objects=10,
        bands=["r"],
        anomaly_fraction=0.2,
        anomaly_kinds=("lens", "trail"),
        psf="gaussian",
        n_background=0,
    )
    assert s.bands == ("r",)
    assert fits.getheader(s.images["r"])["PSF_TYPE"] == "gaussian"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(bands=["g"], anomaly_kinds=("colour",)), "need at least two bands"),
        (dict(anomaly_kinds=("ghost",)), "anomaly_kinds must be chosen from"),
        (dict(anomaly_fraction=1.5), "anomaly_fraction must be in"),
        (dict(n_objects=0), "n_objects must be"),
        (dict(bands=["g", "g"]), "unique names"),
        (dict(pixel_scale=3.0 * u.kg), "pixel_scale must be an angle"),
        (dict(psf="airy"), "psf must be"),
        (dict(psf_fwhm=[0.8, 0.9]), "psf_fwhm must give one"),
        (dict(population="quasars"), "population must be"),
        (dict(seed=-1), "seed must be"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    kwargs.setdefault("n_objects", 5)
    with pytest.raises(InvalidInputError, match=match):
        make_mock_survey(tmp_path, **kwargs)
