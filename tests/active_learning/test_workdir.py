"""The session's workdir: settings recorded once and restored on every reopening, old workdirs still open."""

import json

import numpy as np
import pytest

from anomalymatch_astro.active_learning import ActiveLearningSession
from anomalymatch_astro.utils.exceptions import CheckpointError, InvalidInputError


def _state(workdir):
    return json.loads((workdir / "session.json").read_text())


def test_reopening_restores_every_recorded_setting(tmp_path, digits, start_labels, fake_cls):
    """Regression: rotation_average / feature_stages were reset to the defaults on reopening."""
    cs, _ = digits
    s = ActiveLearningSession(
        cs,
        labels=start_labels,
        classifier=fake_cls(),
        workdir=tmp_path,
        default_mode="fast",
        head="knn",
        rotation_average=False,
        feature_stages=(-1,),
    )
    s.train(progress=False)
    emb = s.embeddings
    s.close()
    recorded = _state(tmp_path)
    assert recorded["rotation_average"] is False and recorded["feature_stages"] == [-1]

    clf = fake_cls()
    again = ActiveLearningSession(cs, classifier=clf, workdir=tmp_path)
    assert again.rotation_average is False and again.feature_stages == (-1,)
    assert again.default_mode == "fast" and again.head == "knn"
    again.train(progress=False)
    # the recorded settings were not overwritten with the defaults, and the cached embeddings were reused
    state = _state(tmp_path)
    assert state["rotation_average"] is False and state["feature_stages"] == [-1] and state["head"] == "knn"
    assert state["embedding_key"]["rotation_average"] is False
    np.testing.assert_array_equal(again.embeddings, emb)
    assert clf.embed_calls == 0
    again.close()


@pytest.mark.parametrize(("name", "value"), [("rotation_average", True), ("feature_stages", (-2, -1))])
def test_conflicting_embedding_setting_is_refused(tmp_path, digits, start_labels, fake_cls, name, value):
    cs, _ = digits
    s = ActiveLearningSession(
        cs, labels=start_labels, classifier=fake_cls(), workdir=tmp_path, rotation_average=False, feature_stages=()
    )
    s.train(progress=False)
    s.close()
    before = (tmp_path / "session.json").read_bytes()
    with pytest.raises(InvalidInputError, match=f"without {name}=.*new workdir"):
        ActiveLearningSession(cs, classifier=fake_cls(), workdir=tmp_path, **{name: value})
    assert (tmp_path / "session.json").read_bytes() == before
    # the same value as recorded is fine, and so is another mode or head (refitted at every training)
    same = {"rotation_average": False, "feature_stages": ()}[name]
    ok = ActiveLearningSession(cs, classifier=fake_cls(), workdir=tmp_path, head="logistic", **{name: same})
    assert ok.head == "logistic" and ok.rotation_average is False
    ok.close()


def test_settings_may_change_before_embeddings_exist(tmp_path, digits, fake_cls):
    cs, _ = digits
    ActiveLearningSession(cs, classifier=fake_cls(), workdir=tmp_path).close()
    assert _state(tmp_path)["rotation_average"] is True and "embedding_key" not in _state(tmp_path)
    s = ActiveLearningSession(cs, classifier=fake_cls(), workdir=tmp_path, rotation_average=False)
    assert s.rotation_average is False
    s.embeddings  # noqa: B018
    assert _state(tmp_path)["rotation_average"] is False
    s.close()


@pytest.mark.parametrize("with_key", [True, False])
def test_old_workdir_without_recorded_embedding_settings_opens(tmp_path, digits, start_labels, fake_cls, with_key):
    """Workdirs written before rotation_average / feature_stages were recorded: embeddings without either."""
    cs, _ = digits
    s = ActiveLearningSession(
        cs, labels=start_labels, classifier=fake_cls(), workdir=tmp_path, rotation_average=False, feature_stages=()
    )
    s.train(progress=False)
    scores = s.scores
    s.close()
    state = _state(tmp_path)
    del state["rotation_average"], state["feature_stages"]
    if not with_key:
        del state["embedding_key"], state["embedding_blocks"]
    (tmp_path / "session.json").write_text(json.dumps(state))

    again = ActiveLearningSession(cs, classifier=fake_cls(), workdir=tmp_path)
    assert again.rotation_average is False and again.feature_stages == ()
    np.testing.assert_allclose(again.scores, scores)
    again.train(progress=False)
    np.testing.assert_allclose(again.scores, scores)
    state = _state(tmp_path)
    assert state["rotation_average"] is False and state["feature_stages"] == []
    again.close()


def test_damaged_or_foreign_session_file_is_refused(tmp_path, digits, fake_cls):
    cs, _ = digits
    (tmp_path / "session.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable session file"):
        ActiveLearningSession(cs, classifier=fake_cls(), workdir=tmp_path)
    (tmp_path / "session.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CheckpointError, match="not an anomalymatch_astro session file"):
        ActiveLearningSession(cs, classifier=fake_cls(), workdir=tmp_path)


def test_leftover_temporary_files_are_removed(tmp_path, digits, start_labels, fake_cls):
    cs, _ = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_cls(), workdir=tmp_path, default_mode="both")
    for name in ("scores.h5.tmp123", ".scores.h5.tmp456"):
        (tmp_path / name).write_bytes(b"half")
    for name in ("model.tmp123", ".model.tmp456"):
        (tmp_path / name).mkdir()
    s.train(progress=False)
    assert not [f.name for f in tmp_path.iterdir() if ".tmp" in f.name]
    assert (tmp_path / "model").is_dir() and not (tmp_path / "model.old").exists()
    s.close()
