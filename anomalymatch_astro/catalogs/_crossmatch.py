"""Cross-match candidates against a local catalogue (a `~astropy.table.Table` or a SkyCoord)."""

import logging

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle, SkyCoord
from astropy.table import MaskedColumn, QTable, Table
from astropy.utils.masked import Masked

from ..utils.exceptions import InvalidInputError

__all__ = ["crossmatch", "table_coords", "parse_radius"]

log = logging.getLogger(__name__)

#: (ra, dec) column pairs recognised in catalogues, tried in this order.
_RA_DEC_NAMES = [
    ("ra", "dec"),
    ("RA", "DEC"),
    ("RA", "Dec"),
    ("RAJ2000", "DEJ2000"),
    ("_RAJ2000", "_DEJ2000"),
    ("RA_ICRS", "DE_ICRS"),
    ("ra_deg", "dec_deg"),
    ("RA_deg", "DEC_deg"),
    ("raj2000", "dej2000"),
    ("ALPHA_J2000", "DELTA_J2000"),
    ("s_ra", "s_dec"),
]


def parse_radius(radius):
    """A match radius as an `~astropy.coordinates.Angle` (Quantity or a string such as ``"1arcsec"``)."""
    if radius is None:
        msg = "radius is required, e.g. radius=1 * u.arcsec or '1arcsec'"
        raise InvalidInputError(msg)
    if isinstance(radius, str):
        try:
            float(radius)
        except ValueError:
            pass
        else:
            radius = float(radius)
    if isinstance(radius, (int, float, np.number)) and not isinstance(radius, u.Quantity):
        msg = f"radius {radius!r} has no unit; give an angle such as 1 * u.arcsec or '1arcsec'"
        raise InvalidInputError(msg)
    try:
        angle = Angle(radius)
    except (u.UnitsError, ValueError, TypeError) as exc:
        msg = f"radius {radius!r} is not an angle; give e.g. 1 * u.arcsec or '1arcsec'"
        raise InvalidInputError(msg) from exc
    if not angle.isscalar or angle.to_value(u.deg) <= 0:
        msg = f"radius must be one positive angle, got {radius!r}"
        raise InvalidInputError(msg)
    return angle


def _as_deg(col):
    if getattr(col, "unit", None) is not None:
        return u.Quantity(col).to(u.deg)
    return np.asarray(col, dtype=np.float64) * u.deg


def table_coords(table, *, coord=None, what="table"):
    """The sky positions of a table's rows as a SkyCoord.

    Parameters
    ----------
    table : `~astropy.table.Table`
        A table with a SkyCoord column or ra/dec columns (deg when unitless).
    coord : str, (str, str) or SkyCoord, optional
        The SkyCoord column name, an (ra, dec) column-name pair, or the positions themselves.
    what : str, optional
        Name of the table for messages.

    Returns
    -------
    `~astropy.coordinates.SkyCoord`
    """
    if isinstance(coord, SkyCoord):
        if coord.isscalar or len(coord) != len(table):
            msg = f"the positions given for the {what} must have one entry per row ({len(table)})"
            raise InvalidInputError(msg)
        return coord
    if isinstance(coord, str):
        if coord not in table.colnames:
            msg = f"the {what} has no column {coord!r} (it has {table.colnames})"
            raise InvalidInputError(msg)
        if isinstance(table[coord], SkyCoord):
            return table[coord]
        msg = f"column {coord!r} of the {what} is not a SkyCoord; give (ra_column, dec_column) instead"
        raise InvalidInputError(msg)
    if coord is not None:
        ra_name, dec_name = coord
        for name in (ra_name, dec_name):
            if name not in table.colnames:
                msg = f"the {what} has no column {name!r} (it has {table.colnames})"
                raise InvalidInputError(msg)
        return SkyCoord(_as_deg(table[ra_name]), _as_deg(table[dec_name]), frame="icrs")
    for name in table.colnames:
        if isinstance(table[name], SkyCoord):
            return table[name]
    for ra_name, dec_name in _RA_DEC_NAMES:
        if ra_name in table.colnames and dec_name in table.colnames:
            return SkyCoord(_as_deg(table[ra_name]), _as_deg(table[dec_name]), frame="icrs")
    msg = (
        f"the {what} has no sky positions: add a SkyCoord column or ra/dec columns, or name them "
        f"(columns: {table.colnames})"
    )
    raise InvalidInputError(msg)


def _as_table(obj, *, what):
    if isinstance(obj, SkyCoord):
        if obj.isscalar:
            obj = obj.reshape((1,))
        return QTable({"coord": obj})
    if isinstance(obj, Table):
        return QTable(obj, copy=False)
    msg = f"the {what} must be a Table, QTable or SkyCoord, got {type(obj).__name__}"
    raise InvalidInputError(msg)


def _catalog_columns(catalog, cat_coords, prefix):
    """The catalogue's columns to join: SkyCoord columns become ra/dec, every name gets ``prefix``."""
    out = QTable()
    has_radec = any(a in catalog.colnames and b in catalog.colnames for a, b in _RA_DEC_NAMES)
    for name in catalog.colnames:
        col = catalog[name]
        if isinstance(col, SkyCoord):
            if has_radec:
                continue
            icrs = col.icrs
            out[f"{prefix}ra"] = icrs.ra.to(u.deg)
            out[f"{prefix}dec"] = icrs.dec.to(u.deg)
            continue
        out[f"{prefix}{name}"] = col
    if not out.colnames:
        icrs = cat_coords.icrs
        out[f"{prefix}ra"] = icrs.ra.to(u.deg)
        out[f"{prefix}dec"] = icrs.dec.to(u.deg)
    return out


def _masked_take(columns, idx, matched):
    """Rows ``idx`` of ``columns``, masked where not ``matched``."""
    out = QTable()
    safe = np.where(matched, idx, 0)
    for name in columns.colnames:
        col = columns[name]
        taken = col[safe] if len(col) else col[:0]
        if len(col) == 0:  # empty catalogue: everything is masked
            if isinstance(col, u.Quantity):
                taken = Masked(np.zeros(len(idx)) * col.unit, mask=np.ones(len(idx), bool))
            else:
                taken = MaskedColumn(np.zeros(len(idx), dtype=col.dtype), mask=np.ones(len(idx), bool))
            out[name] = taken
            continue
        mask = ~matched
        if isinstance(taken, u.Quantity):
            base = taken.unmasked if hasattr(taken, "unmasked") else taken
            old = taken.mask if hasattr(taken, "mask") and taken.mask is not None else np.zeros(len(idx), bool)
            out[name] = Masked(base, mask=np.asarray(old) | mask)
        else:
            old = np.asarray(getattr(taken, "mask", np.zeros(len(idx), bool)))
            data = np.asarray(taken.data if isinstance(taken, MaskedColumn) else taken)
            out[name] = MaskedColumn(
                data,
                mask=old | mask,
                unit=getattr(taken, "unit", None),
                description=getattr(taken, "description", None),
            )
    return out


def crossmatch(table, catalog, *, radius, mode="nearest", catalog_coord=None, prefix="cat_"):
    """Cross-match candidates against a local catalogue.

    Parameters
    ----------
    table : `~astropy.table.Table` or `~astropy.coordinates.SkyCoord`
        The candidates, with a SkyCoord column (e.g. ``coord`` from `scores_to_table`) or
        ``ra``/``dec`` columns.
    catalog : `~astropy.table.Table` or `~astropy.coordinates.SkyCoord`
        The catalogue to match against.
    radius : `~astropy.units.Quantity` or str
        Match radius, e.g. ``1 * u.arcsec`` or ``"1arcsec"``.
    mode : {"nearest", "all"}, optional
        ``"nearest"``: one row per candidate, joined with its nearest catalogue source
        within ``radius`` (catalogue columns and ``sep`` masked when none is that close);
        ``"all"``: one row per (candidate, source) pair within ``radius``, ordered by
        candidate then separation; candidates without a match are left out.
    catalog_coord : str, (str, str) or SkyCoord, optional
        Where the catalogue's positions are: a SkyCoord column name, an (ra, dec)
        column-name pair (deg when unitless), or the positions.  Default: the first
        SkyCoord column, else common ra/dec names (``ra``/``dec``, ``RAJ2000``/``DEJ2000``,
        ``RA_ICRS``/``DE_ICRS`` ...).
    prefix : str, optional
        Put before every catalogue column name in the result (default ``"cat_"``).

    Returns
    -------
    `~astropy.table.QTable`
        The candidate rows, the catalogue columns (prefixed; SkyCoord columns as
        ``<prefix>ra``/``<prefix>dec``), ``sep`` (arcsec) and ``<prefix>index`` (the
        matched row of the catalogue).  ``meta`` is the candidates' meta plus
        ``crossmatch`` (radius, mode, number matched).

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.table import QTable
    >>> from anomalymatch_astro.catalogs import crossmatch
    >>> cands = QTable({"id": ["a", "b"], "coord": SkyCoord([10, 20], [0, 0], unit="deg")})
    >>> cat = QTable({"name": ["S1"], "ra": [10.0001], "dec": [0.0]})
    >>> m = crossmatch(cands, cat, radius="1arcsec")
    >>> m["cat_name"].tolist()
    ['S1', None]
    >>> m["sep"].mask.tolist(), round(float(m["sep"][0].unmasked.to_value("arcsec")), 2)
    ([False, True], 0.36)
    """
    if mode not in ("nearest", "all"):
        msg = f"mode must be 'nearest' or 'all', got {mode!r}"
        raise InvalidInputError(msg)
    radius = parse_radius(radius)
    cands = _as_table(table, what="candidate table")
    cat = _as_table(catalog, what="catalogue")
    coords = table_coords(cands, what="candidate table")
    cat_coords = table_coords(cat, coord=catalog_coord, what="catalogue")
    columns = _catalog_columns(cat, cat_coords, prefix)
    columns[f"{prefix}index"] = np.arange(len(cat), dtype=np.int64)
    clash = [n for n in columns.colnames if n in cands.colnames] + (["sep"] if "sep" in cands.colnames else [])
    if clash:
        msg = f"column name(s) {clash} would appear twice in the result; choose another prefix= (now {prefix!r})"
        raise InvalidInputError(msg)

    if mode == "nearest":
        if len(cat) == 0 or len(cands) == 0:
            idx = np.zeros(len(cands), dtype=np.int64)
            sep = np.full(len(cands), np.inf) * u.arcsec
        else:
            idx, sep2d, _ = coords.match_to_catalog_sky(cat_coords)
            sep = sep2d.to(u.arcsec)
        matched = sep <= radius
        joined = _masked_take(columns, idx, matched)
        out = QTable(cands, copy=True)
        for name in joined.colnames:
            out[name] = joined[name]
        sep_values = np.where(matched, sep.to_value(u.arcsec), 0.0)
        out["sep"] = Masked(sep_values * u.arcsec, mask=~matched)
        n_matched = int(matched.sum())
    else:
        if len(cat) == 0 or len(cands) == 0:
            i_cand = i_cat = np.zeros(0, dtype=np.int64)
            sep = np.zeros(0) * u.arcsec
        else:
            i_cat, i_cand, sep2d, _ = coords.search_around_sky(cat_coords, radius)
            sep = sep2d.to(u.arcsec)
            order = np.lexsort((sep.value, i_cand))
            i_cand, i_cat, sep = i_cand[order], i_cat[order], sep[order]
        out = QTable(cands[i_cand], copy=True)
        part = columns[i_cat]
        for name in part.colnames:
            out[name] = part[name]
        out["sep"] = sep
        n_matched = len(np.unique(i_cand))
    out.meta = dict(cands.meta)
    out.meta["crossmatch"] = {
        "radius_arcsec": float(radius.to_value(u.arcsec)),
        "mode": mode,
        "prefix": prefix,
        "n_candidates": len(cands),
        "n_catalog": len(cat),
        "n_matched": n_matched,
    }
    log.info(
        "cross-matched %d candidates against %d sources: %d matched within %s",
        len(cands),
        len(cat),
        n_matched,
        radius,
    )
    return out
