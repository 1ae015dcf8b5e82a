import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anomalymatch_astro.embeddings import (
    EnsembleHead,
    KNNHead,
    LabelSpreadingHead,
    LogisticHead,
    fit_pca,
    make_head,
)
from anomalymatch_astro.utils.exceptions import InvalidInputError, LabelError

HEADS = [LogisticHead, KNNHead, LabelSpreadingHead, EnsembleHead]


@pytest.mark.parametrize("cls", HEADS)
def test_head_beats_chance_on_separable_embeddings(cls, separable):
    x, y, truth = separable
    head = cls()
    scores = head.fit(x, y).score(x)
    assert scores.shape == (len(x),)
    assert np.all((scores >= 0) & (scores <= 1))
    unlabelled = y < 0
    auroc = roc_auc_score(truth[unlabelled], scores[unlabelled])
    assert auroc > 0.85, (cls.__name__, auroc)


@pytest.mark.parametrize("cls", HEADS)
def test_head_fits_on_labelled_rows_only(cls, separable):
    # labels without -1 (every row labelled) are accepted too
    x, y, truth = separable
    rows = np.flatnonzero(y >= 0)
    scores = cls().fit(x[rows], y[rows]).score(x)
    assert roc_auc_score(truth, scores) > 0.8


@pytest.mark.parametrize("cls", HEADS)
def test_head_needs_both_classes(cls, separable):
    x, y, _ = separable
    with pytest.raises(LabelError, match="at least one anomaly and one normal"):
        cls().fit(x, np.where(y == 1, -1, y))


def test_head_input_checks(separable):
    x, y, _ = separable
    with pytest.raises(InvalidInputError, match="one label"):
        LogisticHead().fit(x, y[:-1])
    with pytest.raises(LabelError):
        LogisticHead().fit(x, np.where(y == 1, 2, y))
    with pytest.raises(InvalidInputError, match="2-d"):
        LogisticHead().fit(x[0], y[:1])
    with pytest.raises(InvalidInputError, match="fit the head"):
        KNNHead().score(x)


def test_logistic_head_folds_standardisation_into_weights(separable):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y, _ = separable
    head = LogisticHead(C=0.5).fit(x, y)
    scaler = StandardScaler().fit(x)
    lab = y >= 0
    ref = LogisticRegression(C=0.5, class_weight="balanced", max_iter=2000)
    ref.fit(scaler.transform(x[lab]), y[lab])
    expected = ref.predict_proba(scaler.transform(x))[:, 1]
    np.testing.assert_allclose(head.score(x), expected, atol=1e-4)


def test_knn_head_prefers_the_anomaly_neighbourhood():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.95, 0.05]], dtype=np.float32)
    y = np.array([1, -1, 0, -1, -1])
    s = KNNHead(k=1).fit(x, y).score(x)
    assert s[1] > 0.5 > s[3]
    assert s[4] > s[3]


def test_pca_and_spreading_reuse(separable):
    x, y, truth = separable
    pca = fit_pca(x, n_components=8)
    assert pca[0].shape == (32,) and pca[1].shape == (8, 32)
    head = LabelSpreadingHead(pca=pca, n_anchors=300)
    s = head.fit(x, y).score(x)
    assert head.pca is pca
    assert roc_auc_score(truth[y < 0], s[y < 0]) > 0.85


def test_make_head():
    assert isinstance(make_head("logistic"), LogisticHead)
    head = KNNHead()
    assert make_head(head) is head
    with pytest.raises(InvalidInputError, match="unknown head"):
        make_head("svm")


def test_ensemble_blocks():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 10))
    x[:15, 6:] += 2.5  # the anomalies differ only in the second block
    labels = np.full(300, -1)
    labels[:4] = 1
    labels[100:160] = 0
    whole = EnsembleHead().fit(x, labels)
    blocked = EnsembleHead(blocks=[6, 4]).fit(x, labels)
    assert len(whole.members) == 2 and len(blocked.members) == 4
    # every level gets its own members, fitted on its own columns
    assert blocked.members[0][1] is not blocked.members[2][1]
    assert blocked.members[2][0] == slice(6, 10)
    single = EnsembleHead().fit(x[:, 6:], labels)
    np.testing.assert_allclose(blocked.members[3][1].score(x[:, 6:]), single.members[1][1].score(x[:, 6:]))
    with pytest.raises(InvalidInputError, match="add up to 9 columns"):
        EnsembleHead(blocks=[5, 4]).fit(x, labels)
    with pytest.raises(InvalidInputError, match="positive widths"):
        EnsembleHead(blocks=[0, 10])
    with pytest.raises(InvalidInputError, match="not fitted"):
        EnsembleHead(blocks=[6, 4]).score(x)


def test_ensemble_blocks_with_a_stateful_member_refit():
    """A label-spreading member keeps a PCA of its block: each block, and each refit, starts fresh."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 40))
    x[:15, 30:] += 3.0
    labels = np.full(300, -1)
    labels[:4] = 1
    labels[100:140] = 0
    head = EnsembleHead([LabelSpreadingHead(n_components=8, n_anchors=100)], blocks=[30, 10])
    for _ in range(2):  # the same head refitted, as a session does every cycle with a head object
        scores = head.fit(x, labels).score(x)
        widths = [m.pca[1].shape[1] for _, m in head.members]
        assert widths == [30, 10]
    assert roc_auc_score(np.arange(300) < 15, scores) > 0.8
