"""ArchiveClient against recorded DaCHS answers (requests-mock, offline)."""

import os

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from anomalymatch_astro.archives import ArchiveClient, conf
from anomalymatch_astro.utils.exceptions import InvalidInputError

from .conftest import CANDELS, PRODUCT, SIA1_URL, SIA2_URL, TAP_URL

POS = Table({"id": ["gal"], "ra": [CANDELS[0]], "dec": [CANDELS[1]]})


@pytest.mark.parametrize(("protocol", "url"), [("sia1", SIA1_URL), ("sia2", SIA2_URL), ("tap", TAP_URL)])
def test_find_images_protocols(mock_dachs, client, protocol, url):
    t = client.find_images(url, POS, protocol=protocol, band=["F606W", "F814W"])
    assert sorted(t["band"]) == ["F606W", "F814W"]
    assert set(t["id"]) == {"gal"}
    assert all(u_.startswith(PRODUCT) for u_ in t["access_url"])
    assert all(d.startswith("ivo://amtest.test/~?amtest/data/candels_") for d in t["dataset_id"])
    assert all("dlmeta?ID=ivo%3A%2F%2Famtest.test" in d for d in t["datalink_url"])
    assert np.allclose(t["pixel_scale"], 0.03, atol=1e-4)
    assert set(t["protocol"]) == {protocol} and set(t["service"]) == {url}
    assert mock_dachs.called


def test_find_images_all_bands_and_request(mock_dachs, client):
    t = client.find_images(SIA1_URL, SkyCoord(*CANDELS, unit="deg"), protocol="sia1")
    assert sorted(t["band"]) == ["F606W", "F814W", "F850LP"]
    assert list(t["id"]) == ["obj0"] * 3
    query = mock_dachs.request_history[0].qs
    assert query["pos"] == ["189.49206,62.20615"]


def test_find_images_unknown_band_is_empty(mock_dachs, client):
    t = client.find_images(SIA2_URL, POS, band="z-band-nowhere")
    assert len(t) == 0 and "access_url" in t.colnames


def test_bad_protocol(client):
    with pytest.raises(InvalidInputError, match="protocol"):
        client.find_images(SIA1_URL, POS, protocol="ssa")


def test_download_caches_once(mock_dachs, client, fits_bytes):
    url = PRODUCT + "m13.fits"
    path = client.download(url)
    assert path.startswith(os.fspath(client.cache_dir))
    assert open(path, "rb").read() == fits_bytes["m13.fits"]
    assert client.download(url) == path
    assert mock_dachs.call_count == 1  # never twice
    assert os.path.exists(path + ".json")
    assert not [f for f in os.listdir(client.cache_dir) if f.startswith(".part-")]
    with fits.open(path) as hdul:
        assert hdul[0].header["FILTER"] == "DSS2"


def test_cache_key_depends_on_url(client):
    a = client.cache_path("http://x/a.fits")
    assert a != client.cache_path("http://x/a.fits", params={"s": 1})
    assert a.endswith(".fits") and client.cache_path("http://x/a.fits.gz").endswith(".fits.gz")


def test_soda_cutout(mock_dachs, client):
    t = client.find_images(SIA1_URL, POS, protocol="sia1", band="F606W")
    path = client.soda_cutout(t["datalink_url"][0], SkyCoord(*CANDELS, unit="deg"), 0.5 * u.arcsec)
    soda = [r for r in mock_dachs.request_history if r.path.endswith("/dlget")][-1]
    assert soda.qs["id"] == ["ivo://amtest.test/~?amtest/data/candels_f606w.fits"]
    ra, dec, r = (float(v) for v in soda.qs["circle"][0].split())
    assert (ra, dec) == pytest.approx(CANDELS) and r == pytest.approx(0.5 / 3600)
    assert fits.getdata(path).shape == (100, 100)
    n = mock_dachs.call_count
    assert client.soda_cutout(t["datalink_url"][0], SkyCoord(*CANDELS, unit="deg"), 0.5 * u.arcsec) == path
    assert mock_dachs.call_count == n  # cached


def test_conf_defaults_and_override(tmp_path):
    with conf.set_temp("max_retries", 7), conf.set_temp("cache_dir", str(tmp_path)):
        c = ArchiveClient()
    assert c.retries == 7 and c.cache_dir == str(tmp_path)
    with pytest.raises(InvalidInputError, match="timeout"):
        ArchiveClient(timeout=0)


def test_injected_session_is_used(mock_dachs, tmp_path):
    import requests

    session = requests.Session()
    session.headers["X-Test"] = "yes"
    c = ArchiveClient(session=session, cache_dir=tmp_path, rate_limit=0)
    c.find_images(SIA2_URL, POS, protocol="sia2")
    assert mock_dachs.request_history[-1].headers["X-Test"] == "yes"


def test_rate_limit_spaces_requests(mock_dachs, tmp_path, monkeypatch):
    import anomalymatch_astro.archives._http as mod

    sleeps = []
    monkeypatch.setattr(mod.time, "sleep", sleeps.append)
    c = ArchiveClient(cache_dir=tmp_path, rate_limit=2)
    c.get(SIA1_URL)
    c.get(SIA1_URL)
    assert sleeps and 0 < max(sleeps) <= 0.5
    c.find_images(SIA2_URL, POS)  # pyvo's requests go through the same throttled session
    assert c.n_requests == mock_dachs.call_count == 3
