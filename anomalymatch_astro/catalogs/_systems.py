"""Group candidates by system: fragments of one object, or close neighbours, become one entry.

In a crowded field one galaxy is often catalogued several times (deblended fragments of a
merger, pieces of a large spiral), and the cutouts of close neighbours show the same
object.  `group_systems` links sources that lie within a radius of each other
(friends-of-friends: links are followed, so a chain of close pairs is one system), or that
fall on one parent segment of a segmentation map, and gives every source a ``system`` id;
`collapse_systems` turns a ranked table into one row per system with the other members
listed under its best-scored source.
"""

import logging

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.table import QTable
from astropy.wcs import WCS
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..cutouts import parse_pixel_scale
from ..utils.exceptions import InvalidInputError
from ._crossmatch import parse_radius, table_coords

__all__ = ["group_systems", "collapse_systems", "rank_systems"]

log = logging.getLogger(__name__)

#: fraction of the cutout's smaller side used as the default linking length (measured: benchmarks/bench_crowded.py)
_DEFAULT_RADIUS_FRACTION = 0.125


def _pixel_scale(pixel_scale, meta):
    """Angle per pixel from ``pixel_scale`` (Quantity or WCS) or the table's ``grid_wcs`` meta."""
    if pixel_scale is None and "grid_wcs" in meta:
        pixel_scale = WCS(fits.Header.fromstring(str(meta["grid_wcs"])))
    if pixel_scale is None:
        return None
    return parse_pixel_scale(pixel_scale)


def _radii(table, radius, factor, pixel_scale):
    """(linking length as Angle or None, per-source radii in deg or None)."""
    if radius is None:
        shape = table.meta.get("cutout_shape")
        scale = _pixel_scale(pixel_scale, table.meta)
        if shape is None or scale is None:
            msg = (
                "give radius= (an angle, or the name of a size column) to group by position; this table "
                "carries no cutout size (meta['cutout_shape'] and meta['grid_wcs']) to derive one from"
            )
            raise InvalidInputError(msg)
        link = Angle(_DEFAULT_RADIUS_FRACTION * min(int(s) for s in shape) * scale)
        return link, None
    if isinstance(radius, str) and radius in table.colnames:
        values = u.Quantity(table[radius])
        if values.unit in (None, u.one, u.dimensionless_unscaled, u.pix):
            scale = _pixel_scale(pixel_scale, table.meta)
            if scale is None:
                msg = (
                    f"column {radius!r} is in pixels; give pixel_scale= (angle per pixel or a WCS) to turn it "
                    "into an angle"
                )
                raise InvalidInputError(msg)
            values = values.value * scale
        elif not values.unit.is_equivalent(u.deg):
            msg = f"column {radius!r} must hold angles or pixels, it is in {values.unit}"
            raise InvalidInputError(msg)
        values = np.nan_to_num(values.to_value(u.deg), nan=0.0) * float(factor)
        return None, np.maximum(values, 0.0)
    return parse_radius(radius), None


def _segment_labels(coords, segmentation, wcs, parents):
    """The (parent) segment label under each source, 0 where none."""
    seg = np.asarray(getattr(segmentation, "data", segmentation))
    if seg.ndim != 2 or seg.dtype.kind not in "iu":
        msg = f"segmentation must be a 2-D integer label map, got {seg.dtype} of shape {seg.shape}"
        raise InvalidInputError(msg)
    if not isinstance(wcs, WCS) or not wcs.has_celestial:
        msg = "a segmentation map needs wcs= (the astropy WCS of the image it labels)"
        raise InvalidInputError(msg)
    x, y = wcs.celestial.world_to_pixel(coords)
    ix, iy = np.round(np.atleast_1d(x)), np.round(np.atleast_1d(y))
    inside = np.isfinite(ix) & np.isfinite(iy) & (ix >= 0) & (iy >= 0) & (ix < seg.shape[1]) & (iy < seg.shape[0])
    labels = np.zeros(len(ix), dtype=np.int64)
    labels[inside] = seg[iy[inside].astype(np.int64), ix[inside].astype(np.int64)]
    if parents is not None:
        mapping = dict(parents)
        labels = np.array([int(mapping.get(int(v), v)) if v else 0 for v in labels], dtype=np.int64)
    return labels


def _links(coords, link, radii):
    """Pairs (i, j) of sources closer than the linking length (or with overlapping discs)."""
    from astropy.coordinates import search_around_sky

    max_sep = link if link is not None else Angle(2 * float(np.max(radii, initial=0.0)), u.deg)
    if max_sep.to_value(u.deg) <= 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    i, j, sep, _ = search_around_sky(coords, coords, max_sep)
    keep = i < j
    if radii is not None:
        keep &= sep.to_value(u.deg) <= radii[i] + radii[j]
    return i[keep], j[keep]


def group_systems(
    table,
    *,
    radius=None,
    factor=1.0,
    pixel_scale=None,
    segmentation=None,
    wcs=None,
    parents=None,
    score=None,
    coord=None,
):
    """Give every source a system id: sources within a radius or on one parent segment share it.

    Parameters
    ----------
    table : `~astropy.table.Table`
        The sources, with a SkyCoord column or ra/dec columns (e.g. a candidate table
        from `~anomalymatch_astro.catalogs.scores_to_table`, or `~anomalymatch_astro.CutoutSet.to_table`).
    radius : `~astropy.units.Quantity`, str or None, optional
        How close two sources must be to be one system (friends-of-friends: links are
        followed, so a chain of close pairs is one system).  An angle (or a string such as
        ``"1.5arcsec"``) is a linking length; the name of a column holding per-source
        radii (e.g. ``"kron_radius"``; angles, or pixels with ``pixel_scale``) links two
        sources when their discs of ``factor`` times that radius overlap.  Default: a
        eighth of the cutout's smaller side when the table carries the cutouts' size
        (``meta["cutout_shape"]`` and ``meta["grid_wcs"]``, as `~anomalymatch_astro.CutoutSet.to_table` and
        `~anomalymatch_astro.catalogs.scores_to_table` write them); with ``segmentation`` alone, no positional links.
    factor : float, optional
        Multiplies the per-source radii of a radius column.
    pixel_scale : `~astropy.units.Quantity` or `~astropy.wcs.WCS`, optional
        Angle per pixel, to read a radius column in pixels (default: the table's
        ``meta["grid_wcs"]``).
    segmentation : `numpy.ndarray` or segmentation image, optional
        A 2-D integer label map of the image (0 = sky), e.g. photutils' ``detect_sources``
        result before deblending, whose labels are the parents of the deblended pieces.
        Sources that fall on the same non-zero label are one system.
    wcs : `~astropy.wcs.WCS`, optional
        The WCS of ``segmentation`` (required with it).
    parents : dict, optional
        ``{label: parent label}`` applied to the labels read from ``segmentation``, for a
        deblended map whose pieces know their parent (e.g. photutils'
        ``SegmentationImage.deblended_labels_map``).
    score : str, optional
        A column of scores (higher = more interesting).  The best-scored member of a system
        is its primary and systems are ranked by it.  Without it the table order is the
        ranking (a candidate table is already in rank order) and a system's first row is
        its primary.
    coord : str or (str, str), optional
        The SkyCoord column, or the (ra, dec) column names, when they are not found.

    Returns
    -------
    `~astropy.table.QTable`
        A copy of ``table`` with ``system`` (int, numbered in order of first appearance),
        ``system_rank`` (1 = the best system), ``system_primary`` (bool, the best member
        of its system) and ``system_size`` (members in the system).  ``meta["systems"]``
        records how the grouping was done.

    Examples
    --------
    >>> from astropy import units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.table import QTable
    >>> from anomalymatch_astro.catalogs import group_systems
    >>> t = QTable({"id": ["a", "b", "c"], "score": [0.2, 0.9, 0.5]})
    >>> t["coord"] = SkyCoord([150.0, 150.0002, 150.01], [2.0, 2.0, 2.0], unit="deg")
    >>> g = group_systems(t, radius=1 * u.arcsec, score="score")
    >>> g["system"].tolist(), g["system_rank"].tolist(), g["system_primary"].tolist()
    ([0, 0, 1], [1, 1, 2], [False, True, True])
    """
    out = QTable(table, copy=True)
    n = len(out)
    coords = table_coords(out, coord=coord, what="table")
    rows, cols = [], []
    link = radii = None
    if radius is not None or segmentation is None:
        link, radii = _radii(out, radius, factor, pixel_scale)
        i, j = _links(coords, link, radii)
        rows.append(i)
        cols.append(j)
    if segmentation is not None:
        labels = _segment_labels(coords, segmentation, wcs, parents)
        on = np.flatnonzero(labels > 0)
        order = on[np.argsort(labels[on], kind="stable")]
        same = labels[order][1:] == labels[order][:-1]
        rows.append(order[:-1][same])
        cols.append(order[1:][same])
    i = np.concatenate(rows) if rows else np.array([], dtype=np.int64)
    j = np.concatenate(cols) if cols else np.array([], dtype=np.int64)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    # number the systems by their first row
    _, first = np.unique(component, return_index=True)
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[np.argsort(first)] = np.arange(len(first))
    system = renumber[component] if n else np.zeros(0, dtype=np.int64)

    if score is not None and score not in out.colnames:
        msg = f"score column {score!r} is not in the table ({out.colnames})"
        raise InvalidInputError(msg)
    values = None if score is None else np.asarray(u.Quantity(out[score]).value, dtype=np.float64)
    rank, primary, size = rank_systems(system, values)
    n_systems = int(primary.sum())
    out["system"] = system
    out["system_rank"] = rank
    out["system_primary"] = primary
    out["system_size"] = size
    out.meta["systems"] = {
        "radius_deg": None if link is None else float(link.to_value(u.deg)),
        "radius_column": radius if isinstance(radius, str) and radius in table.colnames else None,
        "factor": float(factor),
        "segmentation": segmentation is not None,
        "score": score,
        "n_systems": n_systems,
    }
    log.info("%d source(s) in %d system(s)", n, n_systems)
    return out


def _best_first(scores, n):
    """Row order best score first: NaN last, ties (and no scores at all) in table order."""
    values = np.full(n, -np.inf) if scores is None else np.where(np.isnan(scores), -np.inf, scores)
    return np.lexsort((np.arange(n), -values))


def rank_systems(system, scores=None):
    """Rank systems by their best member's score.

    Parameters
    ----------
    system : array-like of int, shape (N,)
        The system id of every source (0, 1, ...), as `group_systems` numbers them.
    scores : array-like of float, shape (N,), optional
        Higher is better; NaN counts as the lowest.  Without scores, systems rank in order of
        first appearance.

    Returns
    -------
    rank, primary, size : numpy.ndarray, shape (N,)
        The rank of each source's system (1 = the best), whether the source is its system's
        best member (ties: the first in table order), and the number of sources in its system.

    Examples
    --------
    >>> from anomalymatch_astro.catalogs import rank_systems
    >>> rank, primary, size = rank_systems([0, 0, 1], [0.2, 0.9, 0.5])
    >>> rank.tolist(), primary.tolist(), size.tolist()
    ([1, 1, 2], [False, True, True], [2, 2, 1])
    """
    system = np.asarray(system, dtype=np.int64)
    n = len(system)
    order = _best_first(None if scores is None else np.asarray(scores, dtype=np.float64), n)
    primaries = order[np.sort(np.unique(system[order], return_index=True)[1])]  # best first
    rank_of = np.zeros(int(system.max(initial=-1)) + 1, dtype=np.int64)
    rank_of[system[primaries]] = np.arange(1, len(primaries) + 1)
    primary = np.zeros(n, dtype=bool)
    primary[primaries] = True
    size = np.bincount(system, minlength=len(rank_of))
    return rank_of[system], primary, size[system]


def collapse_systems(table, *, score="score", id_column="id", **kwargs):
    """One row per system, best system first, with the other members listed under it.

    Parameters
    ----------
    table : `~astropy.table.Table`
        Sources; grouped with `group_systems` first unless it already has a ``system``
        column.
    score : str or None, optional
        The score column (higher = better); None keeps the table order as the ranking.
    id_column : str, optional
        The column of source ids.
    **kwargs
        Passed to `group_systems` (``radius``, ``segmentation``, ``wcs``...).

    Returns
    -------
    `~astropy.table.QTable`
        The primary row of every system in rank order, with ``members`` (the ids of the
        system's other sources, best first, comma-separated) and ``n_members`` (how many
        there are).

    Examples
    --------
    >>> from astropy import units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.table import QTable
    >>> from anomalymatch_astro.catalogs import collapse_systems
    >>> t = QTable({"id": ["a", "b", "c"], "score": [0.2, 0.9, 0.5]})
    >>> t["coord"] = SkyCoord([150.0, 150.0002, 150.01], [2.0, 2.0, 2.0], unit="deg")
    >>> c = collapse_systems(t, radius=1 * u.arcsec)
    >>> c["id"].tolist(), c["members"].tolist()
    (['b', 'c'], ['a', ''])
    """
    if id_column not in table.colnames:
        msg = f"id column {id_column!r} is not in the table ({table.colnames})"
        raise InvalidInputError(msg)
    if "system" in table.colnames and not kwargs and {"system_rank", "system_primary"} <= set(table.colnames):
        grouped = QTable(table, copy=True)
    else:
        grouped = group_systems(table, score=score, **kwargs)
    has_score = score is not None and score in grouped.colnames
    order = _best_first(
        np.asarray(u.Quantity(grouped[score]).value, dtype=np.float64) if has_score else None, len(grouped)
    )
    ids = np.asarray(grouped[id_column]).astype(str)
    system = np.asarray(grouped["system"])
    members = {}
    for row in order:
        members.setdefault(int(system[row]), []).append(ids[row])
    primary_rows = np.flatnonzero(np.asarray(grouped["system_primary"]))
    primary_rows = primary_rows[np.argsort(np.asarray(grouped["system_rank"])[primary_rows], kind="stable")]
    out = grouped[primary_rows]
    others = [[m for m in members[int(s)] if m != ids[r]] for s, r in zip(system[primary_rows], primary_rows)]
    out["members"] = np.array([",".join(m) for m in others], dtype=str) if len(out) else np.array([], dtype=str)
    out["n_members"] = np.array([len(m) for m in others], dtype=np.int64)
    return out
