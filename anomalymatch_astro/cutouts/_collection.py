"""`CutoutSet`: N multi-band cutouts with ids, named bands, sky positions and metadata.

Pixels are float32 in an array of shape (N, C, H, W) with C the named bands, in
the order given by `CutoutSet.bands`.  The metadata is a `~astropy.table.QTable`
with one row per cutout (``id``, ``ra``, ``dec`` and whatever else the producer
recorded: overlap flags, NaN counts, each cutout's WCS header, truth columns...).

On disk a CutoutSet is an HDF5 file of shards (the format is in ``_hdf5``), so that
it can be appended to while it is produced and read back lazily in bounded memory.
"""

import logging
import os
from collections.abc import Iterable

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable, Table, vstack

from ..utils.exceptions import (
    BandMismatchError,
    InvalidInputError,
    OutputExistsError,
    ReadError,
    UnknownIDError,
)
from ._hdf5 import ShardedFile, write_file
from ._layout import storage_layout
from ._validation import _as_nchw, _check_bands, _check_ids
from ._wcs import cutout_wcs

__all__ = ["CutoutSet", "concatenate"]

log = logging.getLogger(__name__)


class CutoutSet:
    """N multi-band cutouts: float32 pixels (N, C, H, W), ids, named bands, sky positions, metadata.

    Build one with `CutoutSet.from_arrays`, `CutoutSet.from_hdf5` or
    `~anomalymatch_astro.make_cutouts` rather than calling the constructor.

    Parameters
    ----------
    data : `numpy.ndarray` or None
        Pixels, shape (N, C, H, W), float32.  None for a lazy set backed by ``source``.
    table : `~astropy.table.QTable`
        One row per cutout with at least the column ``id``.
    bands : tuple of str
        The band names, in channel order.
    meta : dict, optional
        Provenance (e.g. how the cutouts were made).
    source : ShardedFile, optional
        Lazy HDF5 backing store.
    index : `numpy.ndarray`, optional
        Rows of ``source`` that this set views.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro import CutoutSet
    >>> cs = CutoutSet.from_arrays(np.zeros((3, 2, 8, 8)), bands=["g", "r"], ids=["a", "b", "c"])
    >>> len(cs), cs.bands, cs.shape
    (3, ('g', 'r'), (3, 2, 8, 8))
    >>> cs["b"].ids.tolist()
    ['b']
    """

    def __init__(self, data, table, bands, *, meta=None, source=None, index=None):
        self._data = data
        self._table = table
        self._bands = tuple(bands)
        self.meta = dict(meta or {})
        self._source = source
        self._index = index
        self._id_to_row = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(cls, data, *, ids=None, bands=None, coords=None, table=None, meta=None, channel_axis=None):
        """Make a CutoutSet from an array of pixels.

        Parameters
        ----------
        data : array-like
            Shape (N, C, H, W), (N, H, W, C) or (N, H, W); converted to float32.
            Channels-last is recognised when the band count or the image shape makes it
            unambiguous; pass ``channel_axis`` otherwise.
        ids : sequence of str, optional
            Unique object ids (default ``obj0 ... objN-1``).
        bands : sequence of str, optional
            Band names in channel order (default ``band0 ...``).
        coords : `~astropy.coordinates.SkyCoord`, optional
            Sky position of each cutout centre.
        table : `~astropy.table.Table`, optional
            Extra per-object columns (e.g. truth labels), N rows.
        meta : dict, optional
            Provenance to keep with the set.
        channel_axis : {1, -1}, optional
            Where the channel axis is in ``data``.

        Returns
        -------
        CutoutSet
        """
        data = _as_nchw(data, bands, channel_axis)
        data = np.ascontiguousarray(data, dtype=np.float32)
        n = data.shape[0]
        bands = _check_bands(bands, data.shape[1])
        ids = _check_ids(ids, n)
        out = QTable()
        out["id"] = ids
        if coords is not None:
            coords = coords if isinstance(coords, SkyCoord) else SkyCoord(coords)
            if coords.isscalar or len(coords) != n:
                msg = f"coords must have one position per cutout ({n}), got {1 if coords.isscalar else len(coords)}"
                raise InvalidInputError(msg)
            icrs = coords.icrs
            out["ra"] = icrs.ra.to(u.deg)
            out["dec"] = icrs.dec.to(u.deg)
        if table is not None:
            if len(table) != n:
                msg = f"table has {len(table)} rows for {n} cutouts"
                raise InvalidInputError(msg)
            for name in table.colnames:
                if name in ("id",) or (name in ("ra", "dec") and name in out.colnames):
                    continue
                out[name] = table[name]
        return cls(data, out, bands, meta=meta)

    @classmethod
    def from_hdf5(cls, path, *, lazy=True):
        """Open a CutoutSet written by `to_hdf5`.

        Parameters
        ----------
        path : str or os.PathLike
            The HDF5 file.
        lazy : bool, optional
            If true (default), pixels stay on disk and are read on demand
            (`iter_batches`, slicing), so memory stays bounded.

        Returns
        -------
        CutoutSet
        """
        if not os.path.exists(path):
            msg = f"CutoutSet file {os.fspath(path)!r} does not exist"
            raise ReadError(msg)
        source = ShardedFile(path)
        table = source.read_table()
        if len(table) != len(source) or "id" not in table.colnames:
            msg = (
                f"{os.fspath(path)!r}: {len(table)} metadata rows (columns {table.colnames[:5]}) for "
                f"{len(source)} cutouts; the file is damaged: re-create it with CutoutSet.to_hdf5"
            )
            raise ReadError(msg)
        cs = cls(
            None, table, source.bands, meta=source.meta, source=source, index=np.arange(len(source), dtype=np.int64)
        )
        if not lazy:
            cs._data = cs.data
            cs._source = None
            cs._index = None
        return cs

    # ------------------------------------------------------------------ properties
    @property
    def bands(self):
        """Band names, in channel order (tuple of str)."""
        return self._bands

    @property
    def band_flux_scales(self):
        """Per-band factors that put the bands on one flux scale, or None when unknown.

        Taken from the images' zero points by `~anomalymatch_astro.make_cutouts` (see
        `~anomalymatch_astro.normalization.band_flux_scales`); the colour composites apply them.
        """
        scales = self.meta.get("band_flux_scales")
        if not isinstance(scales, dict) or any(band not in scales for band in self._bands):
            return None
        return np.array([scales[band] for band in self._bands], dtype=np.float64)

    @property
    def ids(self):
        """Object ids (`numpy.ndarray` of str)."""
        return np.asarray(self._table["id"]).astype(str)

    @property
    def table(self):
        """The per-object metadata (`~astropy.table.QTable`, one row per cutout)."""
        return self._table

    @property
    def coords(self):
        """Sky positions (`~astropy.coordinates.SkyCoord`), or None when unknown."""
        if "ra" not in self._table.colnames or "dec" not in self._table.colnames:
            return None
        return SkyCoord(self._table["ra"], self._table["dec"], frame="icrs")

    @property
    def image_shape(self):
        """(H, W) of every cutout."""
        if self._data is not None:
            return tuple(self._data.shape[2:])
        return tuple(self._source.image_shape)

    @property
    def shape(self):
        """(N, C, H, W)."""
        return (len(self), len(self._bands)) + self.image_shape

    @property
    def path(self):
        """The HDF5 file this set reads its pixels from, or None for an in-memory set."""
        return None if self._source is None else self._source.path

    @property
    def is_lazy(self):
        """True when pixels are read from disk on demand."""
        return self._data is None

    @property
    def data(self):
        """All pixels as a float32 array (N, C, H, W); for a lazy set this reads them all."""
        if self._data is not None:
            return self._data
        return self._source.read(self._index)

    def __len__(self):
        return len(self._table)

    def __repr__(self):
        where = f", lazy from {self._source.path!r}" if self.is_lazy else ""
        return f"<CutoutSet: {len(self)} cutouts, bands={list(self._bands)}, image_shape={self.image_shape}{where}>"

    # ------------------------------------------------------------------ selection
    def index_of(self, ids):
        """Row numbers of ``ids`` (`~anomalymatch_astro.utils.exceptions.UnknownIDError` lists unknown ids)."""
        if self._id_to_row is None:
            self._id_to_row = {obj_id: i for i, obj_id in enumerate(self.ids)}
        if isinstance(ids, str):
            ids = [ids]
        ids = [str(i) for i in ids]
        missing = [i for i in ids if i not in self._id_to_row]
        if missing:
            msg = f"{len(missing)} id(s) are not in this CutoutSet: {missing[:10]}"
            raise UnknownIDError(msg, ids=missing)
        return np.array([self._id_to_row[i] for i in ids], dtype=np.int64)

    def __getitem__(self, item):
        """Select cutouts by position (int, slice, int array, boolean mask) or by id (str, list of str)."""
        if isinstance(item, str) or (
            isinstance(item, (list, tuple, np.ndarray))
            and len(item) > 0
            and isinstance(np.asarray(item).flat[0], (str, np.str_))
        ):
            rows = self.index_of(item)
        elif isinstance(item, (int, np.integer)):
            n = len(self)
            if not -n <= item < n:
                msg = f"index {item} is out of range for a CutoutSet of {n} cutouts"
                raise IndexError(msg)
            rows = np.array([item % n])
        elif isinstance(item, slice):
            rows = np.arange(len(self))[item]
        else:
            arr = np.asarray(item)
            if arr.dtype == bool:
                if arr.shape != (len(self),):
                    msg = f"boolean mask of shape {arr.shape} for {len(self)} cutouts"
                    raise IndexError(msg)
                rows = np.flatnonzero(arr)
            elif arr.size == 0:
                rows = np.array([], dtype=np.int64)
            elif arr.dtype.kind in "iu":
                rows = arr.astype(np.int64)
                if rows.min() < -len(self) or rows.max() >= len(self):
                    msg = f"indices out of range for a CutoutSet of {len(self)} cutouts"
                    raise IndexError(msg)
                rows = rows % len(self)
            else:
                msg = f"cannot index a CutoutSet with {type(item).__name__}"
                raise TypeError(msg)
        table = self._table[rows]
        if self._data is not None:
            return CutoutSet(self._data[rows], table, self._bands, meta=self.meta)
        return CutoutSet(None, table, self._bands, meta=self.meta, source=self._source, index=self._index[rows])

    def iter_batches(self, *, batch_size=256):
        """Yield ``(rows, pixels)`` batches in order, reading lazily from disk when the set is lazy.

        Parameters
        ----------
        batch_size : int, optional
            Cutouts per batch.

        Yields
        ------
        rows : `numpy.ndarray`
            Row numbers within this set.
        pixels : `numpy.ndarray`
            float32 array (n, C, H, W).
        """
        n = len(self)
        for start in range(0, n, batch_size):
            rows = np.arange(start, min(start + batch_size, n))
            if self._data is not None:
                yield rows, self._data[rows]
            else:
                yield rows, self._source.read(self._index[rows])

    def wcs(self, index):
        """The `~astropy.wcs.WCS` of cutout ``index`` (int or id), when the set was made from images.

        Raises
        ------
        InvalidInputError
            When the set carries no grid WCS (e.g. made with `from_arrays`).
        """
        row = self.index_of(index)[0] if isinstance(index, str) else int(index)
        if "cutout_wcs" in self._table.colnames:  # per-row headers (e.g. cutouts from many archive images)
            from astropy.io import fits
            from astropy.wcs import WCS

            return WCS(fits.Header.fromstring(str(self._table["cutout_wcs"][row])))
        if "grid_wcs" not in self.meta or "x_origin" not in self._table.colnames:
            msg = "this CutoutSet carries no WCS (it was not made by make_cutouts)"
            raise InvalidInputError(msg)
        return cutout_wcs(self.meta["grid_wcs"], int(self._table["x_origin"][row]), int(self._table["y_origin"][row]))

    # ------------------------------------------------------------------ output
    def to_table(self):
        """The metadata as a `~astropy.table.QTable` with a ``coord`` SkyCoord column when positions are known."""
        table = QTable(self._table, copy=True)
        coords = self.coords
        if coords is not None:
            table.add_column(coords, name="coord", index=1)
        table.meta["bands"] = list(self._bands)
        table.meta.update({k: v for k, v in self.meta.items() if k not in table.meta})
        return table

    def to_hdf5(
        self,
        path,
        *,
        mode="w",
        overwrite=False,
        compression="lzf",
        shard_size=4096,
        dtype="float32",
        chunk_rows=None,
    ):
        """Write the set to an HDF5 file of shards (``mode="a"`` appends).

        An existing file is replaced only with ``overwrite=True``, and only once the new file is
        complete (written beside it, then renamed over it): a crash or kill leaves the old file.
        A new file is written in place, shard by shard: when a write stops half-way, the shards
        written before it stay readable and the rest can be appended with ``mode="a"``.
        Every chunk carries a fletcher32 checksum, whatever the compression: damaged pixels fail
        to read (`~anomalymatch_astro.utils.exceptions.ReadError`) instead of reading wrong.

        Parameters
        ----------
        path : str or os.PathLike
            Output file.
        mode : {"w", "a"}, optional
            ``"w"`` writes a file (see ``overwrite``); ``"a"`` appends new shards to an existing
            file, after checking that bands, image shape and ids agree.
        overwrite : bool, optional
            Replace an existing file; without it `~anomalymatch_astro.utils.exceptions.InvalidInputError`.
        compression : {"lzf", "gzip", None, "bitshuffle-lz4", "blosc2-lz4", "blosc2-zstd", "zstd"}, optional
            ``"lzf"``, ``"gzip"`` and None are h5py's own; the others are the fast plug-in
            compressors of the ``hdf5plugin`` package (needed to write and to read them):
            bitshuffle + LZ4, Blosc2 (byte shuffle, LZ4 or Zstd; threads set by the
            ``BLOSC_NTHREADS`` environment variable), byte shuffle + Zstd.
        shard_size : int, optional
            Cutouts per shard.
        dtype : {"float32", "float16"}, optional
            Storage dtype of the pixels; they always read back as float32.  float16 halves the
            file (3 significant digits, NaN kept); values beyond its range (``|x| > 65504``) are
            refused with `~anomalymatch_astro.utils.exceptions.InvalidInputError`, and a set
            whose pixels are all tiny (below about 0.006) is written with a warning.
        chunk_rows : int, optional
            Cutouts per HDF5 chunk (default: 1 with h5py's own compressors, the original layout;
            32 with the plug-ins, so a batch reads a few whole chunks; see :ref:`storage-layout`).
        """
        path = os.fspath(path)
        layout = storage_layout(dtype=dtype, compression=compression, chunk_rows=chunk_rows)
        if mode not in ("w", "a"):
            msg = f"mode must be 'w' or 'a', got {mode!r}"
            raise InvalidInputError(msg)
        if mode == "a" and os.path.exists(path):
            other = CutoutSet.from_hdf5(path)
            _check_compatible(other, self, what=f"the file {path!r}")
            clash = sorted(set(other.ids).intersection(self.ids))
            if clash:
                msg = f"{len(clash)} id(s) are already in {path!r}: {clash[:10]}"
                raise InvalidInputError(msg)
        elif os.path.lexists(path) and not overwrite:
            msg = f"{path!r} exists; pass overwrite=True to replace it, or mode='a' to append to it"
            raise OutputExistsError(msg)
        else:
            mode = "w"
        write_file(self, path, mode=mode, shard_size=shard_size, layout=layout)
        log.info("wrote %d cutouts to %s", len(self), path)


def _check_compatible(a, b, *, what):
    if tuple(a.bands) != tuple(b.bands):
        msg = (
            f"band mismatch with {what}: {list(a.bands)} vs {list(b.bands)}; reorder the bands "
            "(e.g. make the cutouts again with the same band order) before combining"
        )
        raise BandMismatchError(msg)
    if tuple(a.image_shape) != tuple(b.image_shape):
        msg = f"image shape mismatch with {what}: {a.image_shape} vs {b.image_shape}"
        raise InvalidInputError(msg)


def concatenate(sets):
    """Concatenate CutoutSets with the same bands (same order) and image shape.

    Parameters
    ----------
    sets : iterable of CutoutSet

    Returns
    -------
    CutoutSet
    """
    sets = list(sets) if isinstance(sets, Iterable) else [sets]
    if not sets:
        msg = "nothing to concatenate"
        raise InvalidInputError(msg)
    for other in sets[1:]:
        _check_compatible(sets[0], other, what="another CutoutSet")
    data = np.concatenate([s.data for s in sets])
    table = QTable(vstack([Table(s.table) for s in sets], metadata_conflicts="silent"))
    ids = np.asarray(table["id"]).astype(str)
    _check_ids(ids, len(ids))
    return CutoutSet(data, table, sets[0].bands, meta=sets[0].meta)
