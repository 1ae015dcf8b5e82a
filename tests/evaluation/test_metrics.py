import numpy as np
import pytest
from sklearn.metrics import auc, precision_recall_curve

from anomalymatch_astro import evaluate as top_level_evaluate
from anomalymatch_astro.evaluation import EvaluationResult, evaluate, summarize, top_k_hits
from anomalymatch_astro.utils.exceptions import InvalidInputError, UnknownIDError

# ranking by score: 0.9 (A), 0.7 (N), 0.4 (A), 0.2 (N)
SCORES = np.array([0.9, 0.2, 0.7, 0.4])
TRUTH = np.array([True, False, False, True])


def test_hand_computed_small():
    m = evaluate(SCORES, TRUTH, k=2)
    assert top_level_evaluate is evaluate
    # AUROC: 3 of the 4 (anomaly, normal) pairs ordered correctly
    assert m["auroc"] == pytest.approx(0.75)
    # average precision: mean of precision at the anomalies' ranks 1 and 3 = (1 + 2/3) / 2
    assert m["auprc"] == pytest.approx(5 / 6)
    # the trapezoid area under the PR curve differs: it must not be what is reported
    precision, recall, _ = precision_recall_curve(TRUTH, SCORES)
    assert m["auprc"] != pytest.approx(auc(recall, precision))
    assert m["precision_at_1pct"] == 1.0 and m["n_top_1pct"] == 1
    assert m["recall_at_k"] == pytest.approx(0.5)
    assert m["precision_at_k"] == pytest.approx(0.5)
    assert m["found_in_first_100"] == pytest.approx(2.0)
    assert (m["n"], m["n_anomalies"], m["anomaly_fraction"], m["n_excluded"]) == (4, 2, 0.5, 0)
    assert all(isinstance(v, (int, float)) for v in m.values())


def test_perfect_and_inverted():
    truth = np.r_[np.ones(3, bool), np.zeros(297, bool)]
    scores = np.r_[np.full(3, 1.0), np.linspace(0, 0.5, 297)]
    m = evaluate(scores, truth, k=5)
    assert m["auroc"] == 1.0 and m["auprc"] == 1.0
    assert m["n_top_1pct"] == 3 and m["precision_at_1pct"] == 1.0
    assert m["recall_at_k"] == 1.0 and m["precision_at_k"] == pytest.approx(3 / 5)
    assert m["found_in_first_100"] == 3
    m = evaluate(-scores, truth)
    assert m["auroc"] == 0.0 and m["precision_at_1pct"] == 0.0 and m["found_in_first_100"] == 0


def test_ties_use_expected_counts():
    truth = np.array([True, False, False, False] * 50)
    m = evaluate(np.zeros(200), truth, k=10)
    assert m["auroc"] == 0.5
    assert m["precision_at_1pct"] == pytest.approx(0.25)  # 2 tied slots * base rate
    assert m["found_in_first_100"] == pytest.approx(25.0)
    assert m["auprc"] == pytest.approx(0.25)
    assert top_k_hits([0.9, 0.8, 0.8, 0.1], [True, True, False, False], 2) == 1.5
    assert top_k_hits([0.9, 0.8], [True, False], 0) == 0.0


def test_exclude_forms_give_the_same_answer():
    rng = np.random.default_rng(0)
    truth = rng.random(50) < 0.2
    scores = rng.random(50) + truth
    ids = np.array([f"o{i}" for i in range(50)])
    mask = np.zeros(50, bool)
    mask[[1, 5, 7]] = True
    expected = evaluate(scores[~mask], truth[~mask])
    by_mask = evaluate(scores, truth, exclude=mask)
    assert by_mask["n_excluded"] == 3 and by_mask["n"] == 47
    for key in ("auroc", "auprc", "precision_at_1pct", "recall_at_k", "found_in_first_100"):
        assert by_mask[key] == expected[key]
        assert evaluate(scores, truth, exclude=[1, 5, 7])[key] == expected[key]
        assert evaluate(scores, truth, exclude=["o1", "o5", "o7"], ids=ids)[key] == expected[key]
        labels = {"o1": "anomaly", "o5": "normal", "o7": "normal"}
        assert evaluate(scores, truth, exclude=labels, ids=ids)[key] == expected[key]
    assert evaluate(scores, truth, exclude=[])["n"] == 50


def test_excluding_all_anomalies_is_an_error():
    with pytest.raises(InvalidInputError, match="no anomalies"):
        evaluate(SCORES, TRUTH, exclude=[0, 3])


@pytest.mark.parametrize(
    ("scores", "truth", "match"),
    [
        ([0.1, np.nan, 0.3], [True, False, False], "NaN"),
        ([0.1, np.inf, 0.3], [True, False, False], "NaN or infinite"),
        ([0.1, 0.2], [True, False, False], "length"),
        ([0.1, 0.2, 0.3], [False, False, False], "no anomalies"),
        ([0.1, 0.2, 0.3], [True, True, True], "no normal"),
        ([0.1, 0.2, 0.3], [0, 2, 1], "boolean"),
        ([[0.1, 0.2]], [True, False], "one-dimensional"),
        (["a", "b"], [True, False], "numeric"),
    ],
)
def test_errors(scores, truth, match):
    with pytest.raises(InvalidInputError, match=match):
        evaluate(scores, truth)


def test_exclude_errors():
    with pytest.raises(InvalidInputError, match="ids="):
        evaluate(SCORES, TRUTH, exclude=["a"])
    with pytest.raises(UnknownIDError) as info:
        evaluate(SCORES, TRUTH, exclude=["zz"], ids=["a", "b", "c", "d"])
    assert info.value.ids == ["zz"]
    with pytest.raises(InvalidInputError, match="one value per score"):
        evaluate(SCORES, TRUTH, exclude=np.array([True, False]))
    with pytest.raises(InvalidInputError, match="outside"):
        evaluate(SCORES, TRUTH, exclude=[7])
    with pytest.raises(InvalidInputError, match="k must"):
        evaluate(SCORES, TRUTH, k=0)


def test_integer_truth_accepted():
    assert evaluate(SCORES, [1, 0, 0, 1])["auroc"] == pytest.approx(0.75)


def test_summarize():
    results = [
        {"dataset": "a", "seed": 0, "auroc": 0.8, "auprc": 0.5},
        {"dataset": "a", "seed": 1, "auroc": 0.9, "auprc": 0.7},
        {"dataset": "b", "seed": 0, "auroc": 0.6, "auprc": 0.2},
    ]
    t = summarize(results, by="dataset")
    assert list(t["dataset"]) == ["a", "b"]
    assert list(t["n_runs"]) == [2, 1]
    assert t["auroc_mean"][0] == pytest.approx(0.85)
    assert t["auroc_std"][0] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert t["auprc_std"][1] == 0.0
    assert "seed_mean" not in t.colnames
    one = summarize([evaluate(SCORES, TRUTH), evaluate(SCORES[::-1], TRUTH[::-1])])
    assert len(one) == 1 and one["auroc_mean"][0] == pytest.approx(0.75)
    with pytest.raises(InvalidInputError, match="group by"):
        summarize(results, by="method")
    with pytest.raises(InvalidInputError):
        summarize([])
    with pytest.raises(InvalidInputError, match="missing"):
        summarize(results, metrics=["recall_at_k"])


def test_result_is_a_dict_with_a_table():
    m = evaluate(SCORES, TRUTH, k=2)
    assert isinstance(m, EvaluationResult) and isinstance(m, dict)
    assert m == dict(m) and list(m)[:2] == ["auroc", "auprc"]
    t = m.to_table()
    assert len(t) == 1 and t.colnames == list(m)
    for key, value in m.items():
        assert t[key][0] == value, key
    assert t["n"].dtype.kind == "i" and t["auroc"].dtype.kind == "f"
    assert "EvaluationResult" in repr(m)
    # summarize accepts the results as it accepts plain dicts
    assert summarize([m, evaluate(SCORES[::-1], TRUTH)])["n_runs"][0] == 2
