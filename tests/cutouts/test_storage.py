"""CutoutSet storage layouts: float16, plug-in compressors, chunking, checksums, old files."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.utils.exceptions import InvalidInputError, ReadError

PLUGINS = ("bitshuffle-lz4", "blosc2-lz4", "blosc2-zstd", "zstd")
LAYOUTS = [("float32", "lzf"), ("float16", "lzf"), ("float16", None), ("float32", "gzip")] + [
    (dtype, name) for name in PLUGINS for dtype in ("float16", "float32")
]


def _needs(compression):
    if compression in PLUGINS:
        pytest.importorskip("hdf5plugin")


@pytest.fixture
def cutouts():
    rng = np.random.default_rng(3)
    data = rng.normal(100, 5, size=(70, 2, 9, 7)).astype(np.float32)
    data[3, 1, 2, 2] = np.nan
    data[5, 0, 0, 0] = np.inf
    data[6, 0, 1, 1] = -np.inf
    return CutoutSet.from_arrays(data, ids=[f"c{i}" for i in range(70)], bands=["g", "r"])


@pytest.mark.parametrize(("dtype", "compression"), LAYOUTS)
def test_layouts_round_trip_as_float32(tmp_path, cutouts, dtype, compression):
    _needs(compression)
    path = tmp_path / "c.h5"
    cutouts.to_hdf5(path, dtype=dtype, compression=compression, chunk_rows=16, shard_size=50)
    expected = cutouts.data.astype(dtype).astype(np.float32)
    back = CutoutSet.from_hdf5(path)
    assert back.data.dtype == np.float32
    np.testing.assert_array_equal(back.data, expected)  # NaN and infinities kept
    assert np.isnan(back.data[3, 1, 2, 2]) and back.data[5, 0, 0, 0] == np.inf
    batches = list(back.iter_batches(batch_size=32))
    np.testing.assert_array_equal(np.concatenate([b for _, b in batches]), expected)
    assert all(b.dtype == np.float32 for _, b in batches)
    rows = np.array([60, 2, 49, 50, 2, 17, 69])  # unsorted, repeated, across shards and chunks
    np.testing.assert_array_equal(back[rows].data, expected[rows])
    np.testing.assert_array_equal(back[40:60].data, expected[40:60])
    with h5py.File(path, "r") as f:
        dset = f["shards/000000/data"]
        assert dset.dtype == np.dtype(dtype)
        assert dset.chunks == (16, 2, 9, 7)
        assert dset.fletcher32


def test_default_layout_is_the_original_one(tmp_path, cutouts):
    """Files written with the default options keep the original layout, and read as before."""
    path = tmp_path / "old.h5"
    cutouts.to_hdf5(path)
    with h5py.File(path, "r") as f:
        dset = f["shards/000000/data"]
        assert (dset.dtype, dset.chunks, dset.compression, dset.fletcher32) == (
            np.float32,
            (1, 2, 9, 7),
            "lzf",
            True,
        )
    np.testing.assert_array_equal(CutoutSet.from_hdf5(path).data, cutouts.data)


def test_plugin_default_chunks_and_mixed_appends(tmp_path, cutouts):
    pytest.importorskip("hdf5plugin")
    path = tmp_path / "mixed.h5"
    cutouts[:40].to_hdf5(path)  # the original layout first
    cutouts[40:].to_hdf5(path, mode="a", dtype="float16", compression="bitshuffle-lz4")
    with h5py.File(path, "r") as f:
        assert f["shards/000001/data"].chunks == (30, 2, 9, 7)  # 32 rows, capped by the shard's 30
    back = CutoutSet.from_hdf5(path)
    expected = np.concatenate([cutouts.data[:40], cutouts.data[40:].astype(np.float16).astype(np.float32)])
    np.testing.assert_array_equal(back.data, expected)
    np.testing.assert_array_equal(back[[45, 1, 39, 40]].data, expected[[45, 1, 39, 40]])


@pytest.mark.parametrize(("dtype", "compression"), LAYOUTS)
def test_a_flipped_byte_in_a_chunk_is_a_read_error(tmp_path, cutouts, dtype, compression):
    _needs(compression)
    path = tmp_path / "c.h5"
    cutouts.to_hdf5(path, dtype=dtype, compression=compression, chunk_rows=8)
    with h5py.File(path, "r") as f:
        info = f["shards/000000/data"].id.get_chunk_info(2)  # rows 16-23
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x10]))
    back = CutoutSet.from_hdf5(path)  # the header is intact: it opens
    np.testing.assert_array_equal(back[:16].data, cutouts.data[:16].astype(dtype).astype(np.float32))
    with pytest.raises(ReadError, match="damaged"):
        _ = back[16:24].data
    with pytest.raises(ReadError, match="damaged"):
        _ = back[[20, 3]].data


def test_float16_range(tmp_path, cutouts):
    data = cutouts.data.copy()
    data[7, 1, 4, 4] = 1e6
    with pytest.raises(InvalidInputError, match="float16 range"):
        CutoutSet.from_arrays(data).to_hdf5(tmp_path / "big.h5", dtype="float16")
    assert len(CutoutSet.from_hdf5(tmp_path / "big.h5")) == 0  # refused before its first shard was written
    CutoutSet.from_arrays(data).to_hdf5(tmp_path / "big32.h5", dtype=np.float32)  # float32 keeps it
    assert CutoutSet.from_hdf5(tmp_path / "big32.h5").data[7, 1, 4, 4] == 1e6
    tiny = CutoutSet.from_arrays(cutouts.data * 1e-7)
    with pytest.warns(UserWarning, match="lose precision"):
        tiny.to_hdf5(tmp_path / "tiny.h5", dtype="float16")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dtype": "float64"}, "dtype must be"),
        ({"dtype": "source"}, "dtype must be"),
        ({"dtype": np.int16}, "dtype must be"),
        ({"compression": "snappy"}, "compression must be"),
        ({"chunk_rows": 0}, "chunk_rows"),
        ({"chunk_rows": 2.5}, "chunk_rows"),
    ],
)
def test_bad_layout_options(tmp_path, cutouts, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        cutouts.to_hdf5(tmp_path / "x.h5", **kwargs)
    assert not (tmp_path / "x.h5").exists()


def test_plugin_file_reads_in_a_fresh_process(tmp_path, cutouts):
    """A reader that never imported hdf5plugin (a spawned loader worker) still decompresses."""
    pytest.importorskip("hdf5plugin")
    path = tmp_path / "c.h5"
    cutouts.to_hdf5(path, dtype="float16", compression="blosc2-lz4")
    script = (
        "import sys, numpy as np\n"
        "from anomalymatch_astro.cutouts import CutoutSet\n"
        "assert 'hdf5plugin' not in sys.modules\n"
        "x = CutoutSet.from_hdf5(sys.argv[1])[:20].data\n"
        "print(float(np.sum(x[np.isfinite(x)])))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    part = cutouts[:20].data.astype(np.float16).astype(np.float32)
    assert float(out.stdout) == pytest.approx(float(np.sum(part[np.isfinite(part)])))


def test_large_casts_give_numpy_bits():
    """The vectorised (torch) casts of large arrays give exactly numpy's float16 <-> float32 results."""
    from anomalymatch_astro.cutouts._layout import _TORCH_CAST_MIN, cast_into

    rng = np.random.default_rng(5)
    n = 2 * _TORCH_CAST_MIN
    # magnitudes over float16's whole range: subnormals, normals, beyond its largest
    values = (rng.uniform(-1, 1, n) * 10 ** rng.uniform(-9, 5.5, n)).astype(np.float32)
    values[:8] = [65504, 65519.99, 65520, -70000, 6e-8, 2.9e-8, np.nan, -np.inf]
    values[8:1000] = rng.normal(100, 5, size=992)
    down = np.empty(n, np.float16)
    cast_into(down, values)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(down.view(np.uint16)[6:], values.astype(np.float16).view(np.uint16)[6:])
        assert np.isnan(down[6]) and down[7] == -np.inf
    halves = rng.integers(0, 2**16, size=n, dtype=np.uint32).astype(np.uint16).view(np.float16)
    up = np.empty(n, np.float32)
    cast_into(up, halves)
    np.testing.assert_array_equal(up, halves.astype(np.float32))  # NaN payloads aside, the same values
