"""The session's residual profile block (``profile=True``): embeddings and workdir record (scorer: test_zoom.py)."""

import json

import numpy as np
import pytest

from anomalymatch_astro.active_learning import ActiveLearningSession
from anomalymatch_astro.embeddings import profile_features, profile_width
from anomalymatch_astro.utils.exceptions import InvalidInputError


def test_profile_is_the_last_block_recorded_and_kept(tmp_path, digits, start_labels, fake_cls):
    cs, _ = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_cls(), workdir=tmp_path, zoom=())
    assert s.profile is True  # the default of new sessions
    s.train(progress=False)
    width = profile_width(len(cs.bands))
    assert s.embedding_blocks[-1] == width and sum(s.embedding_blocks) == s.embeddings.shape[1]
    np.testing.assert_array_equal(s.embeddings[:, -width:], profile_features(cs))
    assert s._make_head().blocks == s.embedding_blocks  # one member pair on the profile too
    state = json.loads((tmp_path / "session.json").read_text())
    assert state["profile"] is True and state["embedding_key"]["profile"] is True
    scores = s.scores
    s.close()
    with pytest.raises(InvalidInputError, match="profile"):
        ActiveLearningSession(cs, workdir=tmp_path, classifier=fake_cls(), profile=False)
    clf = fake_cls()
    again = ActiveLearningSession(cs, workdir=tmp_path, classifier=clf)
    assert again.profile is True and again.embedding_blocks[-1] == width
    assert clf.embed_calls == 0  # read from the workdir
    again.train(progress=False)
    np.testing.assert_allclose(again.scores, scores)
    again.close()


def test_sessions_without_profile_are_as_before(tmp_path, digits, start_labels, fake_cls):
    cs, _ = digits
    s = ActiveLearningSession(cs, labels=start_labels, classifier=fake_cls(), workdir=tmp_path, zoom=(), profile=False)
    assert s.profile is False
    s.train(progress=False)
    assert s.embedding_blocks is None  # one block, as before the option existed
    s.close()
    state = json.loads((tmp_path / "session.json").read_text())
    assert state["profile"] is False and "profile" not in state["embedding_key"]
    del state["profile"]  # a workdir written before the option: opens with it off, not with the new default
    (tmp_path / "session.json").write_text(json.dumps(state))
    again = ActiveLearningSession(cs, workdir=tmp_path, classifier=fake_cls())
    assert again.profile is False
    again.close()
