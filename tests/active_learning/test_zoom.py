"""The session's centre views (``zoom``): embeddings, workdir record, old workdirs, the mining scorer."""

import json

import numpy as np
import pytest

from anomalymatch_astro.active_learning import ActiveLearningSession
from anomalymatch_astro.embeddings import center_crop, compute_embeddings, profile_width
from anomalymatch_astro.utils.exceptions import InvalidInputError

torch = pytest.importorskip("torch")


def _state(workdir):
    return json.loads((workdir / "session.json").read_text())


def test_zoom_embeddings_equal_the_views_by_hand_and_are_restored(tmp_path, digits, start_labels):
    from anomalymatch_astro.classifier import AnomalyClassifier

    torch.set_num_threads(1)
    cs, _ = digits
    cs = cs[:80]
    labels = {i: w for i, w in start_labels.items() if i in set(cs.ids)}
    clf = AnomalyClassifier(pretrained=False, image_size=16, seed=0)
    s = ActiveLearningSession(cs, labels=labels, classifier=clf, workdir=tmp_path, zoom=(0.5,), profile=False)
    assert s.zoom == (0.5,)
    s.train(progress=False)
    settings = {"rotation_average": True, "stages": (-2, -1)}
    full = compute_embeddings(cs, clf, progress=False, **settings)
    centre = compute_embeddings(center_crop(cs, 0.5), clf, progress=False, **settings)
    np.testing.assert_allclose(s.embeddings, np.concatenate([full, centre], axis=1), rtol=1e-5, atol=1e-6)
    widths = clf.feature_widths(stages=(-2, -1))
    assert s.embedding_blocks == widths * 2 and s._make_head().blocks == widths * 2
    assert _state(tmp_path)["zoom"] == [0.5] and _state(tmp_path)["embedding_key"]["zoom"] == [0.5]
    scores = s.scores
    s.close()
    with pytest.raises(InvalidInputError, match="without zoom="):
        ActiveLearningSession(cs, workdir=tmp_path, classifier=clf, zoom=())
    again = ActiveLearningSession(cs, workdir=tmp_path, classifier=clf)
    assert again.zoom == (0.5,)
    np.testing.assert_array_equal(again.embeddings, s.embeddings)
    assert again.embedding_blocks == widths * 2
    again.train(progress=False)
    np.testing.assert_allclose(again.scores, scores)
    again.close()


def test_old_workdir_without_zoom_opens_with_it_off(tmp_path, digits, start_labels, fake_cls):
    cs, _ = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_cls(), workdir=tmp_path, zoom=())
    assert s.zoom == ()
    s.train(progress=False)
    emb, scores = s.embeddings, s.scores
    s.close()
    state = _state(tmp_path)
    assert state["zoom"] == [] and "zoom" not in state["embedding_key"]
    del state["zoom"]
    (tmp_path / "session.json").write_text(json.dumps(state))
    clf = fake_cls()
    again = ActiveLearningSession(cs, classifier=clf, workdir=tmp_path)
    assert again.zoom == ()  # not the new sessions' default: the old workdir's embeddings had no centre view
    np.testing.assert_array_equal(again.embeddings, emb)
    assert clf.embed_calls == 0  # the cached embeddings are still valid
    again.train(progress=False)
    np.testing.assert_allclose(again.scores, scores)
    again.close()


@pytest.mark.parametrize("profile", [False, True])
def test_scorer_with_zoom_matches_the_session(digits, start_labels, fake_cls, profile):
    cs, _ = digits
    s = ActiveLearningSession(
        cs, labels=start_labels, classifier=fake_cls(), zoom=(0.5,), profile=profile, rotation_average=False
    )
    s.train(progress=False)
    extra = [profile_width(len(cs.bands))] if profile else []  # the residual profile comes last
    assert s.embedding_blocks == [64, 16, *extra]  # a stand-in's widths follow the image size: 8x8 and 4x4 pixels
    np.testing.assert_array_equal(s.embeddings[:, 64:80], cs.data[:, :, 2:6, 2:6].reshape(len(cs), -1))
    scorer = s.scorer()
    assert scorer.zoom == (0.5,) and scorer.profile is profile
    got = scorer(cs)
    assert np.abs(got - s.scores).max() <= 2.5 / (len(cs) - 1)
    assert np.corrcoef(got, s.scores)[0, 1] > 0.999
    other = ActiveLearningSession(
        cs, labels=start_labels, classifier=fake_cls(), rotation_average=False, zoom=(), profile=not profile
    )
    other.train(progress=False)
    assert other.scorer().scorer_id != scorer.scorer_id
