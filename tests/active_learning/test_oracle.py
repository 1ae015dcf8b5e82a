import numpy as np
import pytest

from anomalymatch_astro.active_learning import ActiveLearningSession, simulate_oracle
from anomalymatch_astro.utils.exceptions import InvalidInputError


def test_simulate_oracle_protocol(digits, start_labels, fake_classifier):
    cs, truth = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier, default_mode="fast")
    n_start = len(s.labels)
    records = simulate_oracle(s, truth, cycles=2, n_anomalies=3, n_false_positives=4)
    assert [r["cycle"] for r in records] == [0, 1, 2]
    assert s.cycle == 3
    for r in records:
        assert 0.5 < r["auroc"] <= 1 + 1e-9 and 0 < r["auprc"] <= 1 + 1e-9
        assert "precision_at_1pct" in r
    assert records[0]["n_labelled"] == n_start
    assert records[1]["n_labelled"] == n_start + 3 + 4
    assert records[2]["n_anomalies_labelled"] == 3 + 3 + 3
    hist = s.history()
    oracle = hist[hist["source"] == "oracle"]
    assert len(oracle) == 14 and set(oracle["cycle"]) == {1, 2}
    rows = cs.index_of(list(oracle["id"]))
    # each oracle label is the truth
    np.testing.assert_array_equal(oracle["label"] == "anomaly", truth[rows])
    # the anomalies labelled in cycle 1 were the top-scored unlabelled true anomalies of cycle 0's ranking
    assert records[1]["n_new_anomalies"] == 3


def test_metrics_are_on_unlabelled_objects(digits, start_labels, fake_classifier, monkeypatch):
    import anomalymatch_astro.evaluation as ev

    cs, truth = digits
    seen = []

    def spy(scores, is_anomaly, *, exclude=None, k=100):
        seen.append(np.asarray(exclude).copy())
        return {"auroc": 0.9, "auprc": 0.5, "precision_at_1pct": 1.0}

    monkeypatch.setattr(ev, "evaluate", spy, raising=False)
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier, default_mode="fast")
    simulate_oracle(s, truth, cycles=1, n_anomalies=2, n_false_positives=2)
    assert seen[0].sum() == len(start_labels) and seen[1].sum() == len(start_labels) + 4


def test_simulate_oracle_checks_truth(digits, fake_classifier):
    cs, truth = digits
    s = ActiveLearningSession(cs, classifier=fake_classifier)
    with pytest.raises(InvalidInputError, match="one value per cutout"):
        simulate_oracle(s, truth[:-1])


def test_simulate_oracle_stops_when_anomalies_run_out(digits, start_labels, fake_classifier):
    cs, truth = digits  # 12 anomalies, 3 of them in the start labels
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier, default_mode="fast")
    records = simulate_oracle(s, truth, cycles=5, n_anomalies=5, n_false_positives=2)
    assert [r["cycle"] for r in records] == [0, 1, 2]
    assert records[-1]["exhausted"] and np.isnan(records[-1]["auroc"])
    assert not records[0]["exhausted"]
    assert s.labelled_mask()[truth].all()


def test_held_out_objects_are_never_labelled_and_alone_evaluated(digits, start_labels, fake_classifier):
    from anomalymatch_astro.evaluation import evaluate

    cs, truth = digits
    held = np.zeros(len(cs), dtype=bool)
    labelled = cs.index_of(list(start_labels))
    free = np.setdiff1d(np.arange(len(cs)), labelled)
    # half of the remaining anomalies and normals are the test split
    held[free[truth[free]][::2]] = True
    held[free[~truth[free]][::2]] = True
    s = ActiveLearningSession(
        cs, labels=start_labels, classifier=fake_classifier, default_mode="fast", rotation_average=False
    )
    n_pool_anomalies = int((truth & ~held).sum())
    records = simulate_oracle(s, truth, cycles=3, n_anomalies=3, n_false_positives=4, held_out=held)
    assert [r["cycle"] for r in records] == [0, 1, 2, 3]  # the test split never runs out
    assert not (s.labelled_mask() & held).any()
    assert records[-1]["n_anomalies_labelled"] <= n_pool_anomalies
    expected = evaluate(s.scores[held], truth[held])
    assert records[-1]["auroc"] == pytest.approx(expected["auroc"])
    assert records[-1]["precision_at_1pct"] == pytest.approx(expected["precision_at_1pct"])
    with pytest.raises(InvalidInputError, match="held_out must have one value"):
        simulate_oracle(s, truth, held_out=held[:-1])
    with pytest.raises(InvalidInputError, match="already labelled"):
        simulate_oracle(s, truth, held_out=np.ones(len(cs), dtype=bool))


def test_oracle_result_to_table(digits, start_labels, fake_classifier):
    from astropy.table import Table

    from anomalymatch_astro.active_learning import OracleResult

    cs, truth = digits  # 12 anomalies: the last cycle runs out of them
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier, default_mode="fast")
    records = simulate_oracle(s, truth, cycles=5, n_anomalies=5, n_false_positives=2, progress=False)
    assert isinstance(records, OracleResult) and isinstance(records, list)
    assert records[0]["mode"] == "fast"  # old access: a list of dicts
    table = records.to_table()
    assert isinstance(table, Table) and len(table) == len(records) == 3
    assert table.colnames[:7] == [
        "cycle",
        "mode",
        "n_labelled",
        "n_anomalies_labelled",
        "n_new_anomalies",
        "train_seconds",
        "exhausted",
    ]
    assert list(table["cycle"]) == [0, 1, 2] and list(table["exhausted"]) == [False, False, True]
    np.testing.assert_allclose(table["auroc"][:2], [r["auroc"] for r in records[:2]])
    assert np.isnan(table["auroc"][2])
    # metrics the exhausted row lacks are masked there
    assert list(table["n_anomalies"].mask) == [False, False, True]
    assert table["n_anomalies"][0] == records[0]["n_anomalies"]
    assert len(OracleResult().to_table()) == 0


def test_oracle_counts_systems_and_artefacts_in_the_top_lists(digits, start_labels, fake_classifier):
    cs, truth = digits
    n = len(truth)
    systems = np.arange(n) // 2  # pairs of objects are one system
    artefacts = np.zeros(n, dtype=bool)
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier, default_mode="fast")
    s.train(progress=False)
    order = np.argsort(-s.scores, kind="stable")
    evaluated = ~s.labelled_mask()
    top = order[evaluated[order]]
    artefacts[top[:5]] = True  # the five best-scored unlabelled objects are "artefacts"
    plain = simulate_oracle(s, truth, cycles=0, systems=systems, artefacts=artefacts)[0]
    assert plain["artefacts_top24"] == 5
    assert plain["distinct_top50"] == len(np.unique(systems[top[:50]]))
    grouped = simulate_oracle(s, truth, cycles=0, systems=systems, artefacts=artefacts, group=True)[0]
    assert grouped["distinct_top50"] == 50  # one object per system
    firsts = top[np.sort(np.unique(systems[top], return_index=True)[1])]
    assert grouped["artefacts_top24"] == int(artefacts[firsts[:24]].sum())
    assert "distinct_top50" not in simulate_oracle(s, truth, cycles=0)[0]


def test_oracle_top_counts_check_their_inputs(digits, start_labels, fake_classifier):
    cs, truth = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier, default_mode="fast")
    with pytest.raises(InvalidInputError, match="systems must have one value per cutout"):
        simulate_oracle(s, truth, cycles=0, systems=np.zeros(3, dtype=int))
    with pytest.raises(InvalidInputError, match="pass systems= as well"):
        simulate_oracle(s, truth, cycles=0, group=True)
