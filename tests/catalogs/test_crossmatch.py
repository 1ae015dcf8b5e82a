import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable, Table

from anomalymatch_astro.catalogs import crossmatch
from anomalymatch_astro.utils.exceptions import InvalidInputError


@pytest.fixture
def cands():
    return QTable(
        {
            "id": ["a", "b", "c"],
            "coord": SkyCoord([10, 20, 30], [0, 0, 0], unit="deg"),
            "score": [0.9, 0.5, 0.1],
        },
        meta={"model": "m1"},
    )


@pytest.fixture
def cat():
    # S1 0.36" from a; S2 0.5" and S3 0.9" from c; nothing near b
    return QTable(
        {
            "name": ["S1", "S2", "S3"],
            "ra": [10.0001, 30 + 0.5 / 3600, 30.0],
            "dec": [0.0, 0.0, 0.9 / 3600],
            "mag": [18.0, 19.0, 20.0] * u.mag,
        }
    )


def test_nearest_keeps_unmatched_masked(cands, cat):
    m = crossmatch(cands, cat, radius=1 * u.arcsec)
    assert len(m) == 3
    assert m["id"].tolist() == ["a", "b", "c"]
    assert m["cat_name"].tolist() == ["S1", None, "S2"]
    assert m["cat_mag"].mask.tolist() == [False, True, False]
    assert m["cat_mag"].unit == u.mag
    assert m["sep"].unit == u.arcsec
    np.testing.assert_allclose(m["sep"].unmasked[[0, 2]].value, [0.36, 0.5], atol=1e-6)
    assert m["sep"].mask.tolist() == [False, True, False]
    assert m["cat_index"].tolist() == [0, None, 1]
    assert isinstance(m["coord"], SkyCoord)
    assert m.meta["model"] == "m1"
    assert m.meta["crossmatch"]["n_matched"] == 2 and m.meta["crossmatch"]["mode"] == "nearest"


def test_radius_limits_matches(cands, cat):
    m = crossmatch(cands, cat, radius="0.4arcsec")
    assert m["cat_name"].tolist() == ["S1", None, None]


def test_all_mode_pairs_sorted(cands, cat):
    m = crossmatch(cands, cat, radius="1arcsec", mode="all")
    assert m["id"].tolist() == ["a", "c", "c"]
    assert m["cat_name"].tolist() == ["S1", "S2", "S3"]
    assert np.all(np.diff(m["sep"][1:].value) > 0)
    assert m.meta["crossmatch"]["n_matched"] == 2


def test_catalog_kinds_and_prefix(cands, cat):
    sc = SkyCoord(cat["ra"], cat["dec"], unit="deg")
    m = crossmatch(cands, sc, radius="1arcsec", prefix="x_")
    assert m["x_ra"].mask.tolist() == [False, True, False]
    withcoord = QTable({"name": cat["name"], "pos": sc})
    m2 = crossmatch(cands, withcoord, radius="1arcsec")
    assert m2["cat_name"].tolist() == ["S1", None, "S2"]
    assert "cat_ra" in m2.colnames  # the SkyCoord column becomes ra/dec
    plain = Table({"RAJ2000": np.asarray(cat["ra"]), "DEJ2000": np.asarray(cat["dec"]), "n": [1, 2, 3]})
    m3 = crossmatch(cands, plain, radius="1arcsec")
    assert m3["cat_n"].tolist() == [1, None, 2]
    m4 = crossmatch(Table({"id": ["q"], "ra": [10.0], "dec": [0.0]}), cat, radius="1arcsec")
    assert m4["cat_name"].tolist() == ["S1"]


def test_explicit_catalog_coord(cands):
    cat = Table({"alpha": [10.0001], "delta": [0.0], "ra": [50.0], "dec": [50.0]})
    m = crossmatch(cands, cat, radius="1arcsec", catalog_coord=("alpha", "delta"))
    assert m["cat_index"].tolist() == [0, None, None]
    m = crossmatch(cands, cat, radius="1arcsec")  # ra/dec found first: no match
    assert m.meta["crossmatch"]["n_matched"] == 0


def test_empty_catalog(cands, cat):
    m = crossmatch(cands, cat[:0], radius="1arcsec")
    assert len(m) == 3 and m["sep"].mask.all() and m["cat_name"].mask.all()
    assert len(crossmatch(cands, cat[:0], radius="1arcsec", mode="all")) == 0


@pytest.mark.parametrize("radius", [1.0, "banana", -1 * u.arcsec, 1 * u.m, None])
def test_bad_radius(cands, cat, radius):
    with pytest.raises(InvalidInputError):
        crossmatch(cands, cat, radius=radius)


def test_bad_inputs(cands, cat):
    with pytest.raises(InvalidInputError, match="mode"):
        crossmatch(cands, cat, radius="1arcsec", mode="best")
    with pytest.raises(InvalidInputError, match="no sky positions"):
        crossmatch(cands, Table({"name": ["x"]}), radius="1arcsec")
    with pytest.raises(InvalidInputError, match="prefix"):
        crossmatch(cands, Table({"score": [1.0], "ra": [1.0], "dec": [1.0]}), radius="1arcsec", prefix="")
    with pytest.raises(InvalidInputError):
        crossmatch(cands, [1, 2, 3], radius="1arcsec")
