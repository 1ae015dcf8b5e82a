import json
import os

import h5py
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from sklearn.metrics import roc_auc_score

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.active_learning import ActiveLearningSession, TrainResult, combine_scores
from anomalymatch_astro.utils.exceptions import CheckpointError, InvalidInputError, LabelError


def _unlabelled_auroc(s, truth):
    free = ~s.labelled_mask()
    return roc_auc_score(truth[free], s.scores[free])


def test_fast_training_ranks_anomalies(digits, start_labels, fake_classifier):
    cs, truth = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier, default_mode="fast")
    assert s.scores is None and s.cycle == 0
    result = s.train(progress=False)
    assert isinstance(result, TrainResult)
    assert result.mode == "fast" and result.cycle == 1 == s.cycle
    assert result.n_anomalies == 3 and result.n_normals == 20
    assert set(result.timings) >= {"embeddings", "fast", "save"}
    assert result.metrics["fast"]["head"] == "ensemble"
    assert 0 <= result.metrics["combined"]["train_auroc"] <= 1
    assert json.dumps(result.as_dict())
    assert s.scores.shape == (len(cs),)
    assert _unlabelled_auroc(s, truth) > 0.9
    assert fake_classifier.fit_calls == 0  # fast mode never runs FixMatch
    assert set(s.model_scores) == {"fast"}


@pytest.mark.parametrize("head", ["logistic", "knn", "spreading"])
def test_fast_heads_in_session(digits, start_labels, fake_classifier, head):
    cs, truth = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier, default_mode="fast", head=head)
    s.train(progress=False)
    assert _unlabelled_auroc(s, truth) > 0.8


def test_both_modes_combined_by_mean_rank(digits, start_labels, fake_classifier):
    cs, truth = digits
    s = ActiveLearningSession(
        cs, labels=start_labels, classifier=fake_classifier, default_mode="both", rotation_average=False, profile=False
    )  # distinct pixels: no tied ranks
    r = s.train(progress=False)
    assert r.mode == "both" and fake_classifier.fit_calls == 1
    parts = s.model_scores
    assert set(parts) == {"fast", "fixmatch"}
    np.testing.assert_allclose(s.scores, combine_scores(parts))
    assert s.scores.min() == 0 and s.scores.max() <= 1
    r2 = s.train(mode="fixmatch", progress=False)
    assert r2.cycle == 2 and set(s.model_scores) == {"fixmatch"}
    np.testing.assert_allclose(s.scores, s.model_scores["fixmatch"])


def test_combine_scores():
    a = np.array([0.1, 0.2, 0.9])
    np.testing.assert_array_equal(combine_scores({"x": a}), a)
    b = np.array([0.99, 0.98, 0.999])
    np.testing.assert_allclose(combine_scores({"x": a, "y": b}), [0.25, 0.25, 1.0])


def test_default_mode_is_fast(digits, start_labels, fake_classifier):
    cs, _ = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier)
    assert s.default_mode == "fast" and s.train(progress=False).mode == "fast"
    assert fake_classifier.fit_calls == 0


def test_train_needs_both_classes_and_valid_mode(digits, fake_classifier):
    cs, _ = digits
    s = ActiveLearningSession(cs, classifier=fake_classifier, labels={cs.ids[0]: "anomaly"})
    with pytest.raises(LabelError, match="at least one anomaly and one normal"):
        s.train(mode="fast")
    with pytest.raises(InvalidInputError, match="mode"):
        s.train(mode="slow")
    with pytest.raises(InvalidInputError, match="mode"):
        ActiveLearningSession(cs, default_mode="slow")
    with pytest.raises(InvalidInputError, match="head"):
        ActiveLearningSession(cs, head="svm")
    with pytest.raises(InvalidInputError, match="CutoutSet"):
        ActiveLearningSession(np.zeros((3, 4, 4)))


def test_resume_after_reopen(tmp_path, digits, start_labels, fake_cls):
    cs, truth = digits
    clf = fake_cls()
    s = ActiveLearningSession(
        cs, labels=start_labels, classifier=clf, workdir=tmp_path, user="ann", default_mode="both", head="knn"
    )
    s.train(progress=False)
    s.label({cs.ids[truth][5]: "anomaly"})
    s.train(mode="fast", progress=False)
    scores, cycle, labels = s.scores, s.cycle, s.labels
    assert cycle == 2
    files = set(os.listdir(tmp_path))
    assert {"session.json", "labels.sqlite", "scores.h5", "embeddings.h5", "model"} <= files
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    with h5py.File(tmp_path / "scores.h5") as f:
        assert f.attrs["cycle"] == 2 and list(f["ids"].asstr()[:3]) == list(cs.ids[:3])
    s.close()

    clf2 = fake_cls.load(tmp_path / "model")  # the saved FixMatch model
    np.testing.assert_allclose(clf2.coef, clf.coef)
    again = ActiveLearningSession(cs, classifier=clf2, workdir=tmp_path)
    assert again.cycle == 2 and again.labels == labels
    assert again.default_mode == "both" and again.head == "knn"  # settings kept in session.json
    np.testing.assert_allclose(again.scores, scores)
    assert again.candidates(3)["id"].tolist() == s_candidates(scores, again)
    # embeddings come from the cache, not from the (new) classifier
    assert again.embeddings.shape[0] == len(cs)
    assert clf2.embed_calls == 0
    assert again.train(mode="fast", progress=False).cycle == 3
    assert set(again.history()["cycle"]) == {0, 1}


def s_candidates(scores, s):
    order = [i for i in np.argsort(-scores, kind="stable") if not s.labelled_mask()[i]]
    return s.cutouts.ids[order[:3]].tolist()


def test_workdir_of_other_cutouts_is_refused(tmp_path, digits, fake_classifier):
    cs, _ = digits
    ActiveLearningSession(cs, workdir=tmp_path, classifier=fake_classifier).close()
    with pytest.raises(InvalidInputError, match="different CutoutSet"):
        ActiveLearningSession(cs[:10], workdir=tmp_path, classifier=fake_classifier)


def test_open_from_recorded_cutouts_file(tmp_path, digits, start_labels, fake_classifier, fake_cls):
    cs, _ = digits
    cs.to_hdf5(tmp_path / "cs.h5")
    lazy = CutoutSet.from_hdf5(tmp_path / "cs.h5")
    s = ActiveLearningSession(
        lazy, labels=start_labels, classifier=fake_classifier, workdir=tmp_path / "wd", default_mode="fast", head="knn"
    )
    s.train(progress=False)
    labels = s.labels
    s.close()
    again = ActiveLearningSession.open(tmp_path / "wd", classifier=fake_cls())
    assert again.cycle == 1 and again.labels == labels and again.head == "knn"
    assert again.default_mode == "fast"
    np.testing.assert_allclose(again.scores, s.scores)
    with pytest.raises(CheckpointError, match="no session"):
        ActiveLearningSession.open(tmp_path / "nothing")
    mem = ActiveLearningSession(cs, workdir=tmp_path / "wd2", classifier=fake_classifier)
    mem.close()
    with pytest.raises(CheckpointError, match="in-memory"):
        ActiveLearningSession.open(tmp_path / "wd2")


def test_to_table(digits, start_labels, fake_classifier):
    cs, _ = digits
    coords = SkyCoord(np.linspace(10, 11, len(cs)), np.linspace(-1, 1, len(cs)), unit="deg")
    cs = CutoutSet.from_arrays(cs.data, ids=cs.ids, coords=coords)
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier, default_mode="fast")
    before = s.to_table()
    assert np.isnan(before["score"]).all()
    s.train(progress=False)
    t = s.to_table()
    assert len(t) == len(cs)
    assert isinstance(t["coord"], SkyCoord)
    np.testing.assert_allclose(t["score"], s.scores)
    assert t["rank"][np.argmax(s.scores)] == 1
    labelled = {i: w for i, w in zip(t["id"], t["label"]) if w}
    assert labelled == s.labels
    assert set(t["label_source"][t["label"] != ""]) == {"import"}
    assert t.meta["cycle"] == 1 and t.meta["mode"] == "fast"


def test_repr(digits, fake_classifier):
    cs, _ = digits
    assert "cycle 0" in repr(ActiveLearningSession(cs, classifier=fake_classifier))


def test_shared_embeddings(tmp_path, digits, start_labels, fake_cls):
    cs, _ = digits
    a = ActiveLearningSession(
        cs, labels=start_labels, classifier=fake_cls(), rotation_average=False, head="logistic", zoom=(), profile=False
    )
    a.train(progress=False)
    assert a.embedding_blocks is None  # one level: the stand-in has no feature stages, no centre view
    clf = fake_cls()
    b = ActiveLearningSession(
        cs,
        labels=start_labels,
        classifier=clf,
        head="logistic",
        workdir=tmp_path,
        embeddings=a.embeddings,
        embedding_blocks=a.embedding_blocks,
        zoom=(),
    )
    assert b.embeddings is a.embeddings and b.embedding_blocks is None
    b.train(progress=False)
    np.testing.assert_allclose(b.scores, a.scores)
    assert clf.embed_calls == 0 and not (tmp_path / "embeddings.h5").exists()
    assert "embedding_key" not in json.loads((tmp_path / "session.json").read_text())
    # blocks: the widths of the feature levels, handed to the ensemble head
    c = ActiveLearningSession(cs, classifier=clf, embeddings=a.embeddings, embedding_blocks=[60, 4])
    assert c.embedding_blocks == [60, 4] and c._make_head().blocks == [60, 4]
    assert clf.embed_calls == 0


def test_shared_embeddings_are_checked(digits, fake_classifier):
    cs, _ = digits
    emb = np.zeros((len(cs), 8), dtype=np.float32)
    with pytest.raises(InvalidInputError, match=rf"one row per cutout \(N = {len(cs)}\), got shape \(10, 8\)"):
        ActiveLearningSession(cs, embeddings=emb[:10])
    with pytest.raises(InvalidInputError, match="one row per cutout"):
        ActiveLearningSession(cs, embeddings=emb[:, 0])
    with pytest.raises(InvalidInputError, match="adding up to the embedding width 8"):
        ActiveLearningSession(cs, embeddings=emb, embedding_blocks=[4, 3])
    with pytest.raises(InvalidInputError, match="pass both"):
        ActiveLearningSession(cs, embedding_blocks=[8])
    ints = ActiveLearningSession(cs, embeddings=np.ones((len(cs), 3), dtype=int))
    assert ints.embeddings.dtype == np.float32


def test_last_train_mode(digits, start_labels, fake_classifier):
    cs, _ = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_classifier, rotation_average=False)
    assert s.last_train_mode is None
    s.train(mode="fixmatch", progress=False)
    assert s.last_train_mode == "fixmatch" and s.provenance()["mode"] == "fixmatch"
    s.train(mode="fast", progress=False)
    assert s.last_train_mode == "fast"
    with pytest.raises(AttributeError):
        s.last_train_mode = "both"
