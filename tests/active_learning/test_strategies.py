import numpy as np
import pytest

from anomalymatch_astro.active_learning import (
    ActiveLearningSession,
    decision_threshold,
    select_diverse,
    select_mix,
    select_similar,
    select_top,
    select_uncertain,
    unit_embeddings,
)
from anomalymatch_astro.utils.exceptions import InvalidInputError, UnknownIDError

STRATS = ["top", "uncertainty", "diversity", "mix"]


def test_select_functions_basic():
    scores = np.array([0.1, 0.9, 0.5, 0.8, 0.45, np.nan])
    np.testing.assert_array_equal(select_top(scores, 3), [1, 3, 2])
    np.testing.assert_array_equal(select_top(scores, 3, exclude=[1]), [3, 2, 4])
    np.testing.assert_array_equal(select_uncertain(scores, 2, threshold=0.5), [2, 4])
    mask = np.zeros(6, bool)
    mask[2] = True
    np.testing.assert_array_equal(select_uncertain(scores, 2, exclude=mask, threshold=0.5), [4, 3])


def test_decision_threshold():
    assert decision_threshold([0.1, 0.2, 0.6, 0.8], [0, 0, 1, 1]) == pytest.approx(0.4)
    # rank-like scores: the boundary sits between the classes, not at 0.5
    t = decision_threshold([0.7, 0.75, 0.9, 0.95, 0.2], [0, 0, 1, 1, -1])
    assert 0.75 < t < 0.9
    assert decision_threshold([0.3], [1]) == 0.5


def test_diversity_spreads_over_clusters():
    rng = np.random.default_rng(0)
    centers = np.eye(4) * 5
    x = np.concatenate([c + 0.01 * rng.normal(size=(10, 4)) for c in centers])
    scores = np.linspace(1, 0.5, 40)  # cluster 0 scores highest
    rows = select_diverse(scores, unit_embeddings(x), 4, pool=40)
    assert rows[0] == 0
    assert sorted(set(rows // 10)) == [0, 1, 2, 3]  # one from each cluster
    top = select_top(scores, 4)
    assert set(top // 10) == {0}


def test_mix_blend_is_distinct():
    rng = np.random.default_rng(0)
    x = unit_embeddings(rng.normal(size=(100, 5)))
    scores = rng.uniform(size=100)
    rows = select_mix(scores, x, 10, exclude=[int(np.argmax(scores))])
    assert len(rows) == len(set(rows.tolist())) == 10
    np.testing.assert_array_equal(rows[:5], select_top(scores, 5, exclude=[int(np.argmax(scores))]))


def test_similar_function():
    x = unit_embeddings(
        np.array([[1, 0], [0.9, 0.2], [0, 1], [-1, 0.1], [0.95, 0.1]], dtype="f4"), center=np.zeros(2, "f4")
    )
    rows, sim = select_similar(x, [0], 2)
    np.testing.assert_array_equal(rows, [4, 1])
    assert sim[0] >= sim[1]
    rows, _ = select_similar(x, [0], 2, exclude=[4])
    np.testing.assert_array_equal(rows, [1, 2])


@pytest.fixture
def trained(digits, start_labels, fake_classifier):
    cs, truth = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier, default_mode="fast")
    s.train(progress=False)
    return s, truth


@pytest.mark.parametrize("strategy", STRATS)
def test_session_strategies_exclude_labelled_and_are_distinct(trained, strategy):
    s, _ = trained
    # label the current top 5 so they must disappear from every strategy
    top5 = list(s.candidates(5)["id"])
    s.label({i: "normal" for i in top5})
    for n in (1, 7, 15):
        table = s.candidates(n, strategy=strategy)
        ids = list(table["id"])
        assert len(ids) == n == len(set(ids))
        assert not set(ids) & set(s.labels)
        assert table.colnames[:3] == ["id", "score", "rank"]
        rows = s.cutouts.index_of(ids)
        np.testing.assert_allclose(table["score"], s.scores[rows])
        assert table.meta["strategy"] == strategy
        assert (table["rank"] >= 1).all()


def test_top_is_sorted_and_ranks(trained):
    s, _ = trained
    t = s.candidates(10)
    assert np.all(np.diff(t["score"]) <= 0)
    order = np.argsort(-s.scores, kind="stable")
    ranks = {s.cutouts.ids[r]: k + 1 for k, r in enumerate(order)}
    assert [ranks[i] for i in t["id"]] == list(t["rank"])


def test_uncertainty_is_near_the_boundary(trained):
    s, _ = trained
    t = s.candidates(5, strategy="uncertainty")
    free = ~s.labelled_mask()
    dist = np.abs(s.scores[free] - s.threshold)
    assert np.max(np.abs(t["score"] - s.threshold)) <= np.sort(dist)[4] + 1e-12


def test_similar_returns_neighbours(trained):
    s, truth = trained
    cs = s.cutouts
    query = [i for i in s.labels if s.labels[i] == "anomaly"][0]
    t = s.candidates(5, strategy="similar", like=query)
    assert query not in set(t["id"]) and not set(t["id"]) & set(s.labels)
    assert np.all(np.diff(t["similarity"]) <= 1e-12)
    # the nearest neighbours of a zero are mostly zeros (8x8 digits, raw pixels)
    assert truth[cs.index_of(list(t["id"]))].mean() >= 0.6
    # brute-force check of the first neighbour
    x = unit_embeddings(s.embeddings, center=s._center())
    sims = x @ x[cs.index_of([query])[0]]
    sims[s.labelled_mask()] = -np.inf
    assert cs.ids[int(np.argmax(sims))] == t["id"][0]
    # several query ids
    t2 = s.candidates(3, strategy="similar", like=[query, t["id"][0]])
    assert t["id"][0] not in set(t2["id"])


def test_strategy_errors(digits, fake_classifier, start_labels):
    cs, _ = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier)
    with pytest.raises(InvalidInputError, match="train"):
        s.candidates(3)
    # "similar" works before training (embeddings only)
    t = s.candidates(3, strategy="similar", like=cs.ids[0])
    assert len(t) == 3 and np.isnan(t["score"]).all() and (t["rank"] == 0).all()
    with pytest.raises(InvalidInputError, match="strategy"):
        s.candidates(3, strategy="random")
    with pytest.raises(InvalidInputError, match="like"):
        s.candidates(3, strategy="similar")
    with pytest.raises(UnknownIDError):
        s.candidates(3, strategy="similar", like="nope")


def test_candidates_when_few_remain(trained):
    s, _ = trained
    ids = s.cutouts.ids
    s.label({i: "normal" for i in ids[:-3] if i not in s.labels})
    for strategy in STRATS:
        t = s.candidates(10, strategy=strategy)
        assert sorted(t["id"]) == sorted(ids[-3:])
