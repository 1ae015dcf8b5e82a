"""Remote cross-matches, replayed offline from tiny recorded responses with requests-mock."""

import re

import numpy as np
import pytest
import requests
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from anomalymatch_astro.archives import conf
from anomalymatch_astro.catalogs import crossmatch_simbad, crossmatch_tap, crossmatch_vizier
from anomalymatch_astro.utils.exceptions import ArchiveError, InvalidInputError, ServiceError

requests_mock = pytest.importorskip("requests_mock")
pytest.importorskip("astroquery")
pytest.importorskip("pyvo")

VOTABLE = {"Content-Type": "application/x-votable+xml"}
TAP_URL = "https://tap.example.org/tap"


@pytest.fixture(autouse=True)
def no_backoff():
    """Retries without waiting (the HTTP layer's settings come from the archives' conf)."""
    with conf.set_temp("backoff", 0.0), conf.set_temp("rate_limit", 0.0), conf.set_temp("max_retries", 2):
        yield


@pytest.fixture
def cands():
    return QTable({"id": ["a", "b", "c"], "coord": SkyCoord([10, 20, 30], [0, 0, 0], unit="deg")})


def test_simbad(cands, recorded):
    with requests_mock.Mocker() as m:
        m.get(re.compile(r".*/sim-tap/capabilities"), text=recorded("simbad_capabilities.xml"))
        m.post(re.compile(r".*/sim-tap/sync"), text=recorded("simbad_region.xml"), headers=VOTABLE)
        result = crossmatch_simbad(cands, radius="2arcsec")
        query = m.request_history[-1].text
    assert "CONTAINS" in query and "CIRCLE" in query
    assert result["id"].tolist() == ["a", "b", "c"]
    assert result["simbad_main_id"].tolist() == ["SDSS J004000.02+000000.1", None, "Gaia DR3 1234567890"]
    assert result["simbad_otype"].tolist() == ["G", None, "*"]
    np.testing.assert_allclose(result["sep"].unmasked[[0, 2]].value, [0.3759, 1.44], atol=1e-3)


def test_simbad_batches(cands, recorded):
    with requests_mock.Mocker() as m:
        m.get(re.compile(r".*/sim-tap/capabilities"), text=recorded("simbad_capabilities.xml"))
        m.post(re.compile(r".*/sim-tap/sync"), text=recorded("simbad_region.xml"), headers=VOTABLE)
        result = crossmatch_simbad(cands, radius="2arcsec", batch_size=2)
        n_queries = sum(1 for r in m.request_history if r.url.endswith("/sync"))
    assert n_queries == 2
    # the same sources come back twice; each is kept once
    assert result["simbad_main_id"].tolist() == ["SDSS J004000.02+000000.1", None, "Gaia DR3 1234567890"]


def test_simbad_errors(cands, recorded):
    with requests_mock.Mocker() as m:
        m.get(re.compile(r".*/sim-tap/capabilities"), text=recorded("simbad_capabilities.xml"))
        m.post(re.compile(r".*/sim-tap/sync"), status_code=400, text="Bad Request")
        with pytest.raises(ServiceError, match="SIMBAD"):
            crossmatch_simbad(cands, radius="2arcsec")
        n_sync = sum(1 for r in m.request_history if r.url.endswith("/sync"))
    assert n_sync == 1  # an error answer is not retried
    with requests_mock.Mocker() as m:
        m.get(re.compile(r".*/sim-tap/capabilities"), text=recorded("simbad_capabilities.xml"))
        m.post(re.compile(r".*/sim-tap/sync"), status_code=500, text="Internal Server Error")
        with pytest.raises(ArchiveError, match="SIMBAD query failed after 3 attempt"):
            crossmatch_simbad(cands, radius="2arcsec")
        n_sync = sum(1 for r in m.request_history if r.url.endswith("/sync"))
    assert n_sync == 3
    with requests_mock.Mocker() as m:
        m.get(re.compile(r".*/sim-tap/capabilities"), exc=requests.exceptions.ConnectionError("no route"))
        m.post(re.compile(r".*/sim-tap/sync"), exc=requests.exceptions.ConnectionError("no route"))
        with pytest.raises(ArchiveError, match="Could not reach SIMBAD"):
            crossmatch_simbad(cands, radius="2arcsec")


def test_simbad_503_then_success(cands, recorded):
    with requests_mock.Mocker() as m:
        m.get(re.compile(r".*/sim-tap/capabilities"), text=recorded("simbad_capabilities.xml"))
        m.post(
            re.compile(r".*/sim-tap/sync"),
            [
                {"status_code": 503, "text": "Service Unavailable"},
                {"text": recorded("simbad_region.xml"), "headers": VOTABLE},
            ],
        )
        result = crossmatch_simbad(cands, radius="2arcsec")
        n_sync = sum(1 for r in m.request_history if r.url.endswith("/sync"))
    assert n_sync == 2
    assert result["simbad_main_id"].tolist() == ["SDSS J004000.02+000000.1", None, "Gaia DR3 1234567890"]


def test_vizier_503_then_success(cands, recorded):
    with requests_mock.Mocker() as m:
        m.post(
            re.compile(r".*/viz-bin/votable"),
            [
                {"status_code": 503, "text": "Service Unavailable"},
                {"exc": requests.exceptions.ConnectTimeout("timed out")},
                {"text": recorded("vizier_region.xml"), "headers": VOTABLE},
            ],
        )
        result = crossmatch_vizier(cands, "I/355/gaiadr3", radius="2arcsec")
        assert m.call_count == 3
    assert result["vizier_Source"].tolist() == [2546034966433885568, None, 2500000000000000001]


def test_tap_503_then_success(cands, recorded):
    session = requests.Session()
    with requests_mock.Mocker(session=session) as m:
        m.post(
            f"{TAP_URL}/sync",
            [
                {"status_code": 503, "text": "Service Unavailable"},
                {"text": recorded("tap_upload_result.xml"), "headers": VOTABLE},
            ],
        )
        result = crossmatch_tap(cands, TAP_URL, table_name="gaiadr3.gaia_source", radius="1arcsec", session=session)
        assert m.call_count == 2
    assert result["tap_source_id"].tolist() == [101, None, 303]


def test_retries_follow_conf(cands):
    session = requests.Session()
    with conf.set_temp("max_retries", 0), requests_mock.Mocker(session=session) as m:
        m.post(f"{TAP_URL}/sync", status_code=503, text="Service Unavailable")
        with pytest.raises(ArchiveError, match="1 attempt"):
            crossmatch_tap(cands, TAP_URL, table_name="gaia.src", radius="1arcsec", session=session)
        assert m.call_count == 1


def test_vizier(cands, recorded):
    with requests_mock.Mocker() as m:
        m.post(re.compile(r".*/viz-bin/votable"), text=recorded("vizier_region.xml"), headers=VOTABLE)
        nearest = crossmatch_vizier(cands, "I/355/gaiadr3", radius="2arcsec")
        body = m.request_history[-1].text
        every = crossmatch_vizier(cands, "I/355/gaiadr3", radius="2arcsec", mode="all")
    assert "-source=I/355/gaiadr3" in body and "-c.rs=2" in body
    assert nearest["vizier_Source"].tolist() == [2546034966433885568, None, 2500000000000000001]
    assert "vizier__q" not in nearest.colnames
    assert every["id"].tolist() == ["a", "c", "c"]
    assert np.asarray(every["vizier_Gmag"].value).tolist() == pytest.approx([18.123456, 19.5, 20.25])


def test_vizier_errors(cands, recorded):
    with pytest.raises(InvalidInputError):
        crossmatch_vizier(cands, "", radius="2arcsec")
    with requests_mock.Mocker() as m:
        m.post(re.compile(r".*/viz-bin/votable"), exc=requests.exceptions.ConnectTimeout("timed out"))
        with pytest.raises(ArchiveError, match="VizieR") as info:
            crossmatch_vizier(cands, "I/355/gaiadr3", radius="2arcsec")
        assert m.call_count == 3
    assert not isinstance(info.value, ServiceError)
    with pytest.raises(InvalidInputError, match="batch_size"):
        crossmatch_vizier(cands, "I/355/gaiadr3", radius="2arcsec", batch_size=0)


def test_tap_upload(cands, recorded):
    session = requests.Session()
    with requests_mock.Mocker(session=session) as m:
        m.post(f"{TAP_URL}/sync", text=recorded("tap_upload_result.xml"), headers=VOTABLE)
        result = crossmatch_tap(cands, TAP_URL, table_name="gaiadr3.gaia_source", radius="1arcsec", session=session)
        request = m.request_history[-1]
    body = request.body.decode()
    assert "multipart/form-data" in request.headers["Content-Type"]
    assert "TAP_UPLOAD.cands" in body and "JOIN gaiadr3.gaia_source AS t" in body
    assert "CONTAINS(POINT('ICRS', t.ra, t.dec), CIRCLE('ICRS', c.ra, c.dec, " in body
    assert 'name="UPLOAD"' in body and "cands,param:cands" in body
    assert result["tap_source_id"].tolist() == [101, None, 303]
    assert result["sep"].mask.tolist() == [False, True, False]
    assert "tap_cand_id" not in result.colnames


def test_tap_errors(cands, recorded):
    session = requests.Session()
    with requests_mock.Mocker(session=session) as m:
        m.post(f"{TAP_URL}/sync", text=recorded("tap_error.xml"), headers=VOTABLE)
        with pytest.raises(ServiceError, match="does not exist"):
            crossmatch_tap(cands, TAP_URL, table_name="nosuch.table", radius="1arcsec", session=session)
    with requests_mock.Mocker(session=session) as m:
        m.post(f"{TAP_URL}/sync", exc=requests.exceptions.ConnectionError("refused"))
        with pytest.raises(ArchiveError, match="Could not reach") as info:
            crossmatch_tap(cands, TAP_URL, table_name="gaia.src", radius="1arcsec", session=session)
    assert not isinstance(info.value, ServiceError)
    with pytest.raises(InvalidInputError):
        crossmatch_tap(cands, TAP_URL, table_name="x; DROP TABLE y", radius="1arcsec")
    with pytest.raises(InvalidInputError, match="'id'"):
        crossmatch_tap(QTable({"ra": [1.0], "dec": [2.0]}), TAP_URL, table_name="t", radius="1arcsec")


# ----------------------------------------------------------------------------- live twins
M31 = SkyCoord(10.684708, 41.26875, unit="deg")


@pytest.mark.remote_data
def test_simbad_remote():
    result = crossmatch_simbad(QTable({"id": ["m31"], "coord": M31.reshape((1,))}), radius="5arcsec")
    assert "M  31" in str(result["simbad_main_id"][0])


@pytest.mark.remote_data
def test_vizier_remote():
    cands = QTable({"id": ["m31"], "coord": M31.reshape((1,))})
    result = crossmatch_vizier(cands, "VII/237/pgc", radius="30arcsec")
    assert not result["sep"].mask[0]


@pytest.mark.remote_data
def test_tap_remote():
    cands = QTable({"id": ["m31"], "coord": M31.reshape((1,))})
    result = crossmatch_tap(
        cands,
        "https://simbad.cds.unistra.fr/simbad/sim-tap",
        table_name="basic",
        radius="5arcsec",
        columns="main_id, ra, dec",
    )
    assert "M  31" in str(result["tap_main_id"][0])
