import json
import os
import sqlite3

import numpy as np
import pytest

from anomalymatch_astro.active_learning import ActiveLearningSession
from anomalymatch_astro.ui import Gallery
from anomalymatch_astro.utils.exceptions import InvalidInputError

from .conftest import ANOMALY_ROWS, START_LABELS, FlatEmbedder, make_cutouts


def _disk_labels(workdir):
    """The current labels, read straight from the SQLite file with a separate connection."""
    con = sqlite3.connect(os.path.join(workdir, "labels.sqlite"))
    try:
        rows = con.execute("SELECT id, label FROM events ORDER BY seq").fetchall()
    finally:
        con.close()
    out = {}
    for obj_id, value in rows:
        out[obj_id] = "anomaly" if value == 1 else "normal"
    return out, len(rows)


def test_state_is_json_and_ranked(session):
    g = Gallery(session, page_size=6)
    st = g.state()
    json.dumps(st, allow_nan=False)
    assert st["scored"] and st["cycle"] == 1
    ids = [t["id"] for t in st["tiles"]]
    assert len(ids) == 6 and not set(ids) & set(START_LABELS)
    ranks = [t["rank"] for t in st["tiles"]]
    assert ranks == sorted(ranks)
    # the unlabelled injected anomalies come first
    expected = {f"src{i:03d}" for i in ANOMALY_ROWS} - set(START_LABELS)
    assert set(ids[: len(expected)]) == expected
    tile = st["tiles"][0]
    assert tile["image"].startswith("data:image/png;base64,")
    assert 149 < tile["ra"] < 151 and set(tile["links"]) == {"Legacy Survey", "ESASky", "SIMBAD"}
    assert st["histogram"].startswith("data:image/png")
    assert st["views"] == ["lupton", "colour", "band:g", "band:r"]


def test_label_saved_at_once_and_undo(session, workdir):
    g = Gallery(session, page_size=4)
    a, b, c = (t["id"] for t in g.state()["tiles"][:3])
    st = g.label(a, "anomaly")
    assert st["tiles"][0]["label"] == "anomaly" and "image" not in st["tiles"][0]
    g.label(b, "normal")
    g.label(c, "skip")
    labels, n_events = _disk_labels(workdir)
    assert labels[a] == "anomaly" and labels[b] == "normal" and c not in labels
    assert n_events == len(START_LABELS) + 2
    # undo the skip (kept in the UI only), then the normal label (removed from disk)
    st = g.undo()
    assert st["tiles"][2]["label"] is None and "skip" in st["message"]
    st = g.undo()
    assert st["tiles"][1]["label"] is None
    labels, n_events = _disk_labels(workdir)
    assert b not in labels and labels[a] == "anomaly" and n_events == len(START_LABELS) + 1
    g.undo()
    st = g.undo()  # the imported start labels are not undone from the UI
    assert st["message"] == "nothing to undo" and not st["can_undo"]
    assert _disk_labels(workdir)[1] == len(START_LABELS)
    # labels survive a reopen (nothing held in memory only)
    g.label(a, "normal")
    session.close()
    again = ActiveLearningSession.open(workdir)
    assert again.labels[a] == "normal"
    again.close()


def test_retrain_reorders_and_reports(session):
    g = Gallery(session, page_size=5)
    before = [t["id"] for t in g.state()["tiles"]]
    # label the top candidates normal and the 5th anomaly: the order must change
    for obj_id in before[:4]:
        g.label(obj_id, "normal")
    st = g.retrain(mode="fast")
    assert st["error"] == "" and st["training"] is None
    assert st["last_train"]["mode"] == "fast" and st["last_train"]["seconds"] > 0
    assert st["last_train"]["cycle"] == 2 and st["cycle"] == 2
    assert "retrained (fast)" in st["message"]
    after = [t["id"] for t in st["tiles"]]
    assert not set(after) & set(before[:4])
    assert after != before
    assert not st["can_undo"]


def test_training_error_keeps_labels(tmp_path):
    cs = make_cutouts(n=20)
    s = ActiveLearningSession(cs, classifier=FlatEmbedder(), workdir=tmp_path / "w", user="t")
    g = Gallery(s, page_size=5)
    st = g.state()
    assert not st["scored"] and [t["id"] for t in st["tiles"]] == [f"src{i:03d}" for i in range(5)]
    g.label("src000", "anomaly")
    st = g.retrain()  # only one class
    assert "training (fast) failed" in st["error"] and "labels are kept" in st["error"]
    assert s.labels == {"src000": "anomaly"} and st["training"] is None
    s.close()


def test_missing_cutout_shown(session, monkeypatch):
    g = Gallery(session, page_size=4)
    bad = g.page_ids()[1]
    real = type(session.cutouts).__getitem__

    def getitem(self, item):
        if isinstance(item, list) and bad in item:
            raise OSError("cutout file damaged")
        return real(self, item)

    monkeypatch.setattr(type(session.cutouts), "__getitem__", getitem)
    g.renderer.clear()
    st = g.state()
    tiles = {t["id"]: t for t in st["tiles"]}
    assert tiles[bad]["image"] is None and "could not read" in tiles[bad]["error"]
    assert all(t["image"] for i, t in tiles.items() if i != bad)


def test_no_candidates(tmp_path):
    cs = make_cutouts(n=4)
    s = ActiveLearningSession(
        cs,
        classifier=FlatEmbedder(),
        user="t",
        labels={"src000": "anomaly", "src001": "normal", "src002": "normal", "src003": "normal"},
    )
    st = Gallery(s).state()
    assert st["tiles"] == [] and "every object is labelled" in st["message"]


def test_paging_views_and_strategies(session):
    g = Gallery(session, page_size=10)
    first = g.page_ids()
    st = g.goto(1)
    assert st["page"] == 1 and not set(g.page_ids()) & set(first)
    st = g.dispatch({"action": "view", "view": "band:r"})
    assert st["view"] == "band:r" and st["tiles"][0]["image"]
    v = st["version"]
    st = g.dispatch({"action": "stretch", "stretch": "log"})
    assert st["stretch"] == "log" and st["version"] > v
    st = g.dispatch({"action": "strategy", "strategy": "uncertainty"})
    assert st["strategy"] == "uncertainty" and st["page"] == 0
    st = g.dispatch({"action": "strategy", "strategy": "similar", "like": "src003"})
    assert st["like"] == ["src003"] and "src003" not in [t["id"] for t in st["tiles"]]
    assert st["error"] == ""
    # a very far page: stays where it is and says so
    total = len(session.cutouts)
    st = g.goto(total)
    assert st["page"] == 0 and st["message"] == "no more candidates"


@pytest.mark.parametrize(
    "request_, text",
    [
        ("nope", "JSON object"),
        ({"action": "rm -rf"}, "unknown action"),
        ({"action": "label", "id": "src050", "label": "weird"}, "label must be one of"),
        ({"action": "label", "id": "nosuch", "label": "anomaly"}, "not in the cutouts"),
        ({"action": "label", "id": "src050", "label": "anomaly", "extra": 1}, "unexpected parameter"),
        ({"action": "view", "view": "band:z"}, "view must be one of"),
        ({"action": "strategy", "strategy": "similar"}, "needs an object"),
        ({"action": "mode", "mode": "slow"}, "mode must be one of"),
        ({"action": "page", "page": -1}, "page must be"),
    ],
)
def test_dispatch_reports_errors(session, request_, text):
    g = Gallery(session)
    labels = session.labels
    st = g.dispatch(request_)
    assert text in st["error"]
    assert session.labels == labels


def test_constructor_checks(session):
    with pytest.raises(InvalidInputError, match="page_size"):
        Gallery(session, page_size=0)
    with pytest.raises(InvalidInputError, match="strategy"):
        Gallery(session, strategy="best")
    g = Gallery(session, strategy="similar", like="src003")
    assert g.like == ["src003"]
    assert np.all([t["id"] != "src003" for t in g.state(images=False)["tiles"]])


def test_one_tile_per_system_with_members(workdir):
    """A system's tile carries its member count and the members' ids, scores and labels."""
    ids = np.arange(96)
    ids[[42, 43]] = 41  # src041 (an injected anomaly) and two neighbours are one system
    session = ActiveLearningSession.open(workdir, user="tester", systems=ids)
    try:
        g = Gallery(session, page_size=8)
        st = g.state()
        json.dumps(st, allow_nan=False)
        assert st["group"] is True
        tiles = {t["id"]: t for t in st["tiles"]}
        assert "src041" in tiles and not {"src042", "src043"} & set(tiles)
        tile = tiles["src041"]
        assert tile["n_members"] == 2 and {m["id"] for m in tile["members"]} == {"src042", "src043"}
        scores = session.scores
        member_scores = [m["score"] for m in tile["members"]]
        assert member_scores == sorted(member_scores, reverse=True)
        assert member_scores[0] == pytest.approx(max(scores[42], scores[43]), abs=1e-5)
        assert all(t["n_members"] == 0 and t["members"] == [] for i, t in tiles.items() if i != "src041")
        # labelling the tile labels that object only; the members show it
        st = g.label("src041", "anomaly")
        assert session.labels["src041"] == "anomaly" and "src042" not in session.labels
        # later pages never repeat a system already queued
        seen = [t["id"] for t in st["tiles"]]
        for page in range(1, 4):
            seen += [t["id"] for t in g.goto(page)["tiles"]]
        assert len(seen) == len(set(seen)) and not {"src042", "src043"} & set(seen)
        # the system comes back with its next member, whose tile lists the labelled one
        queue = [str(i) for i in session.candidates(96)["id"]]
        nxt = next(i for i in queue if i in ("src042", "src043"))
        members = g._systems.members(nxt, session.scores, session.labels)
        assert {"id": "src041", "score": round(float(scores[41]), 5), "label": "anomaly"} in members
        flat = Gallery(session, page_size=8, group=False).state()
        assert flat["group"] is False and all(t["members"] == [] for t in flat["tiles"])
    finally:
        session.close()


def test_no_member_info_without_positions_or_systems(session):
    st = Gallery(session, page_size=4).state()  # the test cutouts carry no pixel scale: no grouping
    assert st["group"] is False and all(t["n_members"] == 0 for t in st["tiles"])
