"""archives.mine against the live DaCHS mosaic (SIA 2 + SODA + TAP): the same candidates as the local files."""

import re

import numpy as np
import pytest

pytest.importorskip("mocpy")
pytest.importorskip("pyvo")

from anomalymatch_astro.archives import VOSurvey, mine, mining_status  # noqa: E402
from anomalymatch_astro.archives._cells import cell_center_radius  # noqa: E402

from . import test_mining as _shared  # noqa: E402
from .test_mining import REGION, SIZE, MeanScorer, catalog_rows  # noqa: E402

# the shared module-scoped fixtures
mosaic = _shared.mosaic
reference = _shared.reference
survey = _shared.survey

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


def vo_survey(dachs, tmp_path, *, retries=0, **kwargs):
    module = __import__("tests.archives.test_mining", fromlist=["load_mosaic_module"]).load_mosaic_module()
    return VOSurvey(
        module.SIA2_URL,
        bands=list(module.BANDS),
        collection=module.COLLECTION,
        tap_url=module.TAP_URL,
        tap_table=module.SOURCES_TABLE,
        id_column="source_id",
        cache_dir=tmp_path / "cache",
        retries=retries,
        backoff=0,
        timeout=60,
        **kwargs,
    )


def test_mining_the_dachs_mosaic_equals_the_local_files(dachs, reference, tmp_path):
    result = mine(
        vo_survey(dachs, tmp_path, rate_limit=50, retries=3),  # a busy 2-core machine: a slow answer is no failure
        REGION,
        scorer=MeanScorer(),
        workdir=tmp_path / "wd",
        size=SIZE,
        n_workers=2,
        processes=False,
        progress=False,
    )
    assert result.order == reference.order
    _, mocs = mining_status(result.workdir)
    _, ref_mocs = mining_status(reference.workdir)
    assert mocs["done"] == ref_mocs["done"] and mocs["nodata"] == ref_mocs["nodata"] and mocs["failed"].empty()
    assert catalog_rows(result) == catalog_rows(reference)  # SODA cut-outs give the same pixels
    assert set(np.asarray(result.top["method_r"])) == {"soda"}


def test_cells_answered_500_fail_then_complete_after_recovery(dachs, reference, tmp_path):
    requests_mock = pytest.importorskip("requests_mock")
    done = sorted(int(c) for c in mining_status(reference.workdir)[1]["done"].flatten())
    bad = done[3:5]
    centres = [cell_center_radius(p, reference.order)[0] for p in bad]
    marks = [f"CIRCLE={float(c.ra.deg)!r}+{float(c.dec.deg)!r}" for c in centres]

    def for_bad_cells(request):
        return any(m in request.url for m in marks)

    survey_ = vo_survey(dachs, tmp_path)
    wd = tmp_path / "wd"
    with requests_mock.Mocker(real_http=True) as m:
        m.get(re.compile(r"/dlget\?"), status_code=500, text="down", additional_matcher=for_bad_cells)
        first = mine(
            survey_, REGION, scorer=MeanScorer(), workdir=wd, size=SIZE, scheduler="synchronous", progress=False
        )
    assert sorted(int(c) for c in mining_status(wd)[1]["failed"].flatten()) == bad
    assert first.summary["failed"] == 2
    second = mine(survey_, REGION, scorer=MeanScorer(), workdir=wd, size=SIZE, scheduler="synchronous", progress=False)
    assert second.ran == 2 and second.summary["failed"] == 0
    assert catalog_rows(second) == catalog_rows(reference)


def test_datalink_documents_are_asked_once_per_worker(dachs, tmp_path):
    """Each image's DataLink document is the same for every cell: only the SODA cut-outs are asked again."""
    from anomalymatch_astro.archives._cells import cell_of

    survey = vo_survey(dachs, tmp_path)
    pix = int(cell_of([150.1], [2.2], 9)[0])
    first = survey.cell_images(*cell_center_radius(pix, 9))
    n_images = sum(len(v) for v in first.values())
    assert n_images >= 3
    n0 = survey.client.n_requests
    again = survey.cell_images(*cell_center_radius(pix + 1, 9))
    # one SIA 2 query and one SODA cut-out per image (no DataLink document)
    assert survey.client.n_requests - n0 == 1 + sum(len(v) for v in again.values())
    assert all(e["method"] == "soda" for v in again.values() for e in v)
