"""cutouts_from_service end to end on recorded answers: provenance, SODA, resumable workdir, HiPS."""

import json
import os

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.archives import NoCoverageError, cutouts_from_service
from anomalymatch_astro.utils.exceptions import AnomalyMatchWarning, InvalidInputError

from .conftest import CANDELS, PRODUCT, SIA1_URL, SIA2_URL, TAP_URL

requests_mock = pytest.importorskip("requests_mock")
BANDS = {"v": "F606W", "i": "F814W"}


def _positions():
    return Table(
        {
            "id": ["a", "b"],
            "ra": [CANDELS[0], CANDELS[0] + 1e-4],
            "dec": [CANDELS[1], CANDELS[1]],
            "mag": [21.0, 22.5],
        }
    )


@pytest.mark.parametrize(("protocol", "url"), [("sia1", SIA1_URL), ("sia2", SIA2_URL), ("tap", TAP_URL)])
def test_full_images(mock_dachs, client, fits_bytes, protocol, url):
    cs = cutouts_from_service(
        url, _positions(), 16, bands=BANDS, protocol=protocol, client=client, soda=False, progress=False
    )
    assert cs.shape == (2, 2, 16, 16) and cs.bands == ("v", "i")
    assert list(cs.ids) == ["a", "b"]
    assert list(cs.table["mag"]) == [21.0, 22.5]
    assert set(cs.table["method_v"]) == {"image"}
    assert list(cs.table["access_url_i"]) == [PRODUCT + "candels_f814w.fits"] * 2
    assert cs.table["dataset_id_v"][0] == "ivo://amtest.test/~?amtest/data/candels_f606w.fits"
    assert cs.meta["archive"]["service"] == url and cs.meta["archive"]["protocol"] == protocol
    # pixels are the real image's: centre of the 100x100 image at the first position
    with fits.open(client.download(PRODUCT + "candels_f606w.fits")) as hdul:
        data = hdul[0].data
    x0, y0 = int(cs.table["x_origin"][0]), int(cs.table["y_origin"][0])
    assert np.allclose(cs.data[0, 0], data[y0 : y0 + 16, x0 : x0 + 16])
    # each image downloaded once for both positions
    gets = [r.url for r in mock_dachs.request_history if r.url.startswith(PRODUCT)]
    assert len(gets) == len(set(gets)) == 2
    wcs = cs.wcs(0)
    assert wcs.pixel_to_world(7.5, 7.5).separation(SkyCoord(*CANDELS, unit="deg")) < 0.05 * u.arcsec


def test_soda_route(mock_dachs, client):
    cs = cutouts_from_service(
        SIA1_URL, _positions()[:1], 16, bands={"v": "F606W"}, protocol="sia1", client=client, progress=False
    )
    assert cs.table["method_v"][0] == "soda"
    assert "dlmeta" in cs.table["access_url_v"][0]
    assert any(r.path.endswith("/dlget") for r in mock_dachs.request_history)


def test_resumable_workdir(mock_dachs, client, tmp_path):
    work = tmp_path / "work"
    pos = _positions()
    first = cutouts_from_service(
        SIA2_URL, pos[:1], 16, bands=BANDS, client=client, workdir=work, soda=False, progress=False
    )
    record = json.loads((work / "progress.json").read_text())
    assert [p["ids"] for p in record["parts"]] == [["a"]]
    n_search = sum(r.url.startswith(SIA2_URL) for r in mock_dachs.request_history)
    second = cutouts_from_service(
        SIA2_URL, pos, 16, bands=BANDS, client=client, workdir=work, soda=False, progress=False
    )
    n_search2 = sum(r.url.startswith(SIA2_URL) for r in mock_dachs.request_history)
    assert n_search2 - n_search == 1  # only "b" was searched again
    assert list(second.ids) == ["a", "b"]
    assert np.array_equal(second.data[0], first.data[0])
    assert len(json.loads((work / "progress.json").read_text())["parts"]) == 2
    with pytest.raises(InvalidInputError, match="another query"):
        cutouts_from_service(SIA2_URL, pos, 32, bands=BANDS, client=client, workdir=work, progress=False)
    saved = (work / "progress.json").read_text()
    for damaged in (saved[: len(saved) // 2], "[1, 2]", '{"format": "x"}'):  # cut short by a crash, or not ours
        (work / "progress.json").write_text(damaged)
        with pytest.raises(InvalidInputError, match="damaged progress.json.*delete it"):
            cutouts_from_service(SIA2_URL, pos, 16, bands=BANDS, client=client, workdir=work, progress=False)
    (work / "progress.json").write_text(saved)
    second.to_hdf5(tmp_path / "out.h5")
    back = CutoutSet.from_hdf5(tmp_path / "out.h5", lazy=False)
    assert list(back.table["dataset_id_i"]) == list(second.table["dataset_id_i"])


def test_missing_band(mock_dachs, client, tmp_path):
    bands = {"v": "F606W", "k": "F160W"}
    with pytest.raises(NoCoverageError, match="no F160W|no k") as info:
        cutouts_from_service(SIA2_URL, _positions(), 16, bands=bands, client=client, soda=False, progress=False)
    assert info.value.ids == ["a", "b"]
    with (
        pytest.warns(AnomalyMatchWarning, match="skipped 2"),
        pytest.raises(NoCoverageError, match="no cutouts"),
    ):
        cutouts_from_service(
            SIA2_URL,
            _positions(),
            16,
            bands=bands,
            client=client,
            soda=False,
            on_missing="skip",
            progress=False,
        )


def test_input_checks(client):
    with pytest.raises(InvalidInputError, match="protocol"):
        cutouts_from_service(SIA2_URL, _positions(), 16, bands="g", protocol="scs", client=client)
    with pytest.raises(InvalidInputError, match="pixel_scale"):
        cutouts_from_service(None, _positions(), 16, bands={"r": "CDS/P/DSS2/red"}, protocol="hips", client=client)
    with pytest.raises(InvalidInputError, match="bands"):
        cutouts_from_service(SIA2_URL, _positions(), 16, bands=None, client=client)


def test_hips_route(client, fits_bytes):
    from astroquery.hips2fits import conf as hips_conf

    server = hips_conf.server
    with requests_mock.Mocker() as m:
        m.get(server, content=fits_bytes["m13.fits"])
        cs = cutouts_from_service(
            None,
            SkyCoord([250.4569], [36.4326], unit="deg"),
            16,
            bands={"r": "CDS/P/DSS2/red"},
            protocol="hips",
            client=client,
            pixel_scale=1 * u.arcsec,
            progress=False,
        )
        query = m.request_history[0].qs
    assert cs.shape == (1, 1, 16, 16)
    assert query["hips"] == ["cds/p/dss2/red"] and query["width"] == ["16"] and query["projection"] == ["tan"]
    assert cs.table["method_r"][0] == "hips" and cs.table["dataset_id_r"][0] == "CDS/P/DSS2/red"
    assert os.path.exists(client.cache_path(m.request_history[0].url))


def test_soda_failure_falls_back_to_whole_image(mock_dachs, client):
    from anomalymatch_astro.utils.exceptions import ArchiveError

    mock_dachs.get("http://127.0.0.1:8099/amtest/q/dl/dlget", status_code=500)
    cs = cutouts_from_service(
        SIA1_URL, _positions()[:1], 16, bands={"v": "F606W"}, protocol="sia1", client=client, progress=False
    )
    assert cs.table["method_v"][0] == "image"
    assert cs.table["access_url_v"][0] == PRODUCT + "candels_f606w.fits"
    with pytest.raises(ArchiveError, match="3 attempt"):
        cutouts_from_service(
            SIA1_URL,
            _positions()[1:],
            16,
            bands={"v": "F606W"},
            protocol="sia1",
            client=client,
            soda=True,
            progress=False,
        )
