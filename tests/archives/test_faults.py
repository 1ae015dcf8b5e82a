"""Faults injected with requests-mock: retries, timeouts, truncated files, malformed and error VOTables."""

import os

import pytest
import requests
from astropy.table import Table

from anomalymatch_astro.archives import ArchiveClient
from anomalymatch_astro.utils.exceptions import ArchiveError, ServiceError

from .conftest import CANDELS, PRODUCT, SIA1_URL, SIA2_URL, TAP_URL, recorded

requests_mock = pytest.importorskip("requests_mock")
POS = Table({"id": ["gal"], "ra": [CANDELS[0]], "dec": [CANDELS[1]]})
URL = PRODUCT + "candels_f814w.fits"


def _leftovers(cache_dir):
    return sorted(f for f in os.listdir(cache_dir) if f.endswith(".fits")) if os.path.isdir(cache_dir) else []


def test_500_then_success_is_retried(client, fits_bytes):
    data = fits_bytes["candels_f814w.fits"]
    with requests_mock.Mocker() as m:
        m.get(
            URL,
            [
                {"status_code": 500, "text": "boom"},
                {"status_code": 503, "text": "busy"},
                {"content": data, "headers": {"Content-Length": str(len(data))}},
            ],
        )
        path = client.download(URL)
        assert m.call_count == 3
    assert open(path, "rb").read() == data


def test_search_500_then_success(client):
    with requests_mock.Mocker() as m:
        m.get(SIA2_URL, [{"status_code": 502, "text": "bad gateway"}, {"content": recorded("sia2_candels.xml")}])
        t = client.find_images(SIA2_URL, POS, band="F606W")
        assert m.call_count == 2
    assert list(t["band"]) == ["F606W"]


def test_timeout_retries_then_archive_error(client):
    with requests_mock.Mocker() as m:
        m.get(SIA1_URL, exc=requests.exceptions.ConnectTimeout)
        with pytest.raises(ArchiveError, match="3 attempt"):
            client.find_images(SIA1_URL, POS, protocol="sia1")
        assert m.call_count == 3


def test_download_timeout_then_success(client, fits_bytes):
    data = fits_bytes["candels_f814w.fits"]
    with requests_mock.Mocker() as m:
        m.get(URL, [{"exc": requests.exceptions.ReadTimeout}, {"content": data}])
        assert open(client.download(URL), "rb").read() == data


def test_truncated_content_length_never_cached(client, fits_bytes):
    data = fits_bytes["candels_f814w.fits"]
    with requests_mock.Mocker() as m:
        m.get(URL, content=data[:5000], headers={"Content-Length": str(len(data))})
        with pytest.raises(ArchiveError, match="incomplete download"):
            client.download(URL)
        assert m.call_count == 3
    assert _leftovers(client.cache_dir) == []
    assert not os.path.exists(client.cache_path(URL))
    assert os.listdir(client.cache_dir) == []  # no temporary file left either


def test_corrupt_fits_is_retried_then_fails(client, fits_bytes):
    data = fits_bytes["candels_f814w.fits"][: 2880 + 1000]  # header + part of the data, length consistent
    with requests_mock.Mocker() as m:
        m.get(URL, content=data)
        with pytest.raises(ArchiveError, match="truncated or corrupt"):
            client.download(URL)
        assert m.call_count == 3
    assert not os.path.exists(client.cache_path(URL))


def test_truncated_then_good_download(client, fits_bytes):
    data = fits_bytes["candels_f814w.fits"]
    with requests_mock.Mocker() as m:
        m.get(URL, [{"content": data[:100], "headers": {"Content-Length": str(len(data))}}, {"content": data}])
        assert open(client.download(URL), "rb").read() == data


def test_malformed_votable(client):
    with requests_mock.Mocker() as m:
        m.get(SIA2_URL, text="<html><body>Service temporarily moved</body></html>")
        with pytest.raises(ServiceError, match="malformed|not a VOTable|VOTable"):
            client.find_images(SIA2_URL, POS)
        assert m.call_count == 1  # not retried


def test_error_votable_tap(client):
    with requests_mock.Mocker() as m:
        m.post(f"{TAP_URL}/sync", content=recorded("tap_error.xml"))
        with pytest.raises(ServiceError, match="Could not locate table 'ivoa.nonexisting_table'"):
            client.find_images(TAP_URL, POS, protocol="tap")


def test_error_votable_pyvo_recorded(client):
    """pyvo's own recorded error document (QUERY_STATUS=ERROR)."""
    import pyvo

    path = os.path.join(os.path.dirname(pyvo.__file__), "dal", "tests", "data", "query", "errorstatus.xml")
    with open(path, "rb") as f:
        body = f.read()
    with requests_mock.Mocker() as m:
        m.get(SIA1_URL, content=body)
        with pytest.raises(ServiceError, match="reported an error"):
            client.find_images(SIA1_URL, POS, protocol="sia1")


def test_error_votable_instead_of_file(client):
    with requests_mock.Mocker() as m:
        m.get(URL, status_code=404, content=recorded("tap_error.xml"))
        with pytest.raises(ServiceError, match="Could not locate table"):
            client.download(URL)
        m.get(URL, status_code=200, content=recorded("tap_error.xml"))
        with pytest.raises(ServiceError, match="Could not locate table"):
            client.download(URL)
    assert not os.path.exists(client.cache_path(URL))


def test_4xx_is_not_retried(client):
    with requests_mock.Mocker() as m:
        m.get(URL, status_code=403, text="forbidden")
        with pytest.raises(ServiceError, match="HTTP 403"):
            client.download(URL)
        assert m.call_count == 1


def test_backoff_doubles(tmp_path, monkeypatch):
    import anomalymatch_astro.archives._http as mod

    sleeps = []
    monkeypatch.setattr(mod.time, "sleep", sleeps.append)
    c = ArchiveClient(cache_dir=tmp_path, rate_limit=0, retries=3, backoff=0.25)
    with requests_mock.Mocker() as m:
        m.get(URL, status_code=500)
        with pytest.raises(ArchiveError, match="4 attempt"):
            c.download(URL)
    assert sleeps == [0.25, 0.5, 1.0]
