"""Batched, resumable TAP cross-matches (``crossmatch_tap(..., workdir=...)``).

Offline: a fake TAP service (requests-mock) that answers each upload from a local catalogue and
fails once on batch 3.  Live: the ``ammosaic.sources`` table of the local DaCHS server
(``bash .ci/dachs_setup.sh``), with a session that drops the connection on the third upload.
"""

import importlib.util
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy.coordinates import SkyCoord
from astropy.io import votable
from astropy.table import QTable, Table

from anomalymatch_astro.archives import conf
from anomalymatch_astro.catalogs import crossmatch, crossmatch_tap
from anomalymatch_astro.utils.exceptions import ArchiveError, InvalidInputError

requests_mock = pytest.importorskip("requests_mock")
pytest.importorskip("pyvo")

TAP_URL = "https://tap.example.org/tap"
VOTABLE = {"Content-Type": "application/x-votable+xml"}
N_CANDS, BATCH = 23, 5  # 5 batches, the last one of 3


@pytest.fixture(autouse=True)
def no_retries():
    with conf.set_temp("backoff", 0.0), conf.set_temp("rate_limit", 0.0), conf.set_temp("max_retries", 0):
        yield


@pytest.fixture
def catalog():
    rng = np.random.default_rng(7)
    ra, dec = 150 + rng.uniform(0, 0.1, 60), 2 + rng.uniform(0, 0.1, 60)
    return Table({"source_id": [f"S{i:03d}" for i in range(60)], "ra": ra, "dec": dec, "mag": rng.uniform(18, 22, 60)})


@pytest.fixture
def cands(catalog):
    """23 candidates: 15 within 1 arcsec of a catalogue source, 8 far from any."""
    rng = np.random.default_rng(3)
    ra = np.concatenate([catalog["ra"][:15] + rng.normal(0, 5e-5, 15), 151 + rng.uniform(0, 0.1, 8)])
    dec = np.concatenate([catalog["dec"][:15] + rng.normal(0, 5e-5, 15), 3 + rng.uniform(0, 0.1, 8)])
    return QTable({"id": [f"c{i:02d}" for i in range(N_CANDS)], "coord": SkyCoord(ra, dec, unit="deg")})


def _upload(request):
    """The uploaded candidate table of a TAP request (multipart VOTable)."""
    body = request.body if isinstance(request.body, bytes) else request.body.encode()
    start, end = body.index(b"<?xml"), body.index(b"</VOTABLE>") + len(b"</VOTABLE>")
    return votable.parse_single_table(io.BytesIO(body[start:end])).to_table()


class FakeTAP:
    """Answers uploads with the catalogue sources inside each candidate's circle; fails once on a batch."""

    def __init__(self, catalog, *, fail_on=None):
        self.catalog, self.fail_on, self.batches, self.failed = catalog, fail_on, [], False

    def __call__(self, request, context):
        up = _upload(request)
        ids = [x.decode() if isinstance(x, bytes) else str(x) for x in up["cand_id"]]
        query = request.body.decode(errors="replace") if isinstance(request.body, bytes) else request.body
        r_deg = float(re.search(r"CIRCLE\('ICRS', c\.ra, c\.dec, ([0-9.e-]+)\)", query).group(1))
        if ids[0] == self.fail_on and not self.failed:
            self.failed = True
            raise requests.exceptions.ConnectionError("connection reset by peer")
        self.batches.append(tuple(ids))
        cat = SkyCoord(self.catalog["ra"], self.catalog["dec"], unit="deg")
        rows = []
        for cid, ra, dec in zip(ids, up["ra"], up["dec"]):
            near = SkyCoord(ra, dec, unit="deg").separation(cat).deg <= r_deg
            rows += [(cid, *self.catalog[k]) for k in np.flatnonzero(near)]
        out = Table(rows=rows or None, names=["cand_id", *self.catalog.colnames], dtype=["U8", "U8", "f8", "f8", "f8"])
        buf = io.BytesIO()
        votable.from_table(out).to_xml(buf)
        context.headers.update(VOTABLE)
        return buf.getvalue()


def _run(cands, fake, **kw):
    session = requests.Session()
    with requests_mock.Mocker(session=session) as m:
        m.post(f"{TAP_URL}/sync", content=fake)
        return crossmatch_tap(
            cands,
            TAP_URL,
            table_name="cat.sources",
            radius=kw.pop("radius", "1arcsec"),
            session=session,
            batch_size=BATCH,
            progress=False,
            **kw,
        )


def test_resume_after_failure(cands, catalog, tmp_path):
    work = tmp_path / "xmatch"
    fake = FakeTAP(catalog, fail_on="c10")  # the first id of batch 3
    with pytest.raises(ArchiveError, match="batch 3 of 5.*run again with the same workdir"):
        _run(cands, fake, workdir=work)
    assert len(fake.batches) == 2 and len(list(work.glob("batch*"))) == 2
    assert (work / "query.json").exists()
    resumed = _run(cands, fake, workdir=work)
    # every batch answered exactly once over the two runs
    assert sorted(b[0] for b in fake.batches) == ["c00", "c05", "c10", "c15", "c20"]
    assert len(list(work.glob("batch*"))) == 5
    expected = crossmatch(cands, catalog, radius="1arcsec", prefix="tap_")
    assert resumed["id"].tolist() == expected["id"].tolist()
    assert resumed["tap_source_id"].tolist() == expected["tap_source_id"].tolist()
    assert sum(v is not None for v in resumed["tap_source_id"].tolist()) == 15
    np.testing.assert_allclose(resumed["sep"].filled(np.nan).value, expected["sep"].filled(np.nan).value)
    # a third run asks nothing; an uninterrupted run without workdir gives the same table
    again = _run(cands, fake, workdir=work)
    assert len(fake.batches) == 5
    plain = _run(cands, FakeTAP(catalog))
    for t in (again, plain):
        assert t["tap_source_id"].tolist() == resumed["tap_source_id"].tolist()
        np.testing.assert_allclose(t["tap_mag"].filled(np.nan), resumed["tap_mag"].filled(np.nan))


def test_changed_query_not_mixed(cands, catalog, tmp_path):
    work = tmp_path / "xmatch"
    fake = FakeTAP(catalog)
    _run(cands, fake, workdir=work)
    wide = _run(cands, fake, workdir=work, radius="2deg")  # another query: every batch asked again
    assert len(fake.batches) == 10 and len(list(work.glob("batch*"))) == 10
    assert wide.meta["crossmatch"]["n_matched"] == N_CANDS
    moved = cands.copy()
    dec = moved["coord"].dec.deg.copy()
    dec[0] += 0.01
    moved["coord"] = SkyCoord(moved["coord"].ra.deg, dec, unit="deg")
    _run(moved, fake, workdir=work)  # batch 1 moved: only it is asked again
    assert len(fake.batches) == 11 and fake.batches[-1][0] == "c00"


def test_errors(cands, catalog, tmp_path):
    fake = FakeTAP(catalog, fail_on="c05")
    with pytest.raises(ArchiveError, match="batch 2 of 5; pass workdir="):
        _run(cands, fake)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        _run(cands, fake, workdir=a_file)
    with pytest.raises(InvalidInputError, match="batch_size"):
        crossmatch_tap(cands, TAP_URL, table_name="t", radius="1arcsec", batch_size=0, workdir=tmp_path / "w")
    assert not (tmp_path / "w").exists()
    # an unreadable stored batch is asked again
    work = tmp_path / "xmatch"
    _run(cands, FakeTAP(catalog), workdir=work)
    broken = sorted(work.glob("batch00000-*"))[0]
    broken.write_text("not ecsv")
    fake = FakeTAP(catalog)
    result = _run(cands, fake, workdir=work)
    assert [b[0] for b in fake.batches] == ["c00"]
    assert sum(v is not None for v in result["tap_source_id"].tolist()) == 15


# ----------------------------------------------------------------------------- live: local DaCHS
MOSAIC_PY = Path(__file__).parents[1] / "archives" / "dachs" / "mosaic.py"


@pytest.fixture(scope="module")
def mosaic():
    spec = importlib.util.spec_from_file_location("ammosaic_mosaic_xmatch", MOSAIC_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        requests.get(f"{module.TAP_URL}/availability", timeout=5).raise_for_status()
    except Exception as exc:  # noqa: BLE001
        reason = f"the DaCHS test server does not answer ({exc}); start it with `bash .ci/dachs_setup.sh` (as root)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return module


class DropThirdUpload(requests.Session):
    """A session whose third TAP upload fails with a dropped connection (a crash mid-run)."""

    def __init__(self):
        super().__init__()
        self.uploads = 0

    def request(self, method, url, *args, **kwargs):
        if method.upper() == "POST" and url.endswith("/sync"):
            self.uploads += 1
            if self.uploads == 3:
                raise requests.exceptions.ConnectionError("connection dropped")
        return super().request(method, url, *args, **kwargs)


@pytest.mark.vo_server
def test_live_dachs_resume(mosaic, tmp_path):
    truth = mosaic.sources_table(mosaic.make_sources())
    rng = np.random.default_rng(11)
    pick = rng.choice(len(truth), 120, replace=False)
    ra = np.concatenate([truth["ra"][pick] + rng.normal(0, 1e-4, 120), 150.0 + rng.uniform(-0.1, 0.1, 30)])
    dec = np.concatenate([truth["dec"][pick] + rng.normal(0, 1e-4, 120), 2.2 + rng.uniform(-0.1, 0.1, 30)])
    cands = QTable({"id": [f"k{i:03d}" for i in range(150)], "coord": SkyCoord(ra, dec, unit="deg")})
    kw = {"table_name": mosaic.SOURCES_TABLE, "radius": "2arcsec", "batch_size": 40, "progress": False}
    work = tmp_path / "xmatch"
    session = DropThirdUpload()
    with pytest.raises(ArchiveError, match="batch 3 of 4"):
        crossmatch_tap(cands, mosaic.TAP_URL, session=session, workdir=work, **kw)
    assert len(list(work.glob("batch*"))) == 2
    result = crossmatch_tap(cands, mosaic.TAP_URL, session=session, workdir=work, **kw)
    assert session.uploads == 3 + 2  # the rerun uploaded batches 3 and 4 only
    expected = crossmatch(cands, truth, radius="2arcsec", prefix="tap_")
    assert result["tap_source_id"].tolist() == expected["tap_source_id"].tolist()
    assert sum(v is not None for v in result["tap_source_id"].tolist()) >= 120
    np.testing.assert_allclose(result["sep"].filled(np.nan).value, expected["sep"].filled(np.nan).value, atol=1e-6)
    assert result["tap_kind"].tolist() == expected["tap_kind"].tolist()
