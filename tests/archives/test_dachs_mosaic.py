"""The ``ammosaic`` resource of the local DaCHS server against a local build of the same mosaic.

``bash .ci/dachs_setup.sh`` publishes the tiles and the source table written by
``tests/archives/dachs/mosaic.py``; here the same script writes them again into a temporary
folder and the server's answers (SIA 2, downloads, SODA cut-outs, TAP) are compared with them.
"""

import collections
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

HERE = Path(__file__).parent


def _load_mosaic():
    spec = importlib.util.spec_from_file_location("ammosaic_mosaic", HERE / "dachs" / "mosaic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mosaic = _load_mosaic()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """(folder, sources table) of a local build of the mosaic."""
    folder = tmp_path_factory.mktemp("ammosaic")
    return folder, mosaic.make_mosaic(folder)


@pytest.fixture
def live(dachs, tmp_path):
    from anomalymatch_astro.archives import ArchiveClient

    return ArchiveClient(cache_dir=tmp_path / "cache", rate_limit=0, backoff=0.1, retries=1, timeout=30)


def test_mosaic_geometry(local):
    """The contract's layout: 12 tiles, sources >= 40 px inside, any 64 px cutout inside one tile."""
    folder, sources = local
    assert sorted(p.name for p in folder.glob("ammosaic_*.fits")) == sorted(
        mosaic.tile_name(b, iy, ix) for b in mosaic.BANDS for iy in (0, 1) for ix in (0, 1)
    )
    kinds = collections.Counter(sources["kind"])
    assert kinds["galaxy"] == 400 and sum(sources["is_anomaly"]) == 12 == len(sources) - 400
    assert len(set(sources["source_id"])) == len(sources)
    x, y = mosaic.mosaic_wcs().all_world2pix(sources["ra"], sources["dec"], 0)
    assert min(x.min(), y.min()) >= 40 and max(x.max(), y.max()) <= mosaic.NPIX - 1 - 40
    # a 64 px box around any source lies in at least one tile along each axis
    for v in (x, y):
        lo = np.round(v).astype(int) - 32
        fits_tile = [(lo >= o) & (lo + 64 <= o + mosaic.TILE) for o in mosaic.TILE_ORIGINS]
        assert np.all(fits_tile[0] | fits_tile[1])
    header = fits.getheader(folder / mosaic.tile_name("r", 1, 1))
    assert header["FILTER"] == "r" and header["OBJECT"] == "ammosaic" and header["MAGZERO"] == 28.0
    centre = WCS(header).all_world2pix([[*mosaic.MOSAIC_CENTER]], 0)[0]
    assert np.allclose(centre, [(mosaic.NPIX - 1) / 2 - 480] * 2)


@pytest.mark.vo_server
def test_sia2_collection_tiles_download(live, local):
    folder, _ = local
    url = f"{mosaic.SIA2_URL}?COLLECTION={mosaic.COLLECTION}"
    found = live.find_images(
        url,
        SkyCoord([mosaic.MOSAIC_CENTER[0]], [mosaic.MOSAIC_CENTER[1]], unit="deg"),
        band=list(mosaic.BANDS),
        progress=False,
    )
    assert collections.Counter(found["band"]) == {"g": 4, "r": 4, "i": 4}
    assert all(a.startswith(mosaic.PRODUCT_URL) for a in found["access_url"])
    assert all(d for d in found["datalink_url"])
    for access_url, band in zip(found["access_url"], found["band"]):
        name = access_url.rsplit("/", 1)[1]
        assert name.startswith(f"ammosaic_{band}_")
        with fits.open(live.download(access_url)) as served, fits.open(folder / name) as built:
            assert served[0].header["FILTER"] == band
            assert np.array_equal(served[0].data, built[0].data)
            assert WCS(served[0].header).wcs.compare(WCS(built[0].header).wcs)
    # the collection keeps the amtest images out
    import pyvo

    sia = pyvo.dal.SIA2Service(mosaic.SIA2_URL, check_baseurl=False)
    rows = sia.search(pos=(*mosaic.MOSAIC_CENTER, 0.001), collection=mosaic.COLLECTION).to_table()
    assert len(rows) == 12 and set(rows["obs_collection"]) == {"ammosaic"}


@pytest.mark.vo_server
def test_soda_cutout_matches_local_pixels(live, local):
    folder, sources = local
    ring = sources[sources["kind"] == "ring"][0]
    pos = SkyCoord(ring["ra"], ring["dec"], unit="deg")
    found = live.find_images(mosaic.SIA1_URL, pos, protocol="sia1", band="g", progress=False)
    assert len(found) >= 1
    for row in found:
        name = row["access_url"].rsplit("/", 1)[1]
        cut = live.soda_cutout(row["datalink_url"], pos, 20 * u.arcsec)
        with fits.open(cut) as hdul:
            data, header = hdul[0].data, hdul[0].header
        assert 35 <= data.shape[0] <= 50 and 35 <= data.shape[1] <= 50  # ~40 px of 1"
        full = fits.getdata(folder / name)
        # the cut's first pixel in the local tile's pixel grid
        x0, y0 = WCS(fits.getheader(folder / name)).all_world2pix(*WCS(header).all_pix2world([[0, 0]], 0)[0], 0)
        ix, iy = round(float(x0)), round(float(y0))
        assert abs(x0 - ix) < 1e-6 and abs(y0 - iy) < 1e-6
        assert np.array_equal(data, full[iy : iy + data.shape[0], ix : ix + data.shape[1]])
        assert data.max() > 10  # the ring's galaxy is in it


@pytest.mark.vo_server
def test_tap_sources_table(dachs, local):
    import pyvo

    _, sources = local
    tap = pyvo.dal.TAPService(mosaic.TAP_URL)
    count = tap.search(f"SELECT COUNT(*) AS n FROM {mosaic.SOURCES_TABLE}").to_table()
    assert int(count["n"][0]) == len(sources) == 412
    served = tap.search(f"SELECT * FROM {mosaic.SOURCES_TABLE} ORDER BY source_id").to_table()
    assert served.colnames == ["source_id", "ra", "dec", "mag_r", "kind", "is_anomaly"]
    assert list(served["source_id"]) == list(sources["source_id"])
    assert list(served["kind"]) == list(sources["kind"])
    assert np.array_equal(served["is_anomaly"], sources["is_anomaly"])
    assert np.allclose(served["ra"], sources["ra"], rtol=0, atol=1e-9)
    assert np.allclose(served["dec"], sources["dec"], rtol=0, atol=1e-9)
    assert np.allclose(served["mag_r"], sources["mag_r"], rtol=1e-6)
    odd = tap.search(f"SELECT source_id FROM {mosaic.SOURCES_TABLE} WHERE is_anomaly = 1").to_table()
    assert len(odd) == 12
