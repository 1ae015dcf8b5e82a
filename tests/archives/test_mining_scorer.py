"""A session's scorer for mining: batch-independent, picklable, identical on Dask workers and in-process."""

import pickle

import numpy as np
import pytest

pytest.importorskip("mocpy")
pytest.importorskip("distributed")

from anomalymatch_astro import make_cutouts  # noqa: E402
from anomalymatch_astro.active_learning import ActiveLearningSession, SessionScorer, reference_rank  # noqa: E402
from anomalymatch_astro.archives import mine  # noqa: E402
from anomalymatch_astro.embeddings import rank_normalize  # noqa: E402

from . import test_mining as _shared  # noqa: E402
from .test_mining import REGION, SIZE, local_scores  # noqa: E402

# the shared module-scoped fixtures
mosaic = _shared.mosaic
survey = _shared.survey

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


class Flat:
    """A stand-in embedder: the flattened pixels (picklable, deterministic)."""

    model_hash = "flat-v1"

    def embed(self, cutouts, *, batch_size=256):
        data = np.asarray(cutouts.data, dtype=np.float32)
        return np.nan_to_num(data.reshape(len(data), -1))


def test_reference_rank_matches_rank_normalize_on_the_reference():
    rng = np.random.default_rng(1)
    s = np.round(rng.normal(size=200), 1)  # with ties
    assert np.allclose(reference_rank(np.sort(s), s), rank_normalize(s), atol=1e-12)


@pytest.fixture(scope="module")
def session(mosaic):
    module, _, sources, images = mosaic
    tiles = {b: images[b][0] for b in module.BANDS}
    from astropy.wcs import WCS

    x, y = WCS(module._tile_header("r", 0, 0)).world_to_pixel_values(sources["ra"], sources["dec"])
    inside = (x > 20) & (x < module.TILE - 21) & (y > 20) & (y < module.TILE - 21)
    cs = make_cutouts(tiles, sources[inside], SIZE, ids="source_id", progress=False)
    ids = list(cs.ids)
    truth = {str(i): int(a) for i, a in zip(sources["source_id"], sources["is_anomaly"])}
    labels = {i: "anomaly" for i in ids if truth[i]}
    labels.update({i: "normal" for i in ids[:40] if not truth[i]})
    s = ActiveLearningSession(cs, classifier=Flat(), labels=labels, user="t")
    s.train(progress=False)
    yield s
    s.close()


def test_session_scorer_reproduces_the_session_and_is_batch_independent(session):
    scorer = session.scorer()
    assert isinstance(scorer, SessionScorer) and scorer.mode == "fast"
    cs = session.cutouts
    full = scorer(cs)
    # the session's own ranks (up to the rounding of its batched head scores: a rank step or two)
    assert np.abs(full - session.scores).max() <= 2.5 / (len(cs) - 1)
    assert np.corrcoef(full, session.scores)[0, 1] > 0.999
    rows = np.arange(7, 30)
    assert np.array_equal(scorer(cs[rows]), full[rows])  # a cutout's score does not depend on its batch
    assert np.array_equal(pickle.loads(pickle.dumps(scorer))(cs[rows]), full[rows])
    again = session.scorer()
    assert again.scorer_id == scorer.scorer_id
    session.label({str(cs.ids[-1]): "anomaly"})
    assert session.scorer().scorer_id != scorer.scorer_id
    session.undo()


def test_mining_with_a_session_on_dask_equals_in_process_scoring(mosaic, survey, session, tmp_path):
    module, _, sources, images = mosaic
    scorer = session.scorer()
    result = mine(
        survey, REGION, scorer=scorer, workdir=tmp_path / "wd", size=SIZE, n_workers=2, processes=False, progress=False
    )
    import lsdb

    df = lsdb.open_catalog(result.paths["catalog"]).compute()
    got = {str(i): float(s) for i, s in zip(df["id"], df["score"])}
    assert len(got) == result.summary["cutouts"] > 100
    assert local_scores(module, images, sources, sorted(got), scorer=scorer) == got
