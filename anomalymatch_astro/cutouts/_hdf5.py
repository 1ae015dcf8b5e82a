"""The HDF5 file format of a `CutoutSet`: shards, checksums, lazy reading.

A CutoutSet file is a set of shards, so that it can be appended to while it is
produced and read back lazily in bounded memory::

    /                 attrs: format, format_version, bands (JSON), image_shape, meta (JSON)
    /shards/000000/   data (n, C, H, W) float32 or float16, chunks of ``chunk_rows`` whole cutouts
                      (one by default), compressed, fletcher32;
                      table (the n metadata rows, astropy's HDF5 table format);
                      attrs: table_sha256, complete

A shard counts only once its ``complete`` attribute is set, so a write that stops
half-way leaves the shards before it readable.  Every shard has its own storage layout
(dtype, compression, chunking: ``_layout``), so shards appended with other options
read alike; pixels always read back as float32.  The fletcher32 checksum runs after the
compressor, whichever it is, so a flipped bit in any chunk fails to read.
"""

import errno
import hashlib
import json
import logging
import os
import shutil

import h5py
import numpy as np
from astropy.table import QTable, Table, vstack

from ..utils import atomic_path, check_declared_size, loads_json
from ..utils.exceptions import AnomalyMatchError, ReadError, WriteError
from ._layout import cast_into, check_filters, load_plugins, to_float32, to_storage

__all__ = ["ShardedFile", "write_file", "write_shards"]

log = logging.getLogger(__name__)

_FORMAT = "anomalymatch_astro.CutoutSet"
_FORMAT_VERSION = 1

#: Largest cutout (all bands) accepted from a file: larger ones are a damaged or hostile header.
MAX_CUTOUT_BYTES = 1 << 30

#: Most declared bytes per stored byte of a compressed dataset (gzip's best ratio is about 1,030).
_MAX_RATIO = 1100


class ShardedFile:
    """Lazy reader of an HDF5 CutoutSet file (opened per read; safe across processes)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            self._size = os.path.getsize(self.path)
            with h5py.File(self.path, "r") as f:
                if _attr(f, "format", self._size, default="") != _FORMAT:
                    msg = (
                        f"{self.path!r} is not an anomalymatch_astro CutoutSet file "
                        f"(format attribute {f.attrs.get('format')!r})"
                    )
                    raise ReadError(msg)
                self._read_attrs(f)
                names = sorted(f["shards"].keys()) if "shards" in f else []
                self._plugins = False
                self.shard_names = []
                self.shard_sizes = []
                for name in names:
                    grp = f["shards"][name]
                    if "data" not in grp or "table" not in grp or not grp.attrs.get("complete", False):
                        log.warning("skipping incomplete shard %s in %s", name, self.path)
                        continue
                    shape = grp["data"].shape
                    if len(shape) != 4 or shape[1:] != (len(self.bands),) + self.image_shape:
                        msg = f"shard {name} has data of shape {shape}, not the file's (n, C, H, W)"
                        raise ValueError(msg)
                    if grp["data"].dtype not in (np.float32, np.float16):
                        msg = f"shard {name} has pixels of dtype {grp['data'].dtype}, not float32 or float16"
                        raise ValueError(msg)
                    self._plugins = check_filters(grp["data"], f"{self.path!r}: shard {name}") or self._plugins
                    for key in grp:  # declared sizes against the file's size, before anything is read
                        _check_stored(grp[key], self._size, f"{self.path!r}: shard {name}/{key}")
                    if "table_sha256" in grp.attrs and grp.attrs["table_sha256"] != _table_digest(grp):
                        msg = f"the metadata table of shard {name} does not match its checksum"
                        raise ValueError(msg)
                    if not _all_chunks_stored(grp["data"]):
                        # whole cutouts per chunk: a missing chunk would silently read as zeros
                        msg = f"shard {name} lacks pixel chunks (its chunk index is damaged)"
                        raise ValueError(msg)
                    self.shard_names.append(name)
                    self.shard_sizes.append(grp["data"].shape[0])
        except ReadError:
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:  # h5py: all of these
            msg = (
                f"could not read CutoutSet file {self.path!r}: {exc}. The file may be truncated "
                "or not an HDF5 file; re-create it with CutoutSet.to_hdf5"
            )
            raise ReadError(msg) from exc
        self.offsets = np.concatenate([[0], np.cumsum(self.shard_sizes)]).astype(np.int64)

    def _read_attrs(self, f):
        """The file's bands, image shape and meta, each checked (declared sizes, JSON limits, plausibility)."""
        self.bands = tuple(loads_json(_attr(f, "bands", self._size), source="the bands attribute"))
        self.image_shape = tuple(int(x) for x in _attr(f, "image_shape", self._size))
        self.meta = loads_json(_attr(f, "meta", self._size, default="{}"), source="the meta attribute")
        if (
            not self.bands
            or not all(isinstance(b, str) for b in self.bands)
            or len(self.image_shape) != 2
            or min(self.image_shape) < 1
            or not isinstance(self.meta, dict)
        ):
            msg = "its bands, image_shape or meta attributes are malformed"
            raise ValueError(msg)
        per_cutout = 4 * len(self.bands) * self.image_shape[0] * self.image_shape[1]  # Python ints: no overflow
        if per_cutout > MAX_CUTOUT_BYTES:
            msg = (
                f"{self.path!r} declares cutouts of {len(self.bands)} x {self.image_shape} pixels "
                f"({per_cutout} bytes each, over the limit of {MAX_CUTOUT_BYTES}); its header is damaged"
            )
            raise ReadError(msg)

    def __len__(self):
        return int(self.offsets[-1])

    def _damaged(self, exc):
        msg = (
            f"could not read CutoutSet file {self.path!r}: {type(exc).__name__}: {exc}. The file is "
            "damaged (truncated or changed since it was opened); re-create it with CutoutSet.to_hdf5"
        )
        return ReadError(msg)

    def read_table(self):
        tables = []
        for name in self.shard_names:
            try:
                tables.append(QTable.read(self.path, format="hdf5", path=f"shards/{name}/table"))
            except Exception as exc:  # noqa: BLE001 -- astropy's HDF5 reader raises many kinds
                raise self._damaged(exc) from exc
        if not tables:
            return QTable({"id": np.array([], dtype=str)})
        table = QTable(vstack(tables, metadata_conflicts="silent")) if len(tables) > 1 else tables[0]
        return _decode_ids(table, self.path)

    def read(self, index):
        """Read rows ``index`` (sorted or not) as an (n, C, H, W) float32 array."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index),) + (len(self.bands),) + self.image_shape, dtype=np.float32)
        if len(index) == 0:
            return out
        order = np.argsort(index, kind="stable")
        sorted_idx = index[order]
        shard_of = np.searchsorted(self.offsets, sorted_idx, side="right") - 1
        if self._plugins:
            load_plugins()  # in every process that reads (loader workers are spawned without it)
        try:
            self._read_into(out, order, sorted_idx, shard_of)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:  # incl. fletcher32 checksum errors
            raise self._damaged(exc) from exc
        return out

    def _read_into(self, out, order, sorted_idx, shard_of):
        with h5py.File(self.path, "r") as f:
            for s in np.unique(shard_of):
                sel = np.flatnonzero(shard_of == s)
                local = sorted_idx[sel] - self.offsets[s]
                dest = order[sel]
                dset = f["shards"][self.shard_names[s]]["data"]
                lo, hi = int(local[0]), int(local[-1]) + 1  # local is sorted
                if hi - lo == len(local) and dest[-1] - dest[0] + 1 == len(dest) and np.all(np.diff(dest) == 1):
                    # rows in order, as iter_batches and the loaders read them: straight into ``out``
                    _read_slab(dset, lo, hi, out[dest[0] : dest[-1] + 1])
                elif hi - lo <= 4 * len(local):  # contiguous-ish: one slab read
                    block = dset[lo:hi]
                    out[dest] = to_float32(block[local - lo])
                else:
                    uniq, inv = np.unique(local, return_inverse=True)
                    out[dest] = to_float32(dset[uniq])[inv]


def _read_slab(dset, lo, hi, out):
    """Read rows ``lo:hi`` of ``dset`` into the float32 array ``out``."""
    if dset.dtype == np.float32:
        dset.read_direct(out, np.s_[lo:hi])
    else:
        buf = np.empty(out.shape, dtype=dset.dtype)
        dset.read_direct(buf, np.s_[lo:hi])
        cast_into(out, buf)


def write_file(cutouts, path, *, mode, shard_size, layout):
    """`write_shards` with `CutoutSet.to_hdf5`'s guarantees.

    An existing file (``mode="w"``) is replaced only once the new one is complete; a failure
    is a `WriteError` saying what is left.
    """
    replace = mode == "w" and os.path.exists(path)
    try:
        if replace:
            with atomic_path(path) as tmp:
                write_shards(cutouts, tmp, mode=mode, shard_size=shard_size, layout=layout)
        else:
            write_shards(cutouts, path, mode=mode, shard_size=shard_size, layout=layout)
    except AnomalyMatchError:
        raise
    except OSError as exc:  # h5py and astropy report ENOSPC, EACCES, EROFS... as OSError
        kept = (
            f"{path!r} is left as it was"
            if replace
            else "shards written before the failure stay readable; the one being written is not "
            "marked complete and is skipped on read"
        )
        msg = (
            f"could not write the CutoutSet file {path!r} ({type(exc).__name__}: {exc}); check that "
            f"its folder exists and is writable and that the disk has room, then write again ({kept})"
        )
        raise WriteError(msg) from exc


def write_shards(cutouts, path, *, mode, shard_size, layout):
    """Write ``cutouts`` to ``path`` as new shards (``mode="w"`` starts the file, ``"a"`` appends).

    ``layout`` is a `~anomalymatch_astro.cutouts._layout.storage_layout`.
    """
    n = len(cutouts)
    per_cutout = layout["dtype"].itemsize * len(cutouts.bands) * int(np.prod(cutouts.image_shape))
    _check_room(path, per_cutout * min(n, shard_size))
    with h5py.File(path, mode) as f:
        if mode == "w" or "format" not in f.attrs:
            f.attrs["format"] = _FORMAT
            f.attrs["format_version"] = _FORMAT_VERSION
            f.attrs["bands"] = json.dumps(list(cutouts.bands))
            f.attrs["image_shape"] = np.asarray(cutouts.image_shape, dtype=np.int64)
            f.attrs["meta"] = json.dumps(_jsonable(cutouts.meta))
        shards = f.require_group("shards")
        start_shard = len(shards.keys())
    for k, start in enumerate(range(0, n, shard_size)):
        rows = np.arange(start, min(start + shard_size, n))
        name = f"{start_shard + k:06d}"
        _check_room(path, per_cutout * len(rows))
        part = cutouts[rows] if len(rows) < n else cutouts
        data = to_storage(part.data, layout["dtype"])
        with h5py.File(path, "a") as f:
            grp = f["shards"].create_group(name)
            chunk = (min(layout["chunk_rows"], len(rows)), len(cutouts.bands)) + cutouts.image_shape
            grp.create_dataset("data", data=data, chunks=chunk, **layout["filters"])
        _write_table(part.table, path, f"shards/{name}/table")
        with h5py.File(path, "a") as f:
            f["shards"][name].attrs["table_sha256"] = _table_digest(f["shards"][name])
            f["shards"][name].attrs["complete"] = True


def _table_digest(group):
    """sha256 of the raw bytes of a shard's metadata table and column metadata (HDF5 has no checksums)."""
    h = hashlib.sha256()
    for name in sorted(group.keys()):
        if name.startswith("table"):
            h.update(name.encode())
            raw = np.asarray(group[name][()])
            h.update(repr(raw.tolist()).encode() if raw.dtype.hasobject else raw.tobytes())
    return h.hexdigest()


def _all_chunks_stored(dset):
    """True unless a dataset written in chunks of whole cutouts is known to lack chunks.

    HDF5 reads a chunk missing from the index as the fill value (zeros), silently; the
    pixels of stored chunks are checked by the fletcher32 filter on read.  The count of
    stored chunks is compared first, so a header declaring 10^9 rows over a few stored
    chunks is refused at once, in bounded memory.
    """
    if dset.chunks is None or tuple(dset.chunks[1:]) != tuple(dset.shape[1:]):
        return True
    n, rows = dset.shape[0], dset.chunks[0]
    expected = -(-n // rows)
    try:
        if dset.id.get_num_chunks() != expected:
            return False
        seen = np.zeros(expected, dtype=bool)  # now the number of stored chunks: bounded by the file's size
        bad = []

        def visit(info):
            row = info.chunk_offset[0]
            if any(info.chunk_offset[1:]) or not 0 <= row < n or row % rows:
                bad.append(row)
            else:
                seen[row // rows] = True

        if hasattr(dset.id, "chunk_iter"):
            dset.id.chunk_iter(visit)
        else:
            for k in range(expected):
                visit(dset.id.get_chunk_info(k))
    except (AttributeError, NotImplementedError):  # an HDF5 without chunk queries: cannot tell
        return True
    return not bad and bool(seen.all())


def _declared_bytes(shape, dtype):
    nbytes = int(dtype.itemsize)
    for n in shape:
        nbytes *= int(n)  # Python ints: no overflow
    return nbytes


def _check_stored(dset, file_size, source):
    """Refuse a dataset that declares more bytes than the file can hold (`ReadError`).

    Contiguous data must fit in the file; chunked data must fit in its stored chunks,
    expanded by at most the best ratio of any compression filter.
    """
    if not isinstance(dset, h5py.Dataset):
        return
    declared = _declared_bytes(dset.shape or (), dset.dtype)
    if dset.chunks is None:
        available = file_size
    elif _known_filters(dset):
        available = _MAX_RATIO * int(dset.id.get_storage_size()) + (1 << 20)
    else:  # a plug-in compressor (blosc, zstd...) of unknown best ratio: the chunk count bounds the pixels
        return
    check_declared_size(declared, available, source=source)


def _known_filters(dset):
    """True when every filter of a chunked dataset is one whose best compression ratio is known."""
    plist = dset.id.get_create_plist()
    # deflate (gzip), shuffle, fletcher32, szip, lzf
    return all(plist.get_filter(i)[0] in (1, 2, 3, 4, 32000) for i in range(plist.get_nfilters()))


def _attr(obj, name, file_size, default=None):
    """An HDF5 attribute, refused (`ReadError`) when it declares more bytes than the file holds."""
    if name not in obj.attrs:
        if default is not None:
            return default
        raise KeyError(name)
    aid = h5py.h5a.open(obj.id, name.encode())
    declared = _declared_bytes(aid.shape or (), aid.dtype)
    check_declared_size(declared, file_size, source=f"the attribute {name!r}", what="values")
    return obj.attrs[name]


def _decode_ids(table, path):
    """Ids as str: astropy stores text as UTF-8 bytes (old files too), so decode them as UTF-8."""
    if "id" in table.colnames and table["id"].dtype.kind == "S":
        try:
            table["id"] = np.char.decode(np.asarray(table["id"]), "utf-8")
        except UnicodeDecodeError as exc:
            msg = f"the ids in {path!r} are not UTF-8 text ({exc}); re-create it with CutoutSet.to_hdf5"
            raise ReadError(msg) from exc
    return table


def _check_room(path, nbytes):
    """Raise ENOSPC before writing ``nbytes`` of pixels (plus HDF5 and table overhead) to a full disk.

    HDF5 does not recover from a write that fails for lack of space (h5py can even crash
    while closing the file), so the space is checked before each shard is written.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return  # h5py reports the missing folder
    free = shutil.disk_usage(folder).free
    needed = int(nbytes * 1.05) + 256 * 1024
    if free < needed:
        raise OSError(
            errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: {free} bytes free in {folder!r}, a shard needs about {needed}"
        )


def _jsonable(meta):
    try:
        json.dumps(meta)
        return meta
    except TypeError:
        return {
            k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v))
            for k, v in meta.items()
        }


def _write_table(table, path, hdf5_path):
    table = Table(table, copy=False) if not isinstance(table, Table) else table
    table.write(path, format="hdf5", path=hdf5_path, append=True, serialize_meta=True)
