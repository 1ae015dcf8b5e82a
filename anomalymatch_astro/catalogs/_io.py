"""Write and read catalogues (FITS, VOTable, ECSV, Parquet, HDF5) so that they round-trip exactly.

HDF5 and Parquet keep SkyCoord columns and nested ``meta`` natively (astropy's
``serialize_meta``).  FITS keeps SkyCoord columns natively, but its header cannot hold nested
values, so ``meta`` travels as one JSON keyword.  VOTable holds no mixin columns: each SkyCoord
column is written as two float64 columns ``<name>_lon``/``<name>_lat`` (deg, in its frame, with
the UCDs ``pos.eq.ra``/``pos.eq.dec`` for ICRS) and rebuilt on read, and ``meta`` travels as JSON
in an ``INFO`` element.  ECSV is written so that readers other than astropy (TOPCAT, STILTS) open
it: its YAML header holds only standard tags, so SkyCoord columns are split into
``<name>_lon``/``<name>_lat`` as for VOTable, Quantity columns are plain columns with a unit,
and ``meta`` values that plain YAML cannot hold (tuples, numpy scalars, quantities) are written
as their JSON equivalents.  In every format a small
private record (``_IO_KEY``) says which columns were masked, so that empty strings, which some
formats cannot tell from masked values, come back as empty strings.
"""

import base64
import json
import logging
import os
import re

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io.fits.verify import VerifyError
from astropy.table import MaskedColumn, QTable, Table

from ..utils import atomic_path, check_declared_size, loads_json
from ..utils.exceptions import InvalidInputError, OutputExistsError, ReadError

__all__ = ["write_table", "read_table", "TABLE_FORMATS"]

log = logging.getLogger(__name__)

#: Accepted ``format`` names -> file name endings.
TABLE_FORMATS = {
    "fits": (".fits", ".fit", ".fts", ".fits.gz"),
    "votable": (".xml", ".vot", ".votable"),
    "ecsv": (".ecsv",),
    "parquet": (".parquet", ".pq"),
    "hdf5": (".h5", ".hdf5", ".hdf"),
}
_ASTROPY_FORMAT = {
    "fits": "fits",
    "votable": "votable",
    "ecsv": "ascii.ecsv",
    "parquet": "parquet",
    "hdf5": "hdf5",
}
_ALIASES = {"ascii.ecsv": "ecsv", "vot": "votable", "xml": "votable", "h5": "hdf5", "fit": "fits"}
_IO_KEY = "__anomalymatch_io__"
_FITS_META_KEY = "AMMETA"
_FITS_IO_KEY = "AMIO"
_VOT_META_INFO = "anomalymatch_astro_meta"
_HDF5_PATH = "catalog"


def _fits_safe(text):
    return "b64:" + base64.b64encode(text.encode()).decode()


def _from_fits_safe(text):
    text = str(text)
    return base64.b64decode(text[4:]).decode() if text.startswith("b64:") else text


def _json_default(value):
    if isinstance(value, u.Quantity):  # before ndarray: a Quantity is one, but has no tolist()
        return value.to_string()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _to_json(value):
    return json.dumps(value, default=_json_default, sort_keys=False)


def resolve_format(path, *, format=None):
    """The format name (one of `TABLE_FORMATS`) for ``path`` or the given ``format``."""
    if format is not None:
        fmt = _ALIASES.get(str(format).lower(), str(format).lower())
        if fmt not in TABLE_FORMATS:
            msg = f"unknown table format {format!r}; use one of {sorted(TABLE_FORMATS)}"
            raise InvalidInputError(msg)
        return fmt
    name = os.fspath(path).lower()
    for fmt, endings in TABLE_FORMATS.items():
        if name.endswith(endings):
            return fmt
    known = ", ".join(e for ends in TABLE_FORMATS.values() for e in ends)
    msg = f"cannot tell the table format of {os.fspath(path)!r} from its extension ({known}); pass format="
    raise InvalidInputError(msg)


def _io_record(table):
    masked = [
        name
        for name in table.colnames
        if isinstance(table[name], MaskedColumn)
        or getattr(table[name], "mask", None) is not None
        and not isinstance(table[name], SkyCoord)
    ]
    return {"masked": masked, "columns": list(table.colnames)}


def _split_skycoords(table):
    """Replace SkyCoord columns by lon/lat float64 columns (deg); return their description."""
    coords = {}
    for index, name in enumerate(list(table.colnames)):
        col = table[name]
        if not isinstance(col, SkyCoord):
            continue
        sph = col.represent_as("unitspherical")
        lon_name, lat_name = f"{name}_lon", f"{name}_lat"
        for new in (lon_name, lat_name):
            if new in table.colnames:
                msg = f"cannot write the SkyCoord column {name!r} as two columns: a column {new!r} exists"
                raise InvalidInputError(msg)
        pos = table.colnames.index(name)
        table.remove_column(name)
        table.add_column(np.asarray(sph.lon.to_value(u.deg), dtype=np.float64) * u.deg, name=lon_name, index=pos)
        table.add_column(np.asarray(sph.lat.to_value(u.deg), dtype=np.float64) * u.deg, name=lat_name, index=pos + 1)
        coords[name] = {"frame": col.frame.name, "index": index, "lon": lon_name, "lat": lat_name}
    return coords


def _join_skycoords(table, coords):
    for name, spec in sorted(coords.items(), key=lambda kv: kv[1]["index"]):
        lon, lat = table[spec["lon"]], table[spec["lat"]]
        lon = u.Quantity(lon, u.deg) if getattr(lon, "unit", None) else np.asarray(lon) * u.deg
        lat = u.Quantity(lat, u.deg) if getattr(lat, "unit", None) else np.asarray(lat) * u.deg
        table.remove_columns([spec["lon"], spec["lat"]])
        table.add_column(SkyCoord(lon, lat, frame=spec["frame"]), name=name, index=spec["index"])


def write_table(table, path, *, format=None, overwrite=False):
    """Write a catalogue to FITS, VOTable, ECSV, Parquet or HDF5 so that `read_table` restores it.

    Parameters
    ----------
    table : `~astropy.table.Table`
        The catalogue (e.g. from `scores_to_table`), SkyCoord columns and nested
        ``meta`` included.
    path : str or os.PathLike
        Output file; the format follows from its extension (``.fits``, ``.xml``/``.vot``,
        ``.ecsv``, ``.parquet``, ``.h5``/``.hdf5``) unless ``format`` is given.
    format : {"fits", "votable", "ecsv", "parquet", "hdf5"}, optional
        The format.
    overwrite : bool, optional
        Replace an existing file.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from anomalymatch_astro.catalogs import read_table, write_table
    >>> t = QTable({"id": ["a", "b"], "score": [0.1, 0.9]}, meta={"model": {"hash": "abc"}})
    >>> write_table(t, "cat.fits", overwrite=True)  # doctest: +SKIP
    >>> read_table("cat.fits").meta["model"]  # doctest: +SKIP
    {'hash': 'abc'}
    """
    path = os.fspath(path)
    fmt = resolve_format(path, format=format)
    if os.path.exists(path) and not overwrite:
        msg = f"{path!r} exists; pass overwrite=True to replace it"
        raise OutputExistsError(msg)
    out = QTable(table, copy=True)
    with atomic_path(path) as tmp:  # an interrupted write leaves the old file, never a torn one
        _write_format(out, tmp, fmt)
    log.info("wrote %d rows to %s (%s)", len(out), path, fmt)


def _write_format(out, path, fmt):
    """Write ``out`` (a copy, changed here) to ``path`` in ``fmt``, with the metadata `read_table` restores."""
    record = _io_record(out)
    meta = dict(out.meta)
    if fmt == "fits":
        record["bytes"] = [n for n in out.colnames if getattr(out[n], "dtype", np.dtype(float)).kind == "S"]
        # FITS long strings (CONTINUE cards) do not keep runs of spaces (e.g. an embedded WCS
        # header), so the JSON travels base64-encoded.
        out.meta = {_FITS_META_KEY: _fits_safe(_to_json(meta)), _FITS_IO_KEY: _fits_safe(_to_json(record))}
        out.write(path, format="fits", overwrite=True)
    elif fmt == "votable":
        from astropy.io.votable import from_table
        from astropy.io.votable.tree import Info

        record["coords"] = _split_skycoords(out)
        out.meta = {}
        votable = from_table(Table(out))
        resource_table = votable.get_first_table()
        resource_table.infos.append(Info(name=_VOT_META_INFO, value=_to_json({"meta": meta, "io": record})))
        _mark_ucds(resource_table, record["coords"])
        votable.to_xml(path)
    elif fmt == "hdf5":
        out.meta = dict(meta)
        out.meta[_IO_KEY] = record
        out.write(path, format="hdf5", path=_HDF5_PATH, serialize_meta=True, overwrite=True)
    elif fmt == "ecsv":
        # No astropy-only YAML tags (!astropy.table.SerializedColumn ...): TOPCAT/STILTS refuse them.
        record["coords"] = _split_skycoords(out)
        plain = Table(out)  # Quantity columns -> columns with a unit
        for spec in record["coords"].values():
            if spec["frame"] == "icrs":
                plain[spec["lon"]].meta["ucd"] = "pos.eq.ra"
                plain[spec["lat"]].meta["ucd"] = "pos.eq.dec"
        plain.meta = meta if _is_plain_yaml(meta) else json.loads(_to_json(meta))
        plain.meta[_IO_KEY] = record
        plain.write(path, format="ascii.ecsv", overwrite=True)
    else:
        out.meta = dict(meta)
        out.meta[_IO_KEY] = record
        out.write(path, format=_ASTROPY_FORMAT[fmt], overwrite=True)


def _is_plain_yaml(value):
    """Whether ``value`` is made only of what YAML writes without tags (str-keyed dicts, lists, scalars)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain_yaml(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_plain_yaml(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


def _mark_ucds(resource_table, coords):
    for spec in coords.values():
        for field in resource_table.fields:
            if spec["frame"] == "icrs" and field.name == spec["lon"]:
                field.ucd = "pos.eq.ra"
            elif spec["frame"] == "icrs" and field.name == spec["lat"]:
                field.ucd = "pos.eq.dec"


def _restore(table, record):
    masked = set(record.get("masked", []))
    for name in table.colnames:
        col = table[name]
        if isinstance(col, SkyCoord):
            continue
        if getattr(col, "dtype", None) is not None and col.dtype.kind == "S" and name not in record.get("bytes", []):
            table[name] = (
                np.char.decode(col, "utf-8")
                if not isinstance(col, MaskedColumn)
                else MaskedColumn(np.char.decode(col.data.data, "utf-8"), mask=col.mask)
            )
            col = table[name]
        if name in masked:
            if col.dtype.kind == "U" and not np.any(getattr(col, "mask", False)):
                # FITS and VOTable cannot mask strings: masked strings come back empty
                table[name] = MaskedColumn(np.asarray(col), mask=np.asarray(col) == "", unit=col.unit)
            continue
        if isinstance(col, MaskedColumn):
            if col.dtype.kind in "US":
                table[name] = col.filled("")
            elif not np.any(col.mask):
                table[name] = col.filled()
            elif col.dtype.kind in "fc":  # VOTable reads NaN as masked
                table[name] = col.filled(np.nan)
        elif getattr(col, "mask", None) is not None:  # Masked Quantity
            if not np.any(col.mask):
                table[name] = col.unmasked
            elif col.dtype.kind in "fc":
                table[name] = col.filled(np.nan)
        if getattr(table[name], "dtype", None) is not None and table[name].dtype == object:
            table[name] = np.asarray(table[name], dtype=str)
    order = [n for n in record.get("columns", []) if n in table.colnames]
    if order and order != table.colnames:
        table = table[order + [n for n in table.colnames if n not in order]]
    return table


def read_table(path, *, format=None):
    """Read a catalogue written by `write_table` (or any table astropy can read).

    SkyCoord columns, the column order, empty strings and the nested ``meta`` come back as
    they were written.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    format : {"fits", "votable", "ecsv", "parquet", "hdf5"}, optional
        Default: from the extension.

    Returns
    -------
    `~astropy.table.QTable`
    """
    path = os.fspath(path)
    fmt = resolve_format(path, format=format)
    if not os.path.exists(path):
        msg = f"table file {path!r} does not exist"
        raise ReadError(msg)
    _check_declared_sizes(path, fmt)
    try:
        if fmt == "votable":
            from astropy.io.votable import parse

            votable = parse(path)
            vtable = votable.get_first_table()
            table = QTable(vtable.to_table(use_names_over_ids=True))
            info = next((i for i in vtable.infos if i.name == _VOT_META_INFO), None)
            payload = loads_json(info.value, source=path) if info is not None else {"meta": dict(table.meta), "io": {}}
            table.meta = payload["meta"]
            record = payload["io"]
            _join_skycoords(table, record.get("coords", {}))
        elif fmt == "hdf5":
            table = QTable.read(path, format="hdf5", path=_HDF5_PATH if _has_path(path) else None)
            record = table.meta.pop(_IO_KEY, {})
        elif fmt == "fits":
            table = QTable.read(path, format="fits", character_as_bytes=False)
            meta = dict(table.meta)
            record = loads_json(_from_fits_safe(meta.pop(_FITS_IO_KEY, "{}")), source=path)
            if _FITS_META_KEY in meta:
                meta = loads_json(_from_fits_safe(meta[_FITS_META_KEY]), source=path)
            table.meta = meta
        else:
            table = QTable.read(path, format=_ASTROPY_FORMAT[fmt])
            record = table.meta.pop(_IO_KEY, {})
            _join_skycoords(table, record.get("coords", {}))  # ECSV: SkyCoords travel as lon/lat columns
    except (OSError, ValueError, KeyError, VerifyError, MemoryError, RecursionError) as exc:
        msg = f"could not read the table {path!r} as {fmt}: {type(exc).__name__}: {exc}"
        raise ReadError(msg) from exc
    return _restore(table, record)


#: Compressed HDF5 data may declare at most this many times its stored bytes (gzip's best ratio is ~1030).
_MAX_COMPRESSION = 1100


def _check_declared_sizes(path, fmt):
    """Refuse a table whose header declares far more rows than its file can hold, before reading it."""
    size = os.path.getsize(path)
    try:
        if fmt == "fits":
            from astropy.io import fits

            with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
                for i, hdu in enumerate(hdul):
                    h = hdu.header
                    naxes = [int(h.get(f"NAXIS{k}", 0)) for k in range(1, int(h.get("NAXIS", 0)) + 1)]
                    declared = abs(int(h.get("BITPIX", 8))) // 8 * int(np.prod(naxes, dtype=object)) if naxes else 0
                    declared = (declared + int(h.get("PCOUNT", 0))) * int(h.get("GCOUNT", 1))
                    check_declared_size(declared, size, source=f"{path!r} (HDU {i})", what="table data")
        elif fmt == "votable":
            _check_votable_rows(path, size)
        elif fmt == "hdf5":
            import h5py

            with h5py.File(path, "r") as f:
                for name, dset in _hdf5_datasets(f):
                    declared = int(np.prod(dset.shape, dtype=object)) * dset.dtype.itemsize
                    bound = size * (_MAX_COMPRESSION if dset.compression else 1)
                    check_declared_size(declared, bound, source=f"{path!r} ({name})", what="table data")
    except (OSError, ValueError, KeyError, VerifyError) as exc:
        msg = f"could not read the table {path!r} as {fmt}: {type(exc).__name__}: {exc}"
        raise ReadError(msg) from exc


def _hdf5_datasets(group, prefix=""):
    import h5py

    for name, item in group.items():
        if isinstance(item, h5py.Dataset):
            yield f"{prefix}{name}", item
        elif isinstance(item, h5py.Group):
            yield from _hdf5_datasets(item, f"{prefix}{name}/")


def _check_votable_rows(path, size, *, block=1 << 20):
    """Each row of a VOTable takes at least one byte: ``nrows`` beyond the file size is a damaged header."""
    pattern = re.compile(rb"""\bnrows\s*=\s*["'](\d{1,30})["']""")
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(block):
            text = tail + chunk
            for match in pattern.finditer(text):
                check_declared_size(int(match.group(1)), size, source=repr(path), what="table rows (nrows)")
            tail = text[-64:]


def _has_path(path):
    import h5py

    with h5py.File(path, "r") as f:
        return _HDF5_PATH in f
