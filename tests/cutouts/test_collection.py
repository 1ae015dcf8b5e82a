"""CutoutSet: construction, selection, HDF5 round trips (sharded, appendable, lazy), band checks."""

import h5py
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.cutouts import concatenate
from anomalymatch_astro.utils.exceptions import (
    BandMismatchError,
    InvalidInputError,
    ReadError,
    UnknownIDError,
    WriteError,
)


@pytest.fixture
def cutouts():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(12, 3, 8, 8)).astype(np.float32)
    coords = SkyCoord(np.linspace(150, 150.1, 12), np.linspace(2, 2.1, 12), unit="deg")
    return CutoutSet.from_arrays(
        data,
        ids=[f"s{i}" for i in range(12)],
        bands=["g", "r", "i"],
        coords=coords,
        table=Table({"truth": np.arange(12) % 2 == 0}),
    )


def test_from_arrays_channels_last_and_single_band():
    nhwc = np.zeros((4, 16, 16, 3))
    assert CutoutSet.from_arrays(nhwc).shape == (4, 3, 16, 16)
    assert CutoutSet.from_arrays(np.zeros((4, 16, 16))).bands == ("band0",)
    with pytest.raises(BandMismatchError, match="2 band names"):
        CutoutSet.from_arrays(np.zeros((4, 3, 8, 8)), bands=["g", "r"])
    with pytest.raises(InvalidInputError, match="unique"):
        CutoutSet.from_arrays(np.zeros((2, 1, 4, 4)), ids=["a", "a"])
    with pytest.raises(InvalidInputError, match="shape"):
        CutoutSet.from_arrays(np.zeros((2, 4)))


def test_selection_by_index_and_id(cutouts):
    assert len(cutouts[2:5]) == 3
    assert cutouts["s3"].ids.tolist() == ["s3"]
    sub = cutouts[["s5", "s1"]]
    np.testing.assert_array_equal(sub.data, cutouts.data[[5, 1]])
    mask = np.zeros(12, bool)
    mask[[0, 11]] = True
    assert cutouts[mask].ids.tolist() == ["s0", "s11"]
    assert cutouts[-1].ids.tolist() == ["s11"]
    with pytest.raises(UnknownIDError, match="nope"):
        cutouts[["s1", "nope"]]
    with pytest.raises(IndexError):
        cutouts[12]


def test_hdf5_round_trip_lazy_and_sharded(cutouts, tmp_path):
    path = tmp_path / "c.h5"
    cutouts.to_hdf5(path, shard_size=5)
    with h5py.File(path) as f:
        assert len(f["shards"]) == 3
    back = CutoutSet.from_hdf5(path)
    assert back.is_lazy and back.bands == ("g", "r", "i")
    np.testing.assert_array_equal(back.data, cutouts.data)
    np.testing.assert_array_equal(back[[11, 0, 6]].data, cutouts.data[[11, 0, 6]])
    assert back.coords.separation(cutouts.coords).max().arcsec < 1e-6
    assert back.table["truth"].tolist() == cutouts.table["truth"].tolist()
    rows = [r for r, _ in back.iter_batches(batch_size=5)]
    assert [len(r) for r in rows] == [5, 5, 2]


def test_hdf5_append_checks(cutouts, tmp_path):
    path = tmp_path / "c.h5"
    cutouts[:6].to_hdf5(path)
    cutouts[6:].to_hdf5(path, mode="a")
    np.testing.assert_array_equal(CutoutSet.from_hdf5(path).data, cutouts.data)
    with pytest.raises(InvalidInputError, match="already in"):
        cutouts[:2].to_hdf5(path, mode="a")
    other = CutoutSet.from_arrays(np.zeros((1, 3, 8, 8)), bands=["r", "g", "i"], ids=["x"])
    with pytest.raises(BandMismatchError, match="band mismatch"):
        other.to_hdf5(path, mode="a")


def test_incomplete_shard_is_not_read(cutouts, tmp_path):
    path = tmp_path / "c.h5"
    cutouts.to_hdf5(path, shard_size=6)
    with h5py.File(path, "a") as f:
        f["shards"]["000001"].attrs["complete"] = False  # as if the writer was killed
    back = CutoutSet.from_hdf5(path)
    assert len(back) == 6


def test_damaged_files(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"garbage" * 100)
    with pytest.raises(ReadError, match="truncated"):
        CutoutSet.from_hdf5(tmp_path / "x.h5")
    with pytest.raises(ReadError, match="does not exist"):
        CutoutSet.from_hdf5(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["a"] = 1
    with pytest.raises(ReadError, match="not an anomalymatch_astro"):
        CutoutSet.from_hdf5(tmp_path / "other.h5")


def test_concatenate_checks_band_order(cutouts):
    both = concatenate([cutouts[:3], cutouts[3:]])
    np.testing.assert_array_equal(both.data, cutouts.data)
    swapped = CutoutSet.from_arrays(np.zeros((1, 3, 8, 8)), bands=["i", "r", "g"], ids=["z"])
    with pytest.raises(BandMismatchError):
        concatenate([cutouts, swapped])


def test_to_table_has_skycoord(cutouts):
    table = cutouts.to_table()
    assert isinstance(table["coord"], SkyCoord)
    assert table.meta["bands"] == ["g", "r", "i"]


def test_write_over_an_existing_file_is_atomic(cutouts, tmp_path, monkeypatch):
    path = tmp_path / "c.h5"
    cutouts[:4].to_hdf5(path)
    before = path.read_bytes()

    from anomalymatch_astro.cutouts import _hdf5

    def fail(table, p, hdf5_path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_hdf5, "_write_table", fail)
    with pytest.raises(WriteError, match="left as it was"):
        cutouts.to_hdf5(path, overwrite=True)
    assert path.read_bytes() == before  # the old file is untouched ...
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.h5"]  # ... and no temporary file is left
    monkeypatch.undo()
    cutouts.to_hdf5(path, overwrite=True)
    np.testing.assert_array_equal(CutoutSet.from_hdf5(path).data, cutouts.data)


def test_a_lazy_set_can_be_written_over_its_own_file(cutouts, tmp_path):
    path = tmp_path / "c.h5"
    cutouts.to_hdf5(path, shard_size=5)
    lazy = CutoutSet.from_hdf5(path)
    lazy[::2].to_hdf5(path, overwrite=True)  # reads the old file while the new one is written beside it
    back = CutoutSet.from_hdf5(path)
    assert back.ids.tolist() == cutouts.ids[::2].tolist()
    np.testing.assert_array_equal(back.data, cutouts.data[::2])


def test_old_lzf_file_layout_still_reads(cutouts, tmp_path):
    """A file written as the format has always been (lzf float32 shards, fletcher32) reads back exactly."""
    path = tmp_path / "c.h5"
    cutouts.to_hdf5(path, compression="lzf", shard_size=7)
    with h5py.File(path) as f:
        assert f.attrs["format"] == "anomalymatch_astro.CutoutSet" and f.attrs["format_version"] == 1
        dset = f["shards"]["000000"]["data"]
        assert dset.compression == "lzf" and dset.fletcher32 and dset.dtype == np.float32
        assert dset.chunks == (1, 3, 8, 8)
    np.testing.assert_array_equal(CutoutSet.from_hdf5(path, lazy=False).data, cutouts.data)
