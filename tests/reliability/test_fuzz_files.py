"""Fuzzed label files, VOTables, HDF5 CutoutSet shards and label-store databases."""

import os
import shutil
import sqlite3

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.active_learning import LabelStore
from anomalymatch_astro.archives._votable import datalink_url_column, parse_votable, soda_request
from anomalymatch_astro.utils import parse_labels
from anomalymatch_astro.utils.exceptions import FITSReadError, LabelError

from .conftest import FUZZ, check

# ------------------------------------------------------------------ label files
CELLS = st.one_of(
    st.sampled_from(
        ["anomaly", "normal", "1", "0", "yes", "Normal ", "maybe", "", "nan", "-1", "2", '"', "a,b", "\\N"]
    ),
    st.text(max_size=6),
)


@st.composite
def label_files(draw):
    header = draw(st.sampled_from(["id,label", "label,id", "id", "id,label,extra", "ID,Label", "", "id;label"]))
    if draw(st.integers(0, 3)) == 0:  # a well-formed file, sometimes with unknown ids or duplicates
        ids = draw(st.lists(st.sampled_from(["a", "b", "0", "1", "zz"]), max_size=5))
        rows = [[i, draw(st.sampled_from(["anomaly", "normal", "1", "0"]))] for i in ids]
        header = "id,label"
    else:
        rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=3), max_size=6))
    text = header + "\n" + "\n".join(",".join(r) for r in rows)
    if draw(st.booleans()):
        text = "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: id, datatype: string}\n" + text
    if draw(st.integers(0, 3)) == 0:
        text = draw(st.text(max_size=80))
    return text


@settings(FUZZ, max_examples=100)
@given(
    text=label_files(),
    suffix=st.sampled_from([".csv", ".ecsv", ".txt"]),
    known=st.sampled_from([None, ["a", "b", "0", "1"]]),
)
def test_label_files(tmp_path_factory, text, suffix, known):
    path = tmp_path_factory.mktemp("labels") / f"labels{suffix}"
    path.write_bytes(text.encode("utf-8", "replace"))
    result = check("label file (CSV/ECSV)", parse_labels, path, known_ids=known)
    if result is not None:
        assert all(v in (0, 1) for v in result.values()) and all(isinstance(k, str) for k in result)
        assert known is None or set(result) <= set(known)


# ------------------------------------------------------------------ VOTables
def _votables():
    import pyvo

    base = os.path.join(os.path.dirname(pyvo.__file__), "dal", "tests", "data")
    out = []
    for parts in (("datalink", "datalink.xml"), ("query", "basic.xml"), ("query", "errorstatus.xml")):
        with open(os.path.join(base, *parts), "rb") as f:
            out.append(f.read())
    return out


@settings(FUZZ, max_examples=100)
@given(
    which=st.integers(0, 2),
    cut=st.one_of(st.just(1.0), st.floats(0, 1)),
    flips=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(b"<>\"'/ \x00x9&;")), max_size=4),
    garbage=st.one_of(st.none(), st.binary(max_size=64)),
)
def test_votables(which, cut, flips, garbage):
    content = bytearray(_votables()[which])
    for where, value in flips:
        content[int(where * (len(content) - 1))] = value
    content = bytes(content[: int(cut * len(content))]) if cut < 1 else bytes(content)
    if garbage is not None:
        content = garbage
    votable = check("VOTable (parse_votable)", parse_votable, content, source="fuzz")
    if votable is not None:
        check(
            "VOTable (DataLink/SODA descriptors)",
            lambda: (datalink_url_column(votable), soda_request(votable, source="fuzz")),
        )


# ------------------------------------------------------------------ HDF5 shards
@pytest.fixture(scope="module")
def shard_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("h5") / "cutouts.h5"
    rng = np.random.default_rng(0)
    cs = CutoutSet.from_arrays(rng.normal(size=(6, 2, 4, 4)), bands=["g", "r"])
    cs.to_hdf5(path, shard_size=2)
    return path, cs


def _read_all(path):
    cs = CutoutSet.from_hdf5(path, lazy=True)
    return cs, cs.data


def _delete(path, name):
    with h5py.File(path, "a") as f:
        if name in f:
            del f[name]
        elif name.startswith("@"):
            obj, _, attr = name[1:].rpartition("@")
            target = f[obj] if obj else f
            if attr in target.attrs:
                del target.attrs[attr]


def _set_attr(path, name, value):
    with h5py.File(path, "a") as f:
        f.attrs[name] = value


EDITS = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=16)),
    st.tuples(
        st.just("delete"),
        st.sampled_from(
            [
                "shards",
                "shards/000001",
                "shards/000000/data",
                "shards/000002/table",
                "@@bands",
                "@@image_shape",
                "@@format",
                "@shards/000001@complete",
            ]
        ),
    ),
    st.tuples(
        st.just("attr"),
        st.tuples(
            st.sampled_from(["bands", "image_shape", "meta", "format_version"]),
            st.sampled_from(["[", "{}", "[1, 2]", "x", 3, '["g"]']),
        ),
    ),
    st.tuples(st.just("garbage"), st.binary(max_size=256)),
)


@settings(FUZZ, max_examples=80)
@given(edit=EDITS)
def test_hdf5_shards(tmp_path_factory, shard_file, edit):
    good, original = shard_file
    path = tmp_path_factory.mktemp("h5bad") / "cutouts.h5"
    shutil.copy(good, path)
    kind, arg = edit
    if kind == "truncate":
        os.truncate(path, int(arg * os.path.getsize(path)))
    elif kind == "flip":
        content = bytearray(path.read_bytes())
        for where, value in arg:
            content[int(where * (len(content) - 1))] = value
        path.write_bytes(bytes(content))
    elif kind == "delete":
        _delete(path, arg)
    elif kind == "attr":
        _set_attr(path, *arg)
    else:
        path.write_bytes(arg)
    result = check(f"HDF5 CutoutSet file ({kind})", _read_all, path)
    if result is not None:
        cs, data = result
        # whatever is read is exactly a subset of complete shards of the original: never silently wrong
        rows = original.index_of(cs.ids)
        np.testing.assert_array_equal(data, original.data[rows])
        assert cs.bands == original.bands


# ------------------------------------------------------------------ label store
def _store_current(path):
    store = LabelStore(path)
    try:
        return store.current()
    finally:
        store.close()


@settings(FUZZ, max_examples=40)
@given(
    edit=st.one_of(
        st.tuples(st.just("truncate"), st.floats(0, 1)),
        st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=16)),
        st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=256)),
        st.tuples(
            st.just("schema"),
            st.sampled_from(
                [
                    "CREATE TABLE events (x)",
                    "CREATE TABLE meta (a, b, c)",
                    "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT, label TEXT, time TEXT, "
                    "user TEXT, cycle INTEGER, source TEXT); "
                    "INSERT INTO events VALUES (1, 'a', 'oops', 't', 'u', 0, 'x')",
                ]
            ),
        ),
    )
)
def test_label_store_file(tmp_path_factory, edit):
    path = tmp_path_factory.mktemp("sqlite") / "labels.sqlite"
    kind, arg = edit
    if kind == "schema":
        conn = sqlite3.connect(path)
        conn.executescript(arg)
        conn.close()
    else:
        store = LabelStore(path)
        store.add({f"o{i}": i % 2 for i in range(40)}, user="u", cycle=0)
        store.close()
        for extra in ("-wal", "-shm"):
            # closing the last connection checkpoints the write-ahead log into the database file
            assert not os.path.exists(f"{path}{extra}") or os.path.getsize(f"{path}{extra}") == 0
        if kind == "truncate":
            os.truncate(path, int(arg * os.path.getsize(path)))
        elif kind == "flip":
            content = bytearray(path.read_bytes())
            for where, value in arg:
                content[int(where * (len(content) - 1))] = value
            path.write_bytes(bytes(content))
        else:
            path.write_bytes(arg)
    current = check(f"label store SQLite ({kind})", _store_current, path)
    if current is not None:
        assert all(v in (0, 1) for v in current.values())
        if kind != "schema":
            expected = {f"o{i}": i % 2 for i in range(40)}
            assert all(expected.get(k) == v for k, v in current.items())  # never a wrong label


def test_corrupt_label_store_message(tmp_path):
    path = tmp_path / "labels.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LabelError, match="labels.sqlite"):
        LabelStore(path)


def test_truncated_shard_file_message(tmp_path, shard_file):
    good, _ = shard_file
    path = tmp_path / "c.h5"
    shutil.copy(good, path)
    os.truncate(path, os.path.getsize(path) // 2)
    with pytest.raises(FITSReadError, match="CutoutSet.to_hdf5"):
        _ = CutoutSet.from_hdf5(path).data


# ------------------------------------------------------------------ session workdir files
@settings(FUZZ, max_examples=30)
@given(text=st.one_of(st.text(max_size=40), st.sampled_from(["", "[]", "null", "{", '{"format": 3}', "1e999"])))
def test_session_json(tmp_path_factory, text):
    from anomalymatch_astro.active_learning import ActiveLearningSession

    workdir = tmp_path_factory.mktemp("session")
    (workdir / "session.json").write_text(text)
    cs = CutoutSet.from_arrays(np.zeros((4, 1, 4, 4)))
    check("session workdir session.json", ActiveLearningSession, cs, workdir=workdir)
    check("session workdir session.json (open)", ActiveLearningSession.open, workdir)
