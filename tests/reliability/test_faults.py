"""Faults: kill -9 while writing cutouts and while training, disk full, unwritable output folders.

Covered elsewhere and not repeated here: kill -9 while scoring
(tests/scoring/test_stream.py::test_kill_9_then_rerun_gives_same_scores), SIGKILL between
labels (tests/active_learning/test_labels.py::test_labels_survive_sigkill) and interrupted,
truncated or corrupt downloads (tests/archives/test_faults.py).
"""

import contextlib
import errno
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.cutouts import _hdf5
from anomalymatch_astro.utils.exceptions import AnomalyMatchError, WriteError

from .conftest import COUNTS

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cutouts(n=10):
    rng = np.random.default_rng(1)
    return CutoutSet.from_arrays(rng.normal(size=(n, 2, 4, 4)), bands=["g", "r"], ids=[f"s{i:02d}" for i in range(n)])


def _run(script, expect_kill=True):
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120, cwd=TESTS
    )
    if expect_kill:
        assert proc.returncode == -signal.SIGKILL, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
    COUNTS["fault: kill -9"]["injected"] += int(expect_kill)
    return proc


# ------------------------------------------------------------------ kill -9 while writing shards
@pytest.mark.parametrize("where", ["after_data", "after_table"])
def test_kill_9_while_writing_shards_then_resume(tmp_path, where):
    path = tmp_path / "c.h5"
    _run(f"""
        import os, signal
        import numpy as np
        from anomalymatch_astro import CutoutSet
        from anomalymatch_astro.cutouts import _hdf5
        original = _hdf5._write_table
        calls = []
        def write_table(table, path, hdf5_path):
            calls.append(hdf5_path)
            if len(calls) == 3 and {where!r} == "after_data":
                os.kill(os.getpid(), signal.SIGKILL)   # shard 3: data written, no table, not complete
            original(table, path, hdf5_path)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGKILL)   # shard 3: data and table written, not complete
        _hdf5._write_table = write_table
        rng = np.random.default_rng(1)
        cs = CutoutSet.from_arrays(rng.normal(size=(10, 2, 4, 4)), bands=["g", "r"],
                                   ids=[f"s{{i:02d}}" for i in range(10)])
        cs.to_hdf5({str(path)!r}, shard_size=2)
    """)
    full = _cutouts()
    with h5py.File(path) as f:
        assert "000002" in f["shards"] and not f["shards"]["000002"].attrs.get("complete", False)
    with pytest.warns(Warning) if False else contextlib.nullcontext():
        partial = CutoutSet.from_hdf5(path)
    assert partial.ids.tolist() == full.ids[:4].tolist()  # the two complete shards, the half-written one skipped
    np.testing.assert_array_equal(partial.data, full.data[:4])
    # rerun: append what is missing; the result equals an uninterrupted run
    full[~np.isin(full.ids, partial.ids)].to_hdf5(path, mode="a", shard_size=2)
    again = CutoutSet.from_hdf5(path)
    reference = tmp_path / "ref.h5"
    full.to_hdf5(reference, shard_size=2)
    ref = CutoutSet.from_hdf5(reference)
    assert again.ids.tolist() == ref.ids.tolist()
    np.testing.assert_array_equal(again.data, ref.data)
    assert again.table.colnames == ref.table.colnames


@pytest.mark.parametrize("delay", [0.2, 0.6, 1.2])
def test_kill_9_at_a_random_moment_leaves_a_readable_or_refused_file(tmp_path, delay):
    """A timer kill lands anywhere (inside HDF5 library calls too): the file is read or refused, never wrong."""
    path = tmp_path / "c.h5"
    script = textwrap.dedent(f"""
        import numpy as np
        from anomalymatch_astro import CutoutSet
        rng = np.random.default_rng(1)
        cs = CutoutSet.from_arrays(rng.normal(size=(8000, 2, 4, 4)), bands=["g", "r"],
                                   ids=[f"s{{i:04d}}" for i in range(8000)])
        print("ready", flush=True)
        cs.to_hdf5({str(path)!r}, shard_size=10)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=TESTS
    )
    assert proc.stdout.readline().strip() == "ready"
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        COUNTS["fault: kill -9"]["injected"] += 1
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    if not path.exists():
        return
    rng = np.random.default_rng(1)
    data = rng.normal(size=(8000, 2, 4, 4)).astype(np.float32)
    try:
        cs = CutoutSet.from_hdf5(path)
        got = cs.data
    except AnomalyMatchError:
        COUNTS["fault: kill -9 at a random moment"]["refused"] += 1
        return
    COUNTS["fault: kill -9 at a random moment"]["read back"] += 1
    rows = [int(i[1:]) for i in cs.ids]
    assert rows == list(range(len(rows)))  # a prefix of whole shards
    np.testing.assert_array_equal(got, data[rows])


# ------------------------------------------------------------------ kill -9 while training a session
SESSION = """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from active_learning.conftest import FakeClassifier, _digits_set
    from anomalymatch_astro.active_learning import ActiveLearningSession
    cs, truth = _digits_set()
    labels = {{**{{i: "anomaly" for i in cs.ids[truth][:3]}}, **{{i: "normal" for i in cs.ids[~truth][:20]}}}}
    s = ActiveLearningSession(cs, labels=labels, classifier=FakeClassifier(), workdir={workdir!r},
                              default_mode="both", head="knn")
    s.train(progress=False)
    s.label({{cs.ids[truth][5]: "anomaly"}})
    {inject}
    s.train(progress=False)
"""
INJECT = {
    # half-written new model directory
    "during_model_save": """
    original = FakeClassifier.save
    def save(self, path):
        os.makedirs(path, exist_ok=True)
        open(os.path.join(path, "fake.json"), "w").write('{{"coef": [0.1, ')
        os.kill(os.getpid(), signal.SIGKILL)
    FakeClassifier.save = save""",
    # between moving the old model aside and moving the new one in
    "between_renames": """
    original = os.replace
    def replace(src, dst):
        if os.path.basename(str(src)) == "model" and str(dst).endswith("model.old"):
            original(src, dst)
            os.kill(os.getpid(), signal.SIGKILL)
        return original(src, dst)
    os.replace = replace""",
    # while the new scores file is being written
    "during_scores_save": """
    def save_scores(*args, **kwargs):
        import h5py
        with h5py.File(os.path.join({workdir!r}, "scores.h5.tmp" + str(os.getpid())), "w") as f:
            f.create_dataset("score", data=[0.5])
            os.kill(os.getpid(), signal.SIGKILL)
    s._save_scores = save_scores""",
}


@pytest.mark.parametrize("where", sorted(INJECT))
def test_kill_9_during_training_keeps_the_last_model_and_scores(tmp_path, where):
    sys.path.insert(0, TESTS)
    try:
        from active_learning.conftest import FakeClassifier, _digits_set
    finally:
        sys.path.remove(TESTS)
    from anomalymatch_astro.active_learning import ActiveLearningSession

    workdir = str(tmp_path / "killed")
    inject = textwrap.indent(textwrap.dedent(INJECT[where]).format(workdir=workdir), "    ").strip()
    _run(SESSION.format(tests=TESTS, workdir=workdir, inject=inject))
    cs, truth = _digits_set()
    # the old model and the old scores are loadable, the labels complete
    reopened = ActiveLearningSession(
        cs,
        classifier=None
        if where == "xx"
        else FakeClassifier.load(
            os.path.join(workdir, "model")
            if os.path.isdir(os.path.join(workdir, "model"))
            else os.path.join(workdir, "model.old")
        ),
        workdir=workdir,
    )
    assert reopened.cycle == 1 and reopened.scores is not None and len(reopened.labels) == 24
    # rerun the interrupted cycle: identical to an uninterrupted run
    reopened.train(progress=False)
    assert not [f for f in os.listdir(workdir) if ".tmp" in f or f == "model.old"]  # leftovers removed
    _run(SESSION.format(tests=TESTS, workdir=str(tmp_path / "clean"), inject=""), expect_kill=False)
    clean = ActiveLearningSession(
        cs, classifier=FakeClassifier.load(tmp_path / "clean" / "model"), workdir=tmp_path / "clean"
    )
    assert clean.cycle == reopened.cycle == 2
    np.testing.assert_allclose(reopened.scores, clean.scores)
    np.testing.assert_allclose(
        FakeClassifier.load(os.path.join(workdir, "model")).coef, FakeClassifier.load(tmp_path / "clean" / "model").coef
    )
    reopened.close()
    clean.close()


# ------------------------------------------------------------------ disk full, unwritable folders
def _shards(path):
    with h5py.File(path) as f:
        return {name: bool(g.attrs.get("complete", False)) for name, g in f["shards"].items()}


def test_disk_full_while_writing_shards_simulated(tmp_path, monkeypatch):
    path = tmp_path / "c.h5"
    original = _hdf5._write_table
    calls = []

    def write_table(table, p, hdf5_path):
        calls.append(hdf5_path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(p))
        original(table, p, hdf5_path)

    monkeypatch.setattr(_hdf5, "_write_table", write_table)
    with pytest.raises(WriteError, match="room"):
        _cutouts().to_hdf5(path, shard_size=4)
    COUNTS["fault: disk full"]["injected"] += 1
    assert _shards(path) == {"000000": True, "000001": False}
    assert CutoutSet.from_hdf5(path).ids.tolist() == _cutouts().ids[:4].tolist()


@contextlib.contextmanager
def _tmpfs(where, options):
    os.makedirs(where, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_on_a_tiny_tmpfs(tmp_path):
    with _tmpfs(tmp_path / "tiny", "size=1536k") as where:
        path = where / "c.h5"
        rng = np.random.default_rng(0)
        big = CutoutSet.from_arrays(rng.normal(size=(1000, 2, 16, 16)), bands=["g", "r"])  # 2 MB
        with pytest.raises(WriteError, match="room"):
            big.to_hdf5(path, shard_size=100, compression=None)
        COUNTS["fault: disk full"]["injected"] += 1
        try:
            cs = CutoutSet.from_hdf5(path)
        except AnomalyMatchError:
            COUNTS["fault: disk full"]["file refused after"] += 1
            return
        n = len(cs)
        assert 0 < n < len(big) and n % 100 == 0
        np.testing.assert_array_equal(cs.data, big.data[:n])  # complete shards only, exact


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_read_only_folder(tmp_path):
    with _tmpfs(tmp_path / "ro", "size=64k,ro") as where:
        with pytest.raises(WriteError, match="writable"):
            _cutouts().to_hdf5(where / "c.h5")
    COUNTS["fault: unwritable folder"]["injected"] += 1


def test_unwritable_or_missing_folder_simulated(tmp_path, monkeypatch):
    with pytest.raises(WriteError, match="writable"):
        _cutouts().to_hdf5(tmp_path / "no" / "such" / "folder" / "c.h5")
    original = h5py.File

    def refuse(name, mode="r", *args, **kwargs):
        if mode != "r":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(name))
        return original(name, mode, *args, **kwargs)

    monkeypatch.setattr(_hdf5.h5py, "File", refuse)
    with pytest.raises(WriteError, match="writable"):
        _cutouts().to_hdf5(tmp_path / "c.h5")
    assert not (tmp_path / "c.h5").exists()
    COUNTS["fault: unwritable folder"]["injected"] += 2
