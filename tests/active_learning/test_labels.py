import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.active_learning import ActiveLearningSession, LabelStore
from anomalymatch_astro.utils.exceptions import LabelError, UnknownIDError


def test_store_add_current_undo_history():
    store = LabelStore()
    assert store.add({"a": 1, "b": 0}, source="import", user="u1", cycle=0) == 2
    store.add({"a": 0}, source="human", user="u2", cycle=1)
    assert store.current() == {"a": 0, "b": 0}
    hist = store.history()
    assert list(hist["id"]) == ["a", "b", "a"]
    assert list(hist["label"]) == ["anomaly", "normal", "normal"]
    assert list(hist["source"]) == ["import", "import", "human"]
    assert list(hist["user"]) == ["u1", "u1", "u2"]
    assert list(hist["cycle"]) == [0, 0, 1]
    assert all(t.endswith("+00:00") for t in hist["time"])
    undone = store.undo()
    assert undone["id"] == "a" and undone["label"] == 0 and undone["source"] == "human"
    assert store.current() == {"a": 1, "b": 0}  # previous state of 'a' restored
    store.undo()
    store.undo()
    assert store.current() == {} and store.undo() is None
    with pytest.raises(LabelError, match="source"):
        store.add({"a": 1}, source="robot")


def _cutouts(n=30):
    return CutoutSet.from_arrays(np.zeros((n, 1, 4, 4), dtype="f4"), ids=[f"o{i}" for i in range(n)])


def test_session_labels_unknown_ids_write_nothing(tmp_path):
    s = ActiveLearningSession(_cutouts(), workdir=tmp_path, user="me")
    s.label({"o1": "anomaly"})
    with pytest.raises(UnknownIDError) as err:
        s.label({"o2": "normal", "nope": "anomaly", "zzz": "normal"})
    assert err.value.ids == ["nope", "zzz"]
    assert s.labels == {"o1": "anomaly"}
    assert len(s.history()) == 1
    with pytest.raises(LabelError):
        s.label({"o2": "weird"})
    assert len(s.history()) == 1


def test_session_label_undo_history(tmp_path):
    s = ActiveLearningSession(_cutouts(), workdir=tmp_path, user="me", labels={"o0": "normal"})
    s.label({"o1": "anomaly", "o2": "normal"})
    s.label({"o1": "normal"}, user="other")
    assert s.labels == {"o0": "normal", "o1": "normal", "o2": "normal"}
    h = s.history()
    assert list(h["source"]) == ["import", "human", "human", "human"]
    assert list(h["user"]) == ["me", "me", "me", "other"]
    s.undo()
    assert s.labels["o1"] == "anomaly"
    np.testing.assert_array_equal(np.flatnonzero(s.labelled_mask()), [0, 1, 2])
    assert s.label_array()[1] == 1 and s.label_array()[3] == -1
    # reopening re-imports nothing that is already stored
    s.close()
    s2 = ActiveLearningSession(_cutouts(), workdir=tmp_path, labels={"o0": "normal"})
    assert len(s2.history()) == 3 and s2.labels["o1"] == "anomaly"


def test_in_memory_store():
    s = ActiveLearningSession(_cutouts())
    s.label({"o3": "anomaly"}, source="oracle")
    assert s.labels == {"o3": "anomaly"}
    assert s.label_store.path is None


_CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from anomalymatch_astro import CutoutSet
    from anomalymatch_astro.active_learning import ActiveLearningSession
    cs = CutoutSet.from_arrays(np.zeros((500, 1, 4, 4), dtype="f4"), ids=[f"o{i}" for i in range(500)])
    s = ActiveLearningSession(cs, workdir=sys.argv[1], user="child")
    for i in range(500):
        s.label({f"o{i}": "anomaly" if i % 7 == 0 else "normal"})
        print(i, flush=True)
        time.sleep(0.002)
""")


def test_labels_survive_sigkill(tmp_path):
    workdir = tmp_path / "wd"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(workdir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    done = []
    try:
        for line in proc.stdout:
            done.append(int(line))
            if len(done) >= 25:
                break
        os.kill(proc.pid, signal.SIGKILL)  # between or during two label() calls
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert len(done) == 25
    s = ActiveLearningSession(_cutouts(500), workdir=workdir)
    labels = s.labels
    for i in done:  # every label whose call returned is there
        assert labels[f"o{i}"] == ("anomaly" if i % 7 == 0 else "normal")
    # nothing beyond what was attempted, and no partial rows
    assert set(labels) <= {f"o{i}" for i in range(max(done) + 2)}
    assert all(u == "child" for u in s.history()["user"])
