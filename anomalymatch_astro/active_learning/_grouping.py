"""Systems of a session: which cutouts show one object (fragments, close neighbours).

The session groups its cutouts once, from their sky positions, with
`~anomalymatch_astro.catalogs.group_systems` (or takes the grouping it is given) and
uses the result for every call of ``candidates`` and ``to_table``; nothing here
depends on the scores.
"""

import logging

import numpy as np
from astropy import units as u

from ..utils.exceptions import InvalidInputError

__all__ = ["resolve_systems", "members_of"]

log = logging.getLogger(__name__)

#: The column of a CutoutSet's table that holds precomputed system ids (used by default when present).
SYSTEM_COLUMN = "system"


def _as_ids(values, n, what):
    """One integer system id per cutout, renumbered 0.. in order of first appearance."""
    if np.any(np.ma.getmaskarray(values)):
        msg = f"{what} has missing values: every cutout needs a system id"
        raise InvalidInputError(msg)
    arr = np.asarray(values)
    if arr.shape != (n,):
        msg = f"{what} must hold one system id per cutout ({n}), got shape {arr.shape}"
        raise InvalidInputError(msg)
    if arr.dtype.kind not in "iuUSO":
        msg = f"{what} must hold integer (or string) system ids, got {arr.dtype}"
        raise InvalidInputError(msg)
    keys = arr.astype(str) if arr.dtype.kind in "USO" else arr
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[np.argsort(first, kind="stable")] = np.arange(len(first))
    return renumber[inverse.reshape(-1)]


def _grouped(cutouts, options, *, strict):
    """System ids from `group_systems` on the cutouts' table, or None when it cannot be done and not ``strict``."""
    from ..catalogs import group_systems

    if cutouts.coords is None:
        if strict:
            msg = "grouping by position needs sky positions (ra, dec) in the CutoutSet; these cutouts have none"
            raise InvalidInputError(msg)
        return None
    table = cutouts.to_table()
    try:
        grouped = group_systems(table, **options)
    except InvalidInputError as exc:
        if strict:
            raise
        log.info("no grouping by system: %s", exc)
        return None
    return np.asarray(grouped["system"], dtype=np.int64)


def resolve_systems(cutouts, spec):
    """One system id per cutout (int array), or None for no grouping.

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet`
        The session's cutouts.
    spec : None, False, str, array-like, `~astropy.units.Quantity` or dict
        ``None``: the table's ``system`` column when it has one, else
        `~anomalymatch_astro.catalogs.group_systems` with its default radius (an eighth of
        the cutout side, from the cutouts' ``cutout_shape`` and ``grid_wcs`` meta); no
        grouping when the cutouts have no sky positions or no pixel scale.
        ``False``: no grouping.  A string: the column of system ids in the cutouts' table.
        An array: one system id per cutout.  An angle: the linking radius.  A dict: the
        keyword arguments of `~anomalymatch_astro.catalogs.group_systems` (``radius``,
        ``segmentation``, ``wcs``, ``parents``, ``factor``, ``pixel_scale``).

    Returns
    -------
    numpy.ndarray or None
    """
    n = len(cutouts)
    if spec is False:
        return None
    if spec is None:
        if SYSTEM_COLUMN in cutouts.table.colnames:
            return _as_ids(cutouts.table[SYSTEM_COLUMN], n, f"column {SYSTEM_COLUMN!r}")
        return _grouped(cutouts, {}, strict=False)
    if isinstance(spec, str):
        if spec not in cutouts.table.colnames:
            msg = f"systems={spec!r} names no column of the cutouts' table ({cutouts.table.colnames})"
            raise InvalidInputError(msg)
        return _as_ids(cutouts.table[spec], n, f"column {spec!r}")
    if isinstance(spec, u.Quantity):
        return _grouped(cutouts, {"radius": spec}, strict=True)
    if isinstance(spec, dict):
        unknown = set(spec) - {"radius", "factor", "pixel_scale", "segmentation", "wcs", "parents"}
        if unknown:
            msg = f"unknown grouping option(s) {sorted(unknown)} in systems="
            raise InvalidInputError(msg)
        return _grouped(cutouts, dict(spec), strict=True)
    if spec is True:
        msg = "systems=True is the default: pass None (or leave it out), False for no grouping"
        raise InvalidInputError(msg)
    return _as_ids(spec, n, "systems")


def members_of(systems, rows, scores):
    """For each row, the other rows of its system, best score first (ties in table order)."""
    values = np.full(len(systems), -np.inf) if scores is None else np.asarray(scores, dtype=np.float64)
    values = np.where(np.isnan(values), -np.inf, values)
    order = np.lexsort((np.arange(len(systems)), -values))
    wanted = {int(systems[r]) for r in rows}
    by_system = {}
    for r in order[np.isin(systems[order], list(wanted))]:
        by_system.setdefault(int(systems[r]), []).append(int(r))
    return [[m for m in by_system[int(systems[r])] if m != int(r)] for r in rows]
