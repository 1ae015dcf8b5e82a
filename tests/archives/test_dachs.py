"""Against a REAL VO server: GAVO DaCHS on 127.0.0.1:8099, started by ``bash .ci/dachs_setup.sh``.

Marked ``vo_server``; the ``dachs`` fixture fails in CI (env CI set) when the server does not
answer, and skips locally.
"""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from anomalymatch_astro.archives import ArchiveClient, NoCoverageError, cutouts_from_service
from anomalymatch_astro.utils.exceptions import ServiceError

from .conftest import CANDELS, M13, PRODUCT, SIA1_URL, SIA2_URL, TAP_URL

pytestmark = pytest.mark.vo_server
POS = Table({"id": ["gal", "m13"], "ra": [CANDELS[0], M13[0]], "dec": [CANDELS[1], M13[1]]})


@pytest.fixture
def live(dachs, tmp_path):
    return ArchiveClient(cache_dir=tmp_path / "cache", rate_limit=0, backoff=0.1, retries=1, timeout=20)


@pytest.mark.parametrize(
    ("protocol", "url", "kw"),
    [
        ("sia1", SIA1_URL, {}),
        ("sia2", SIA2_URL, {}),
        ("tap", TAP_URL, {}),
        ("tap", TAP_URL, {"tap_async": True}),
    ],
)
def test_find_images(live, protocol, url, kw):
    t = live.find_images(url, POS, protocol=protocol, band=["F606W", "F814W", "F850LP", "DSS2"], **kw)
    got = {(i, b) for i, b in zip(t["id"], t["band"])}
    assert got == {("gal", "F606W"), ("gal", "F814W"), ("gal", "F850LP"), ("m13", "DSS2")}
    assert all(url_.startswith(PRODUCT) for url_ in t["access_url"])
    assert all(d.startswith("ivo://amtest.test/~?amtest/data/") for d in t["dataset_id"])


def test_download_and_soda(live):
    t = live.find_images(SIA1_URL, POS[1:], protocol="sia1")
    path = live.download(t["access_url"][0])
    with fits.open(path) as hdul:
        assert hdul[0].data.shape == (300, 300) and hdul[0].header["FILTER"] == "DSS2"
    cut = live.soda_cutout(t["datalink_url"][0], SkyCoord(*M13, unit="deg"), 10 * u.arcsec)
    shape = fits.getdata(cut).shape
    assert 15 <= shape[0] <= 30 and 15 <= shape[1] <= 30  # ~20 px of 1" cut on the server


def test_end_to_end_cutoutset(live, tmp_path):
    pos = Table({"id": ["a", "b"], "ra": [CANDELS[0], CANDELS[0] + 2e-4], "dec": [CANDELS[1]] * 2})
    bands = {"v": "F606W", "i": "F814W", "z": "F850LP"}
    cs = cutouts_from_service(SIA2_URL, pos, 24, bands=bands, client=live, workdir=tmp_path / "w", progress=False)
    assert cs.shape == (2, 3, 24, 24) and np.isfinite(cs.data).all()
    assert set(cs.table["method_v"]) == {"soda"}
    full = cutouts_from_service(
        SIA1_URL, pos, 24, bands=bands, protocol="sia1", client=live, soda=False, progress=False
    )
    assert set(full.table["method_z"]) == {"image"}
    # server-side (SODA) and local cutouts of the same image agree pixel for pixel
    assert np.allclose(cs.data, full.data)


def test_no_coverage_and_error_votable(live):
    empty = live.find_images(SIA2_URL, SkyCoord([10.0], [-80.0], unit="deg"))
    assert len(empty) == 0
    with pytest.raises(NoCoverageError):
        cutouts_from_service(
            SIA1_URL,
            SkyCoord([10.0], [-80.0], unit="deg"),
            16,
            bands=["F606W"],
            protocol="sia1",
            client=live,
            progress=False,
        )
    with pytest.raises(ServiceError, match="ivoa.nonexisting"):
        live.find_images(TAP_URL, POS[:1], protocol="tap", tap_table="ivoa.nonexisting")
