"""Storage layouts of CutoutSet pixels: dtype, compressor, chunking, float16 casts, plug-in filters.

The pixels of a shard are stored as float32 or float16, compressed by one of h5py's own
filters or by a plug-in of ``hdf5plugin`` (loaded on demand, in every process that reads),
in chunks of whole cutouts along the batch axis, always with a fletcher32 checksum.  They
read back as float32 whatever the layout.
"""

import warnings

import h5py
import numpy as np

from ..utils.exceptions import InvalidInputError, ReadError

__all__ = [
    "COMPRESSIONS",
    "STORAGE_DTYPES",
    "cast_into",
    "check_filters",
    "load_plugins",
    "storage_layout",
    "to_float32",
    "to_storage",
]

#: Storage dtypes of the pixels (they always read back as float32).
STORAGE_DTYPES = ("float32", "float16")

#: Compressors: h5py's own, then the plug-ins of ``hdf5plugin`` (byte or bit shuffle first).
COMPRESSIONS = (None, "lzf", "gzip", "bitshuffle-lz4", "blosc2-lz4", "blosc2-zstd", "zstd")

#: Cutouts per chunk of the plug-in compressors when ``chunk_rows`` is not given.
_PLUGIN_CHUNK_ROWS = 32

#: HDF5 filters built into every HDF5 / h5py: deflate (gzip), shuffle, fletcher32, szip, nbit, scaleoffset, lzf.
_BUILTIN_FILTERS = (1, 2, 3, 4, 5, 6, 32000)

#: Pixels from which float16 <-> float32 casts run in torch (its import costs about a second, once).
_TORCH_CAST_MIN = 1 << 16

#: Largest finite float16; values beyond it would be stored as infinities.
_FLOAT16_MAX = float(np.finfo(np.float16).max)

#: Below this largest magnitude most pixels of a set fall in float16's subnormals (precision lost).
_FLOAT16_SMALL = 100 * float(np.finfo(np.float16).smallest_normal)


def to_float32(block):
    """``block`` as a float32 array (itself when it is one)."""
    if block.dtype == np.float32:
        return block
    out = np.empty(block.shape, dtype=np.float32)
    cast_into(out, block)
    return out


def cast_into(out, src):
    """``out[...] = src`` between float32 and float16 (exact upcast; round-to-nearest-even down).

    torch's vectorised cast is many times faster than numpy's and HDF5's on large arrays
    (docs/benchmarks.rst); both give the same bits.
    """
    if src.size >= _TORCH_CAST_MIN and src.flags.writeable and out.flags.c_contiguous:
        import torch

        torch.from_numpy(out).copy_(torch.from_numpy(src))
    else:
        with np.errstate(over="ignore"):  # overflows are reported by the writer, with their count
            np.copyto(out, src, casting="unsafe")


def storage_layout(*, dtype="float32", compression="lzf", chunk_rows=None):
    """The checked ``create_dataset`` options of one storage layout (see `CutoutSet.to_hdf5`).

    Returns a dict: ``dtype`` (a numpy dtype), ``filters`` (keyword arguments of h5py's
    ``create_dataset``, fletcher32 included) and ``chunk_rows``.
    """
    try:
        dtype = np.dtype(dtype).name  # "float16", np.float16 and np.dtype("f2") alike
    except TypeError:
        pass
    if dtype not in STORAGE_DTYPES:
        msg = f"dtype must be one of {STORAGE_DTYPES}, got {dtype!r}"
        raise InvalidInputError(msg)
    if compression not in COMPRESSIONS:
        msg = f"compression must be one of {COMPRESSIONS}, got {compression!r}"
        raise InvalidInputError(msg)
    plugin = compression not in (None, "lzf", "gzip")
    if chunk_rows is None:
        chunk_rows = _PLUGIN_CHUNK_ROWS if plugin else 1
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        msg = f"chunk_rows must be a positive integer, got {chunk_rows!r}"
        raise InvalidInputError(msg)
    if not plugin:
        filters = {} if compression is None else {"compression": compression}
    else:
        filters = _plugin_filter(compression)
    # fletcher32: a checksum per chunk, computed after the compressor, so damaged pixels fail to read
    filters["fletcher32"] = True
    return {"dtype": np.dtype(dtype), "filters": filters, "chunk_rows": int(chunk_rows)}


def _plugin_filter(name):
    plugins = load_plugins()
    if plugins is None:
        msg = (
            f"compression={name!r} needs the hdf5plugin package: pip install 'anomalymatch_astro[storage]' "
            "(or pip install hdf5plugin)"
        )
        raise InvalidInputError(msg)
    if name == "bitshuffle-lz4":
        return dict(plugins.Bitshuffle(cname="lz4"))
    if name == "zstd":
        return {"shuffle": True, **plugins.Zstd(clevel=1)}  # h5py's byte shuffle runs before the compressor
    cname = name.split("-")[1]
    return dict(plugins.Blosc2(cname=cname, clevel=5 if cname == "lz4" else 1, filters=plugins.Blosc2.SHUFFLE))


def load_plugins():
    """Register ``hdf5plugin``'s filters with HDF5 (once per process); None when it is not installed."""
    try:
        import hdf5plugin
    except ImportError:
        return None
    return hdf5plugin


def check_filters(dset, source):
    """True when ``dset`` needs plug-in filters (loaded here); `ReadError` when one is not available."""
    plist = dset.id.get_create_plist()
    ids = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    needed = [i for i in ids if i not in _BUILTIN_FILTERS]
    if needed:
        load_plugins()
        missing = [i for i in needed if not h5py.h5z.filter_avail(i)]
        if missing:
            msg = (
                f"{source} is compressed with the HDF5 filter(s) {missing}, which this Python cannot decompress; "
                "install hdf5plugin (pip install 'anomalymatch_astro[storage]') and open it again"
            )
            raise ReadError(msg)
    return bool(needed)


def to_storage(data, dtype):
    """``data`` (float32) as stored: float16 refused beyond its range (`InvalidInputError`), NaN kept."""
    if dtype == np.float32:
        return data
    stored = np.empty(data.shape, dtype=dtype)
    cast_into(stored, data)
    flat = data.reshape(-1)  # the range from float32 reductions (vectorised; float16's are not)
    peak = max(abs(float(np.fmax.reduce(flat, initial=0))), abs(float(np.fmin.reduce(flat, initial=0))))
    if not peak < _FLOAT16_MAX:  # beyond float16, or infinities in the data (NaN is skipped by fmax/fmin)
        over = np.isinf(stored) & np.isfinite(data)
        if over.any():
            msg = (
                f"{int(over.sum())} pixel value(s) are beyond the float16 range (|x| > {_FLOAT16_MAX:g}; largest "
                f"{float(np.abs(data[over]).max()):.6g}); write with dtype='float32' or rescale the cutouts"
            )
            raise InvalidInputError(msg)
        peak = float(np.abs(data[np.isfinite(data)]).max(initial=0))
    if 0 < peak < _FLOAT16_SMALL:
        warnings.warn(
            f"the largest pixel value is {peak:.3g}: float16 keeps 3 significant digits only above "
            f"{float(np.finfo(np.float16).smallest_normal):.3g}, so most pixels lose precision; write with "
            "dtype='float32' or rescale the cutouts",
            stacklevel=4,
        )
    return stored
