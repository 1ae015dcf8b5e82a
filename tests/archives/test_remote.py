"""Twins of the offline tests against public services (``--remote-data`` only)."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from anomalymatch_astro.archives import ArchiveClient, cutouts_from_service

pytestmark = pytest.mark.remote_data

#: public SIA 2 query endpoint of CADC
CADC_SIA2 = "https://ws.cadc-ccda.hia-iha.nrc-cnrc.gc.ca/sia/v2query"
M101 = SkyCoord(210.80227, 54.34895, unit="deg")


@pytest.fixture
def remote(tmp_path):
    return ArchiveClient(cache_dir=tmp_path / "cache", rate_limit=2, timeout=60)


def test_hips2fits_public(remote):
    cs = cutouts_from_service(
        None,
        M101.reshape((1,)),
        32,
        bands={"r": "CDS/P/DSS2/red"},
        protocol="hips",
        client=remote,
        pixel_scale=2 * u.arcsec,
        progress=False,
    )
    assert cs.shape == (1, 1, 32, 32) and np.isfinite(cs.data).all() and cs.data.std() > 0


def test_public_sia2(remote):
    t = remote.find_images(CADC_SIA2, M101.reshape((1,)), radius=1 * u.arcsec, maxrec=20)
    assert len(t) > 0 and all(url.startswith("http") for url in t["access_url"])
