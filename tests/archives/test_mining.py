"""archives.mine on the local files of the DaCHS mosaic: coverage MOCs, candidates, resume, Dask, rate limit."""

import glob
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

pytest.importorskip("mocpy")
pytest.importorskip("hats")
pytest.importorskip("distributed")

from anomalymatch_astro.archives import LocalSurvey, mine, mining_status  # noqa: E402
from anomalymatch_astro.utils.exceptions import ArchiveError, InvalidInputError  # noqa: E402

#: lsdb and nested-pandas use pandas options and keywords that pandas 3 deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

HERE = Path(__file__).parent
SIZE = 32
#: a box over the mosaic's east half and the empty sky east of it
REGION = ((150.2, 2.2), 0.35 * u.deg, 0.25 * u.deg)


def load_mosaic_module():
    spec = importlib.util.spec_from_file_location("ammosaic_module", HERE / "dachs" / "mosaic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class MeanScorer:
    """A picklable stand-in model: the mean pixel of each cutout."""

    scorer_id = "mean-v1"

    def __call__(self, cutouts):
        return np.nanmean(cutouts.data, axis=(1, 2, 3)).astype(np.float64)


class FlakySurvey(LocalSurvey):
    """A LocalSurvey whose image service 'answers HTTP 500' for the cells near ``bad`` while ``flag`` exists."""

    def __init__(self, *args, bad=(), flag=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.bad, self.flag = list(bad), flag

    def cell_images(self, center, radius):
        if self.flag and os.path.exists(self.flag):
            for ra, dec in self.bad:
                if center.separation(SkyCoord(ra * u.deg, dec * u.deg)).deg < 1e-6:
                    msg = "SIA 2 query failed after 1 attempt(s): HTTP 500 from http://example.invalid/sia2"
                    raise ArchiveError(msg)
        return super().cell_images(center, radius)


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory):
    module = load_mosaic_module()
    folder = tmp_path_factory.mktemp("mosaic")
    sources = module.make_mosaic(folder)
    images = {b: sorted(glob.glob(str(folder / f"ammosaic_{b}_*.fits"))) for b in module.BANDS}
    return module, folder, sources, images


@pytest.fixture(scope="module")
def survey(mosaic):
    _, folder, _, images = mosaic
    return LocalSurvey(images, catalog=folder / "sources.ecsv", id_column="source_id")


@pytest.fixture(scope="module")
def reference(survey, tmp_path_factory):
    """One synchronous run: the results every other run must reproduce."""
    wd = tmp_path_factory.mktemp("reference") / "wd"
    result = mine(survey, REGION, scorer=MeanScorer(), workdir=wd, size=SIZE, scheduler="synchronous", progress=False)
    return result


def catalog_rows(result_or_workdir):
    import lsdb

    if hasattr(result_or_workdir, "paths"):
        path = result_or_workdir.paths["catalog"]
    else:
        path = os.path.join(result_or_workdir, "catalog")
    df = lsdb.open_catalog(path).compute()
    return {str(i): float(s) for i, s in zip(df["id"], df["score"])}


def expected_cells(module, order):
    """Cells of the region that meet the mosaic (done) and those that do not (no data)."""
    from mocpy import MOC

    from anomalymatch_astro.archives import parse_region, region_cells

    w = module.mosaic_wcs()
    n = module.NPIX
    corners = w.pixel_to_world([-0.5, n - 0.5, n - 0.5, -0.5], [-0.5, -0.5, n - 0.5, n - 0.5])
    footprint = MOC.from_polygon_skycoord(SkyCoord(corners), max_depth=order + 4)
    cells = region_cells(parse_region(REGION), order)
    covered = {int(c) for c in cells if not footprint.intersection(_cell(c, order)).empty()}
    return covered, set(int(c) for c in cells) - covered


def _cell(pix, order):
    from mocpy import MOC

    return MOC.from_healpix_cells(np.array([pix], dtype=np.uint64), np.array([order], dtype=np.uint8), order)


def local_scores(module, images, sources, ids, scorer=None):
    """Cut each source from a tile that holds it whole, with make_cutouts, and score it."""
    from anomalymatch_astro import make_cutouts

    scorer = scorer or MeanScorer()
    out = {}
    for sid in ids:
        row = sources[list(sources["source_id"]).index(sid)]
        for k in range(len(images["r"])):
            tiles = {b: images[b][k] for b in module.BANDS}
            from astropy.io import fits
            from astropy.wcs import WCS

            x, y = WCS(fits.getheader(tiles["r"])).world_to_pixel_values(row["ra"], row["dec"])
            if 18 <= x <= module.TILE - 19 and 18 <= y <= module.TILE - 19:
                cs = make_cutouts(tiles, SkyCoord(row["ra"] * u.deg, row["dec"] * u.deg), SIZE, progress=False)
                out[sid] = float(scorer(cs)[0])
                break
    return out


def test_coverage_mocs_and_candidates_equal_local_cutting(mosaic, reference):
    module, _, sources, images = mosaic
    result = reference
    assert result.order == 9  # 10 arcmin tiles -> 6.9 arcmin cells
    done, nodata = expected_cells(module, result.order)
    summary, mocs = mining_status(result.workdir)
    assert set(int(c) for c in mocs["done"].flatten()) == done
    assert set(int(c) for c in mocs["nodata"].flatten()) == nodata
    assert len(nodata) >= 2 and len(done) >= 8
    assert mocs["failed"].empty() and summary["todo"] == 0
    # the FITS MOCs on disk are the same
    from mocpy import MOC

    assert MOC.from_fits(result.paths["done"]) == mocs["done"]
    # every catalogued source inside the region and the done cells is a candidate, once
    region = mocs["region"]
    inside = region.contains_lonlat(np.asarray(sources["ra"]) * u.deg, np.asarray(sources["dec"]) * u.deg)
    want = sorted(str(s) for s in sources["source_id"][inside])
    got = catalog_rows(result)
    assert sorted(got) == want and len(want) > 100
    # and scores are those of cutting the same positions locally
    local = local_scores(module, images, sources, want)
    assert local == got
    # the top table is the best rows of the catalogue
    top = result.top
    assert list(top["rank"][:3]) == [1, 2, 3]
    assert float(top["score"][0]) == max(got.values())
    assert "coord" in top.colnames and top["coord"].frame.name == "icrs"
    # exactly the catalogue's best rows, ties broken by id (ranked from each cell's best rows only)
    best = sorted(got.items(), key=lambda kv: (-kv[1], kv[0]))[: len(top)]
    assert len(top) == min(100, len(got))
    assert [str(i) for i in top["id"]] == [k for k, _ in best]
    assert list(map(float, top["score"])) == [v for _, v in best]


def test_hats_catalogue_reads_with_hats_and_lsdb(reference):
    import hats
    import lsdb

    cat = hats.read_hats(reference.paths["catalog"])
    assert cat.catalog_info.total_rows == reference.summary["cutouts"]
    assert {p.order for p in cat.get_healpix_pixels()} == {reference.order}
    df = lsdb.open_catalog(reference.paths["catalog"]).cone_search(150.2, 2.2, 300).compute()
    assert 0 < len(df) < reference.summary["cutouts"]


def test_rerun_does_nothing_and_other_settings_are_refused(survey, reference):
    again = mine(
        survey,
        REGION,
        scorer=MeanScorer(),
        workdir=reference.workdir,
        size=SIZE,
        scheduler="synchronous",
        progress=False,
    )
    assert again.ran == 0 and again.summary == reference.summary
    # nothing new: the catalogue and the top table are not rebuilt
    top_path, catalog = reference.paths["top"], reference.paths["catalog"]
    stamp = os.path.join(catalog, "anomalymatch_build.json")
    before = (os.stat(top_path).st_mtime_ns, os.stat(stamp).st_mtime_ns)
    mine(survey, REGION, scorer=MeanScorer(), workdir=reference.workdir, size=SIZE, scheduler="synchronous")
    assert (os.stat(top_path).st_mtime_ns, os.stat(stamp).st_mtime_ns) == before
    # a damaged build record, or a missing top table, gives a rebuild with the same rows
    for damage in ("stamp", "top"):
        if damage == "stamp":
            with open(stamp, "w") as f:
                f.write("{not json")
        else:
            os.remove(top_path)
        rebuilt = mine(
            survey, REGION, scorer=MeanScorer(), workdir=reference.workdir, size=SIZE, scheduler="synchronous"
        )
        assert rebuilt.ran == 0 and os.stat(top_path).st_mtime_ns != before[0]
        assert list(rebuilt.top["id"]) == list(reference.top["id"])
        assert catalog_rows(rebuilt) == catalog_rows(reference)
    with pytest.raises(InvalidInputError, match="size"):
        mine(survey, REGION, scorer=MeanScorer(), workdir=reference.workdir, size=48, scheduler="synchronous")


@pytest.mark.parametrize("n_workers", [1, 2])
def test_dask_workers_give_the_same_results(survey, reference, tmp_path, n_workers):
    result = mine(
        survey,
        REGION,
        scorer=MeanScorer(),
        workdir=tmp_path / "wd",
        size=SIZE,
        n_workers=n_workers,
        processes=False,
        progress=False,
    )
    assert result.summary["done"] == reference.summary["done"]
    assert catalog_rows(result) == catalog_rows(reference)
    if n_workers == 2:
        pids = {json.load(open(p))["worker_pid"] for p in glob.glob(f"{tmp_path}/wd/cells/*/*/*.json")}
        assert len(pids) == 1  # threads of this process (the test's LocalCluster(processes=False))


def test_failed_cells_are_recorded_then_retried(mosaic, reference, tmp_path):
    from anomalymatch_astro.archives import choose_order
    from anomalymatch_astro.archives._cells import cell_center_radius

    _, folder, _, images = mosaic
    done = sorted(int(c) for c in mining_status(reference.workdir)[1]["done"].flatten())
    bad_cells = done[:2]
    bad = [tuple(float(v) for v in (c.ra.deg, c.dec.deg)) for c in (cell_center_radius(p, 9)[0] for p in bad_cells)]
    flag = tmp_path / "service-down"
    flag.write_text("500")
    flaky = FlakySurvey(images, catalog=folder / "sources.ecsv", id_column="source_id", bad=bad, flag=str(flag))
    assert choose_order(flaky.image_size()) == 9
    wd = tmp_path / "wd"
    first = mine(flaky, REGION, scorer=MeanScorer(), workdir=wd, size=SIZE, scheduler="synchronous", progress=False)
    assert first.summary["failed"] == 2 and first.summary["todo"] == 2
    _, mocs = mining_status(wd)
    assert sorted(int(c) for c in mocs["failed"].flatten()) == bad_cells
    from astropy.table import Table

    reasons = Table.read(wd / "coverage" / "failures.ecsv")
    assert sorted(reasons["pix"]) == bad_cells and all("HTTP 500" in r for r in reasons["reason"])
    flag.unlink()  # the service recovers
    second = mine(flaky, REGION, scorer=MeanScorer(), workdir=wd, size=SIZE, scheduler="synchronous", progress=False)
    assert second.ran == 2 and second.summary["failed"] == 0 and second.summary["todo"] == 0
    assert catalog_rows(second) == catalog_rows(reference)


KILL_SCRIPT = """
import sys, time, numpy as np
from astropy import units as u
from anomalymatch_astro.archives import LocalSurvey, mine

class SlowScorer:
    scorer_id = "mean-v1"
    def __call__(self, cutouts):
        time.sleep(0.4)
        return np.nanmean(cutouts.data, axis=(1, 2, 3)).astype(np.float64)

images = {b: sorted(sys.argv[2].split(",")[k::3]) for k, b in enumerate("gri")}
survey = LocalSurvey(images, catalog=sys.argv[3], id_column="source_id")
mine(survey, ((150.2, 2.2), 0.35 * u.deg, 0.25 * u.deg), scorer=SlowScorer(), workdir=sys.argv[1], size=32,
     scheduler="synchronous", progress=False)
"""


def test_kill_9_mid_run_loses_only_cells_in_flight(mosaic, survey, reference, tmp_path):
    _, folder, _, images = mosaic
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(KILL_SCRIPT))
    files = ",".join(p for trio in zip(images["g"], images["r"], images["i"]) for p in trio)
    wd = tmp_path / "wd"
    proc = subprocess.Popen([sys.executable, str(script), str(wd), files, str(folder / "sources.ecsv")])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(glob.glob(f"{wd}/cells/*/*/*.json")) < 4:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL
        proc.wait()
    before = {p: open(p).read() for p in glob.glob(f"{wd}/cells/*/*/*.json")}
    assert 4 <= len(before) < reference.summary["cells"]
    result = mine(survey, REGION, scorer=MeanScorer(), workdir=wd, size=SIZE, scheduler="synchronous", progress=False)
    assert result.ran == reference.summary["cells"] - len(before)  # no cell done twice
    assert all(open(p).read() == text for p, text in before.items())
    assert catalog_rows(result) == catalog_rows(reference)
    assert result.summary["done"] == reference.summary["done"] and result.summary["todo"] == 0


def test_rate_limit_is_global_across_dask_workers():
    import distributed

    from anomalymatch_astro.archives import GlobalRateLimit

    rate, per_task = 25.0, 6

    def hammer(limiter):
        stamps = []
        for _ in range(per_task):
            limiter.wait()
            stamps.append(limiter.last_slot)  # the time the request was allowed to go
        return stamps

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl:
        with distributed.Client(cl) as client:
            limiter = GlobalRateLimit(rate)
            limiter.start(client)
            futures = [
                client.submit(hammer, limiter, pure=False, workers=[w]) for w in client.scheduler_info()["workers"]
            ]
            stamps = sorted(t for f in futures for t in f.result())
    assert len(stamps) == 2 * per_task
    # the slots of both workers together are 1/rate apart (two private limits would interleave closer)
    assert np.diff(stamps).min() >= 1 / rate - 1e-6


def test_every_request_of_a_vo_survey_waits_for_the_shared_limit(tmp_path):
    requests_mock = pytest.importorskip("requests_mock")
    from anomalymatch_astro.archives import VOSurvey

    survey = VOSurvey("http://example.invalid/sia2", bands=["r"], rate_limit=1000, cache_dir=tmp_path, retries=0)
    calls = []
    survey.limiter.wait = lambda: calls.append(1) or 0.0
    with requests_mock.Mocker() as m:
        m.get("http://example.invalid/a.fits", content=b"x" * 10)
        survey.client.get("http://example.invalid/a.fits")
        survey.client.get("http://example.invalid/a.fits")
    assert len(calls) == 2 and survey.client.n_requests == 2
    clone = __import__("pickle").loads(__import__("pickle").dumps(survey))
    assert clone._client is None and clone.limiter.name == survey.limiter.name  # one limit for all copies


def test_without_a_catalogue_sources_are_detected_on_the_images(mosaic, tmp_path):
    pytest.importorskip("photutils")
    _, _, sources, images = mosaic
    survey = LocalSurvey(images)  # no catalogue: photutils on the first band's images of each cell
    result = mine(
        survey,
        ((150.10, 2.20), 0.06 * u.deg),
        scorer=MeanScorer(),
        workdir=tmp_path / "wd",
        size=SIZE,
        scheduler="synchronous",
        progress=False,
        detection={"band": "r", "nsigma": 5.0},
    )
    found = catalog_rows(result)
    assert result.summary["done"] >= 1 and result.summary["failed"] == 0 and len(found) >= 10
    import lsdb

    df = lsdb.open_catalog(result.paths["catalog"]).compute()
    det = SkyCoord(np.asarray(df["ra"]) * u.deg, np.asarray(df["dec"]) * u.deg)
    cat = SkyCoord(np.asarray(sources["ra"]) * u.deg, np.asarray(sources["dec"]) * u.deg)
    _, sep, _ = det.match_to_catalog_sky(cat)
    assert np.mean(sep < 2 * u.arcsec) > 0.7  # most detections are catalogued galaxies
    assert len(set(df["id"])) == len(df)  # objects on two overlapping tiles are kept once
