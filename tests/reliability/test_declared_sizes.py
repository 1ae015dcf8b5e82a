"""Issue 15, items 3 and 4: declared sizes are checked, JSON is limited, any Unicode id round-trips."""

import json
import resource
import shutil
import time

import h5py
import numpy as np
import pytest

from anomalymatch_astro import ActiveLearningSession, CutoutSet
from anomalymatch_astro.classifier import AnomalyClassifier
from anomalymatch_astro.utils.exceptions import CheckpointError, ReadError


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture
def small_set(tmp_path):
    data = np.random.default_rng(0).normal(size=(3, 1, 8, 8)).astype(np.float32)
    path = tmp_path / "ok.h5"
    CutoutSet.from_arrays(data, ids=["a", "b", "c"], bands=["g"]).to_hdf5(path)
    return path


def _declare_rows(path, rows):
    """Replace the shard's pixels by a dataset declaring ``rows`` rows, of which only the first 3 are stored."""
    with h5py.File(path, "a") as f:
        grp = f["shards/000000"]
        old = grp["data"][()]
        del grp["data"]
        d = grp.create_dataset(
            "data",
            shape=(rows, *old.shape[1:]),
            chunks=(1, *old.shape[1:]),
            compression="lzf",
            fletcher32=True,
            dtype="f4",
        )
        d[:3] = old


def test_a_set_declaring_a_billion_rows_is_refused_at_once(tmp_path, small_set):
    path = tmp_path / "big.h5"
    shutil.copy(small_set, path)
    _declare_rows(path, 10**9)
    assert path.stat().st_size < 64 * 1024  # the 20 KB file
    before, t0 = _peak_mb(), time.perf_counter()
    with pytest.raises(ReadError, match="declares 256000000000 bytes"):
        CutoutSet.from_hdf5(path)
    assert time.perf_counter() - t0 < 1
    assert _peak_mb() - before < 100  # it built a set of 10^9 ints before: GBs, then a bare MemoryError
    # `label --workdir` opens the session's recorded file: the same error, not a MemoryError
    workdir = tmp_path / "work"
    workdir.mkdir()
    state = {"format": "anomalymatch_astro.ActiveLearningSession", "cutouts_path": str(path)}
    (workdir / "session.json").write_text(json.dumps(state))
    with pytest.raises(ReadError, match="declares"):
        ActiveLearningSession.open(workdir)


def test_missing_chunks_are_counted_before_they_are_listed(tmp_path, small_set):
    path = tmp_path / "few.h5"
    shutil.copy(small_set, path)
    _declare_rows(path, 5000)  # small enough to pass the size bound: the chunk count refuses it
    with pytest.raises(ReadError, match="lacks pixel chunks"):
        CutoutSet.from_hdf5(path)


def test_tables_and_attributes_declaring_more_than_the_file_are_refused(tmp_path, small_set):
    path = tmp_path / "table.h5"
    shutil.copy(small_set, path)
    with h5py.File(path, "a") as f:
        del f["shards/000000/table"]
        f["shards/000000"].create_dataset("table", shape=(10**9,), dtype=[("id", "S8")])
    with pytest.raises(ReadError, match="shard 000000/table declares"):
        CutoutSet.from_hdf5(path)
    path = tmp_path / "attrs.h5"
    shutil.copy(small_set, path)
    with h5py.File(path, "a") as f:
        f.attrs["meta"] = "[" * 200_000 + "]" * 200_000
    with pytest.raises(ReadError, match="nested 200000 deep"):
        CutoutSet.from_hdf5(path)
    with h5py.File(path, "a") as f:
        f.attrs["meta"] = "{}"
        f.attrs["image_shape"] = np.array([10**6, 10**6])
    with pytest.raises(ReadError, match="declares cutouts of"):
        CutoutSet.from_hdf5(path)


@pytest.mark.parametrize(
    "ids",
    [
        ["α", "b", "ü"],
        ["漢字", "NGC 1234", "😀 emoji", "e\u0301", "tab\there"],
        ["plain", "ascii", "ids"],
    ],
)
def test_unicode_ids_round_trip(tmp_path, ids):
    data = np.arange(len(ids) * 16, dtype=np.float32).reshape(len(ids), 1, 4, 4)
    cs = CutoutSet.from_arrays(data, ids=ids, bands=["g"])
    cs.to_hdf5(tmp_path / "u.h5", shard_size=2)
    back = CutoutSet.from_hdf5(tmp_path / "u.h5")
    assert list(back.ids) == ids
    assert list(back.table["id"]) == ids
    np.testing.assert_array_equal(back.data, data)
    more = CutoutSet.from_arrays(data, ids=[i + "·2" for i in ids], bands=["g"])
    more.to_hdf5(tmp_path / "u.h5", mode="a")  # appending compares the ids already in the file
    assert list(CutoutSet.from_hdf5(tmp_path / "u.h5").ids) == ids + [i + "·2" for i in ids]


def test_ids_that_are_not_utf8_are_a_read_error(tmp_path, small_set):
    path = tmp_path / "latin1.h5"
    shutil.copy(small_set, path)
    with h5py.File(path, "a") as f:
        table = f["shards/000000/table"][()]
        table["id"][0] = "é".encode("latin-1")
        f["shards/000000/table"][...] = table
        del f["shards/000000"].attrs["table_sha256"]  # as in a file written before the checksums
    with pytest.raises(ReadError, match="not UTF-8"):
        CutoutSet.from_hdf5(path)


def test_deep_checkpoint_config_is_a_checkpoint_error(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "model" / "model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(CheckpointError, match="nested 200000 deep"):
        AnomalyClassifier.load(tmp_path / "model")  # a bare RecursionError before


def test_deep_session_json_is_a_checkpoint_error(tmp_path):
    (tmp_path / "session.json").write_text("{" * 200_000)
    with pytest.raises(CheckpointError, match="nested 200000 deep"):
        ActiveLearningSession.open(tmp_path)
