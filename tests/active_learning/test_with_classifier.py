"""The session with the real AnomalyClassifier (tiny: no pretrained weights, 16 px, 2 steps)."""

import numpy as np
import pytest

from anomalymatch_astro.active_learning import ActiveLearningSession
from anomalymatch_astro.utils.exceptions import InvalidInputError

torch = pytest.importorskip("torch")


def test_both_modes_save_and_reload_real_classifier(tmp_path, digits, start_labels):
    from anomalymatch_astro.classifier import AnomalyClassifier

    torch.set_num_threads(1)
    cs, truth = digits
    cs = cs[:120]
    labels = {i: w for i, w in start_labels.items() if i in set(cs.ids)}
    clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=4, mu=1, seed=0)
    s = ActiveLearningSession(cs, labels=labels, classifier=clf, workdir=tmp_path, default_mode="both")
    emb_before = s.embeddings  # pretrained (here: random-init) backbone, before any fit
    r = s.train(iterations=2, progress=False)
    assert r.mode == "both" and set(s.model_scores) == {"fast", "fixmatch"}
    assert (tmp_path / "model").is_dir()
    scores = s.scores
    s.close()

    again = ActiveLearningSession(cs, workdir=tmp_path, default_mode="both")  # model from workdir/model
    assert again.classifier.model_hash == clf.model_hash
    np.testing.assert_allclose(again.scores, scores)
    # the fast head keeps using the embeddings cached before FixMatch changed the weights
    np.testing.assert_array_equal(again.embeddings, emb_before)
    np.testing.assert_allclose(again.classifier.score(cs), s.model_scores["fixmatch"], atol=1e-5)

    # a crash between the two renames of the model swap leaves only model.old: still loaded
    again.close()
    (tmp_path / "model").rename(tmp_path / "model.old")
    third = ActiveLearningSession(cs, workdir=tmp_path)
    assert third.classifier.model_hash == clf.model_hash


def test_default_multilevel_features(tmp_path, digits, start_labels):
    """The session default: rotation-averaged head features plus the last two stages, for the full cutout and its
    central half, and the residual profile, one ensemble per level."""
    from anomalymatch_astro.classifier import AnomalyClassifier
    from anomalymatch_astro.embeddings import profile_features, profile_width

    torch.set_num_threads(1)
    cs, truth = digits
    cs = cs[:80]
    labels = {i: w for i, w in start_labels.items() if i in set(cs.ids)}
    clf = AnomalyClassifier(pretrained=False, image_size=16, seed=0)
    s = ActiveLearningSession(cs, labels=labels, classifier=clf, workdir=tmp_path)
    assert s.rotation_average and s.feature_stages == (-2, -1) and s.zoom == (0.5,) and s.profile
    s.train(progress=False)
    widths = clf.feature_widths(stages=(-2, -1))
    blocks = widths + widths + [profile_width(len(cs.bands))]
    assert s.embeddings.shape == (len(cs), sum(blocks)) and s.embedding_blocks == blocks
    head = s._make_head()
    assert head.blocks == blocks
    alone = ActiveLearningSession(cs, classifier=clf, feature_stages=(), zoom=(), profile=False)
    np.testing.assert_array_equal(s.embeddings[:, : widths[0]], alone.embeddings)
    np.testing.assert_array_equal(s.embeddings[:, -blocks[-1] :], profile_features(cs))
    scores = s.scores
    s.close()
    # reopened with settings other than those of the cached embeddings: refused, saying what to do
    with pytest.raises(InvalidInputError, match="without feature_stages="):
        ActiveLearningSession(cs, workdir=tmp_path, classifier=clf, feature_stages=())
    # reopened without them: every recorded setting, the embeddings and their levels are restored
    again = ActiveLearningSession(cs, workdir=tmp_path, classifier=clf)
    assert again.rotation_average and again.feature_stages == (-2, -1) and again.zoom == (0.5,)
    np.testing.assert_array_equal(again.embeddings, s.embeddings)
    assert again.profile and again.embedding_blocks == blocks and again._make_head().blocks == blocks
    again.train(progress=False)
    np.testing.assert_allclose(again.scores, scores)


def test_backbone_without_stages_falls_back_to_head_features(digits, start_labels, monkeypatch, caplog):
    from anomalymatch_astro.classifier import AnomalyClassifier

    torch.set_num_threads(1)
    cs, _ = digits
    labels = start_labels
    clf = AnomalyClassifier(pretrained=False, image_size=16, seed=0)
    clf.embed(cs[:1])  # builds the network
    monkeypatch.delattr(type(clf.ema_model), "forward_intermediates")  # as in an older timm
    s = ActiveLearningSession(cs, labels=labels, classifier=clf, rotation_average=False, zoom=(), profile=False)
    with caplog.at_level("WARNING"):
        s.train(progress=False)
    assert "head features alone" in caplog.text
    assert s.embeddings.shape == (len(cs), 1280) and s.embedding_blocks is None
    assert np.isfinite(s.scores).all()
