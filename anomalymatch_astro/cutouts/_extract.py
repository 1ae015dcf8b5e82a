"""`make_cutouts`: multi-band cutouts at sky positions, every band on one pixel grid.

The grid is the reference band's WCS (or a WCS the caller gives).  Each cutout is the
block of that grid that astropy's `~astropy.nddata.Cutout2D` would cut at the position
(same rounding, same partial-overlap rule, NaN fill).  Bands whose WCS is the grid's up
to a whole-pixel shift are sliced directly; the others are resampled onto the cutout's
grid:

* ``reproject="interp"`` (default): bilinear interpolation, computed for a whole chunk of
  cutouts at once with vectorised WCS transforms and `scipy.ndimage.map_coordinates`.
  This is the algorithm of `reproject.reproject_interp` (``order="bilinear"``), batched.
* ``reproject="reproject_interp" | "reproject_adaptive" | "reproject_exact"``: the
  `reproject` package's functions, called once per cutout (slower; adaptive/exact
  conserve flux).

Images are read lazily (memory maps and FITS sections), so mosaics larger than memory
work, and tile-compressed ``.fz`` files only decompress the tiles that are touched.
"""

import logging
import warnings

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable, Table
from astropy.wcs import WCS
from scipy.ndimage import map_coordinates

from ..utils import progress_bar
from ..utils.exceptions import InvalidInputError, NonFinitePixelsWarning, NoOverlapError, PartialOverlapWarning
from ._collection import CutoutSet
from ._io import parse_images
from ._photometry import record_photometry
from ._sizes import cut_per_object
from ._validation import _check_ids, default_ids
from ._wcs import _cutout_shape, _grid_offset, _same_frame, cutout_wcs

__all__ = ["make_cutouts", "parse_positions"]

log = logging.getLogger(__name__)

_REPROJECT_METHODS = ("interp", "reproject_interp", "reproject_adaptive", "reproject_exact")
_ON_MISSING = ("raise", "flag", "skip")


# ---------------------------------------------------------------------------- inputs
def parse_positions(positions, *, ids=None):
    """Turn positions into (SkyCoord, ids, extra columns).

    Parameters
    ----------
    positions : `~astropy.coordinates.SkyCoord` or `~astropy.table.Table`
        A SkyCoord, or a table with a SkyCoord column (``coord``/``sky_centroid``) or
        ``ra`` and ``dec`` columns (degrees unless they carry units).
    ids : sequence or str, optional
        Ids, or the name of a column of the table holding them (default ``id`` if present).

    Returns
    -------
    coords : `~astropy.coordinates.SkyCoord`
    ids : `numpy.ndarray` of str or None
    extra : `~astropy.table.QTable` or None
        The other columns of the table, carried into the cutouts' metadata.
    """
    extra = None
    if isinstance(positions, SkyCoord):
        coords = positions if not positions.isscalar else positions.reshape((1,))
    elif isinstance(positions, Table):
        table = QTable(positions)
        skycols = [c for c in table.colnames if isinstance(table[c], SkyCoord)]
        ra_name = next((c for c in ("ra", "RA", "ra_deg", "RAJ2000") if c in table.colnames), None)
        dec_name = next((c for c in ("dec", "DEC", "Dec", "dec_deg", "DEJ2000") if c in table.colnames), None)
        if skycols:
            coords = table[skycols[0]]
            used = {skycols[0]}
        elif ra_name and dec_name:
            ra, dec = table[ra_name], table[dec_name]
            try:
                ra = ra if getattr(ra, "unit", None) not in (None, u.one) else np.asarray(ra) * u.deg
                dec = dec if getattr(dec, "unit", None) not in (None, u.one) else np.asarray(dec) * u.deg
                coords = SkyCoord(u.Quantity(ra, u.deg), u.Quantity(dec, u.deg), frame="icrs")
            except (TypeError, ValueError, u.UnitsError) as exc:
                msg = (
                    f"the catalogue's {ra_name}/{dec_name} columns are not valid sky positions ({exc}); "
                    "give numbers in degrees (or columns with angle units), |dec| <= 90"
                )
                raise InvalidInputError(msg) from exc
            used = {ra_name, dec_name}
        else:
            msg = f"the position table needs a SkyCoord column or 'ra' and 'dec' columns; it has {table.colnames}"
            raise InvalidInputError(msg)
        if isinstance(ids, str):
            if ids not in table.colnames:
                msg = f"id column {ids!r} is not in the table ({table.colnames})"
                raise InvalidInputError(msg)
            used.add(ids)
            ids = table[ids]
        elif ids is None and "id" in table.colnames:
            ids = table["id"]
            used.add("id")
        keep = [c for c in table.colnames if c not in used]
        extra = table[keep] if keep else None
    else:
        msg = f"positions must be a SkyCoord or a Table with ra/dec, got {type(positions).__name__}"
        raise InvalidInputError(msg)
    if ids is not None:
        ids = np.array([str(i).strip() for i in np.asarray(ids)])
        if len(ids) != len(coords):
            msg = f"{len(ids)} ids for {len(coords)} positions"
            raise InvalidInputError(msg)
        ids = _check_ids(ids, len(ids))  # unique, or InvalidInputError listing the duplicates
    return coords, ids, extra


# ---------------------------------------------------------------------------- the work
def _slice_block(data, x0, y0, shape, out):
    """Copy grid block [y0:y0+h, x0:x0+w] of ``data`` into ``out`` (pre-filled); returns pixels covered."""
    ny, nx = data.shape
    h, w = shape
    ys, ye = max(0, y0), min(ny, y0 + h)
    xs, xe = max(0, x0), min(nx, x0 + w)
    if ys >= ye or xs >= xe:
        return 0
    out[ys - y0 : ye - y0, xs - x0 : xe - x0] = data[ys:ye, xs:xe]
    return (ye - ys) * (xe - xs)


def _interp_matrix(n_fine, n_coarse):
    """(n_coarse, n_fine) linear-interpolation weights from coarse nodes onto every fine pixel."""
    nodes = np.linspace(0, n_fine - 1, n_coarse)
    weights = np.zeros((n_coarse, n_fine))
    for j in range(n_fine):
        k = min(int(np.searchsorted(nodes, j, side="right")) - 1, n_coarse - 2)
        t = (j - nodes[k]) / (nodes[k + 1] - nodes[k])
        weights[k, j], weights[k + 1, j] = 1 - t, t
    return nodes, weights


def _band_pixels(image, grid_wcs, x0, y0, shape, *, step=8, tolerance=1e-3):
    """Pixel coordinates in ``image`` of every grid pixel of each cutout, shape (n, h, w) each.

    WCS transforms are exact on a coarse lattice (every ``step`` pixels and the edges) and
    linearly interpolated in between; the mapping between two celestial grids is smooth on a
    cutout's scale, and the interpolation is checked against exact transforms at the lattice
    mid-points (falling back to exact transforms of every pixel beyond ``tolerance`` pixels).
    """
    h, w = shape
    ky, kx = min(h, max(2, int(np.ceil((h - 1) / step)) + 1)), min(w, max(2, int(np.ceil((w - 1) / step)) + 1))
    same = _same_frame(grid_wcs, image.wcs)

    def transform(gx, gy):
        if same:
            return image.wcs.world_to_pixel_values(*grid_wcs.pixel_to_world_values(gx, gy))
        # e.g. FK5 vs ICRS: tens of mas, a large fraction of an HST pixel
        return image.wcs.world_to_pixel(grid_wcs.pixel_to_world(gx, gy))

    if h < 2 or w < 2:
        yy, xx = np.mgrid[0:h, 0:w]
        return transform(x0[:, None, None] + xx[None] * 1.0, y0[:, None, None] + yy[None] * 1.0)
    ynodes, wy = _interp_matrix(h, ky)
    xnodes, wx = _interp_matrix(w, kx)
    cy, cx = np.meshgrid(ynodes, xnodes, indexing="ij")
    bx_c, by_c = transform(x0[:, None, None] + cx[None], y0[:, None, None] + cy[None])
    bx = np.einsum("yk,nkl,lx->nyx", wy.T, bx_c, wx, optimize=True)
    by = np.einsum("yk,nkl,lx->nyx", wy.T, by_c, wx, optimize=True)
    # check at pixels between lattice nodes
    jy, jx = int(round((ynodes[0] + ynodes[1]) / 2)), int(round((xnodes[-2] + xnodes[-1]) / 2))
    ex, ey = transform(x0 + float(jx), y0 + float(jy))
    err = np.nanmax(np.hypot(np.asarray(ex) - bx[:, jy, jx], np.asarray(ey) - by[:, jy, jx]))
    if not err <= tolerance:
        log.debug("WCS mapping not smooth enough for interpolation (%.2g px): exact transforms", err)
        yy, xx = np.mgrid[0:h, 0:w]
        return transform(x0[:, None, None] + xx[None] * 1.0, y0[:, None, None] + yy[None] * 1.0)
    return bx, by


def _resample_chunk(image, grid_wcs, x0, y0, shape, fill):
    """Bilinear resampling of ``image`` onto a chunk of grid blocks; returns (n, h, w) and coverage counts."""
    n = len(x0)
    h, w = shape
    bx, by = _band_pixels(image, grid_wcs, x0, y0, shape)
    ny, nx = image.shape
    out = np.full((n, h, w), fill, dtype=np.float32)
    covered = np.zeros(n, dtype=np.int64)
    for i in range(n):
        inside = (bx[i] > -0.5) & (bx[i] < nx - 0.5) & (by[i] > -0.5) & (by[i] < ny - 0.5)
        count = int(inside.sum())
        covered[i] = count
        if count == 0:
            continue
        xs = max(0, int(np.floor(bx[i][inside].min())) - 2)
        xe = min(nx, int(np.ceil(bx[i][inside].max())) + 3)
        ys = max(0, int(np.floor(by[i][inside].min())) - 2)
        ye = min(ny, int(np.ceil(by[i][inside].max())) + 3)
        sub = np.asarray(image.data[ys:ye, xs:xe], dtype=np.float32)
        sub = np.where(np.isfinite(sub), sub, np.nan)
        # nearest-edge extension by half a pixel, then bilinear inside (as reproject_interp)
        cx = np.clip(bx[i] - xs, 0, sub.shape[1] - 1)
        cy = np.clip(by[i] - ys, 0, sub.shape[0] - 1)
        values = map_coordinates(sub, [cy, cx], order=1, mode="nearest")
        out[i] = np.where(inside, values, fill)
    return out, covered


def _reproject_one(image, grid_wcs, x0, y0, shape, method):
    import reproject

    func = getattr(reproject, method)
    target = cutout_wcs(grid_wcs, x0, y0)
    h, w = shape
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1], [w / 2, h / 2]], dtype=float)
    bx, by = image.wcs.world_to_pixel(target.pixel_to_world(corners[:, 0], corners[:, 1]))
    ny, nx = image.shape
    pad = 3 + int(max(h, w) * 0.1)
    xs, xe = max(0, int(np.nanmin(bx)) - pad), min(nx, int(np.nanmax(bx)) + pad + 1)
    ys, ye = max(0, int(np.nanmin(by)) - pad), min(ny, int(np.nanmax(by)) + pad + 1)
    if xs >= xe or ys >= ye:
        return np.full(shape, np.nan, np.float32), 0
    sub = np.asarray(image.data[ys:ye, xs:xe], dtype=np.float64)
    sub_wcs = image.wcs.deepcopy()
    sub_wcs.wcs.crpix = np.asarray(sub_wcs.wcs.crpix) - np.array([xs, ys], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values, footprint = func((sub, sub_wcs), target, shape_out=shape)
    return values.astype(np.float32), int(np.count_nonzero(footprint > 0))


def make_cutouts(
    images,
    positions,
    size,
    *,
    ids=None,
    reference_band=None,
    grid_wcs=None,
    reproject="interp",
    on_missing="raise",
    fill_value=np.nan,
    chunk_size=256,
    progress=True,
    output_size=None,
):
    """Cut multi-band cutouts at sky positions, every band on one pixel grid.

    Parameters
    ----------
    images : dict
        ``{band: image}`` in band order (e.g. blue to red), each image a FITS path,
        an HDU, an HDUList, an `~astropy.nddata.NDData` with a WCS, or ``(array, wcs)``.
        A single image (not a dict) is one band named ``band0``.
    positions : `~astropy.coordinates.SkyCoord` or `~astropy.table.Table`
        Cutout centres; a table needs ``ra``/``dec`` (or a SkyCoord) column and its other
        columns (e.g. truth, magnitudes) are carried into the cutouts' metadata.
    size : int, (int, int), `~astropy.units.Quantity`, array or str
        Cutout size in pixels of the grid (ny, nx), or as an angle.  With ``output_size``,
        also one size per position (an angle or pixel array, e.g. from `cutout_sizes`) or
        the name of a column of the position table holding them.
    ids : sequence or str, optional
        Object ids, or the name of the table column holding them (default: ``id``
        column if present, else ``obj0...``).
    reference_band : str, optional
        The band whose WCS defines the grid (default: the first band).
    grid_wcs : `~astropy.wcs.WCS`, optional
        A grid WCS to use instead of a band's (then every band is resampled).
    reproject : str, optional
        How bands that are not on the grid are resampled (see module docs): ``"interp"``
        (batched bilinear, default), ``"reproject_interp"``, ``"reproject_adaptive"``
        or ``"reproject_exact"``.
    on_missing : {"raise", "flag", "skip"}, optional
        What to do with a position where some band has no pixels at all: raise
        `~anomalymatch_astro.utils.exceptions.NoOverlapError` listing them (default),
        keep it NaN-filled with the band named in the ``missing_bands`` column, or
        drop it (the dropped ids are logged, warned about and kept in
        ``meta["skipped_ids"]``).
    fill_value : float, optional
        Value of pixels outside an image (default NaN).
    chunk_size : int, optional
        Positions processed together (bounds memory).
    progress : bool, optional
        Show a progress bar.
    output_size : int or (int, int), optional
        Cut every object at its own ``size`` and resample it to this common grid (pixels),
        conserving flux: each output pixel is the area-weighted sum of the input pixels it
        covers, so a cutout's total flux is kept.  Each row then carries its own WCS
        (``cutout_wcs`` column) and the grid shape it was cut at (``cut_shape``).  Default:
        no resampling, every cutout is ``size`` pixels of the grid.

    Returns
    -------
    `~anomalymatch_astro.CutoutSet`
        float32 (N, C, H, W).  Metadata columns: ``id``, ``ra``, ``dec``, ``x_origin``,
        ``y_origin`` (grid pixel of the cutout's pixel (0, 0); with ``meta["grid_wcs"]``
        they give each cutout's WCS, see `cutout_wcs`), ``coverage`` (smallest fraction
        of the cutout covered over the bands), ``partial`` (bool), ``missing_bands``,
        ``n_nonfinite`` (NaN/inf pixels inside the images, set to NaN), plus the
        position table's other columns.  When the images' headers carry zero points
        (``PHOTFLAM`` / ``PHOTPLAM``, ``MAGZERO`` ...), ``meta["photometry"]`` keeps them per
        band and ``meta["band_flux_scales"]`` ({band: factor}) the factors of
        `~anomalymatch_astro.normalization.band_flux_scales`, which the colour composites of
        the gallery, the labelling UI and the Astronomaly export apply.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> from astropy.coordinates import SkyCoord
    >>> from anomalymatch_astro import make_cutouts
    >>> wcs = WCS(naxis=2)
    >>> wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> wcs.wcs.crval = [150.0, 2.0]
    >>> wcs.wcs.crpix = [50.5, 50.5]
    >>> wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    >>> image = np.arange(100 * 100, dtype=float).reshape(100, 100)
    >>> cs = make_cutouts({"r": (image, wcs)}, SkyCoord([150.0], [2.0], unit="deg"), 8, progress=False)
    >>> cs.shape
    (1, 1, 8, 8)
    """
    if reproject not in _REPROJECT_METHODS:
        msg = f"reproject must be one of {_REPROJECT_METHODS}, got {reproject!r}"
        raise InvalidInputError(msg)
    if on_missing not in _ON_MISSING:
        msg = f"on_missing must be one of {_ON_MISSING}, got {on_missing!r}"
        raise InvalidInputError(msg)
    if isinstance(size, str) and output_size is None:
        msg = f"size={size!r} names a column of per-object sizes; give output_size= (the common grid in pixels) too"
        raise InvalidInputError(msg)
    coords, obj_ids, extra = parse_positions(positions, ids=ids)
    parsed = parse_images(images)
    options = {"reference_band": reference_band, "grid_wcs": grid_wcs, "reproject": reproject}
    options.update(on_missing=on_missing, fill_value=fill_value, chunk_size=chunk_size, progress=progress)
    try:
        if output_size is not None:  # each object at its own size, resampled to one grid (_sizes)
            obj_ids = default_ids(len(coords)) if obj_ids is None else obj_ids
            cs = cut_per_object(_make_cutouts, parsed, coords, obj_ids, extra, size, output_size, **options)
        else:
            cs = _make_cutouts(parsed, coords, obj_ids, extra, size, **options)
    finally:
        for image in parsed.values():
            image.close()
    record_photometry(cs, parsed)
    return cs


def _make_cutouts(
    parsed,
    coords,
    obj_ids,
    extra,
    size,
    *,
    reference_band,
    grid_wcs,
    reproject,
    on_missing,
    fill_value,
    chunk_size,
    progress,
):
    bands = list(parsed)
    if grid_wcs is None:
        reference_band = bands[0] if reference_band is None else str(reference_band)
        if reference_band not in parsed:
            msg = f"reference_band {reference_band!r} is not one of the bands {bands}"
            raise InvalidInputError(msg)
        grid_wcs = parsed[reference_band].wcs
    elif not isinstance(grid_wcs, WCS) or not grid_wcs.has_celestial:
        msg = "grid_wcs must be an astropy WCS with celestial axes"
        raise InvalidInputError(msg)
    else:
        grid_wcs = grid_wcs.celestial
        reference_band = None
    shape = _cutout_shape(size, grid_wcs)
    h, w = shape
    n = len(coords)
    if n == 0:
        msg = "no positions given"
        raise InvalidInputError(msg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        px, py = grid_wcs.world_to_pixel(coords)
    px, py = np.atleast_1d(px), np.atleast_1d(py)
    bad_pos = ~(np.isfinite(px) & np.isfinite(py))
    px, py = np.where(bad_pos, -1e9, px), np.where(bad_pos, -1e9, py)
    # Cutout2D's rounding: first pixel = ceil(position - size / 2)
    x0 = np.ceil(px - w / 2.0).astype(np.int64)
    y0 = np.ceil(py - h / 2.0).astype(np.int64)

    offsets = {b: _grid_offset(parsed[b].wcs, grid_wcs) for b in bands}
    resampled = [b for b in bands if offsets[b] is None]
    if resampled:
        log.info("bands %s are not on the grid: resampling them (%s)", resampled, reproject)

    data = np.full((n, len(bands), h, w), fill_value, dtype=np.float32)
    covered = np.zeros((n, len(bands)), dtype=np.int64)
    bar = progress_bar(total=n, desc="cutouts", progress=progress, unit="cutout")
    for start in range(0, n, chunk_size):
        rows = np.arange(start, min(start + chunk_size, n))
        for c, band in enumerate(bands):
            image = parsed[band]
            if offsets[band] is not None:
                dx, dy = offsets[band]
                pixels = image.data
                for i in rows:
                    covered[i, c] = _slice_block(pixels, x0[i] + dx, y0[i] + dy, shape, data[i, c])
            elif reproject == "interp":
                data[rows, c], covered[rows, c] = _resample_chunk(
                    image, grid_wcs, x0[rows], y0[rows], shape, fill_value
                )
            else:
                for i in rows:
                    data[i, c], covered[i, c] = _reproject_one(image, grid_wcs, x0[i], y0[i], shape, reproject)
        bar.update(len(rows))
    bar.close()
    covered[bad_pos] = 0

    # bookkeeping: coverage, missing bands, non-finite pixels
    npix = h * w
    coverage = covered / npix
    missing = coverage == 0
    nonfinite_raw = ~np.isfinite(data)
    data[nonfinite_raw] = np.nan
    n_nonfinite = nonfinite_raw.reshape(n, -1).sum(axis=1) - (npix - covered).sum(axis=1)
    n_nonfinite = np.maximum(n_nonfinite, 0) if np.isnan(fill_value) else nonfinite_raw.reshape(n, -1).sum(axis=1)
    missing_bands = np.array([",".join(b for b, m in zip(bands, row) if m) for row in missing])
    has_missing = missing.any(axis=1)

    if obj_ids is None:
        obj_ids = default_ids(n)
    table = QTable()
    table["id"] = obj_ids
    icrs = coords.icrs
    table["ra"] = icrs.ra.to(u.deg)
    table["dec"] = icrs.dec.to(u.deg)
    table["x_origin"] = x0
    table["y_origin"] = y0
    table["coverage"] = coverage.min(axis=1)
    table["partial"] = table["coverage"] < 1.0
    table["missing_bands"] = missing_bands
    table["n_nonfinite"] = n_nonfinite.astype(np.int64)
    if extra is not None:
        for name in extra.colnames:
            if name not in table.colnames:
                table[name] = extra[name]

    if has_missing.any():
        bad_ids = list(obj_ids[has_missing])
        if on_missing == "raise":
            msg = (
                f"{len(bad_ids)} position(s) are not covered by every band (e.g. "
                f"{', '.join(f'{i} lacks {m}' for i, m in zip(bad_ids[:5], missing_bands[has_missing][:5]))}). "
                "Pass on_missing='flag' to keep them NaN-filled and flagged, or on_missing='skip' "
                "to drop them (their ids are kept in meta['skipped_ids'])"
            )
            raise NoOverlapError(msg)
        if on_missing == "skip":
            keep = ~has_missing
            warnings.warn(
                f"skipped {len(bad_ids)} position(s) not covered by every band: {bad_ids[:10]}",
                PartialOverlapWarning,
                stacklevel=3,
            )
            data, table = data[keep], table[keep]
        else:
            warnings.warn(
                f"{len(bad_ids)} position(s) lack some band entirely (flagged in 'missing_bands')",
                PartialOverlapWarning,
                stacklevel=3,
            )
    n_partial = int(np.count_nonzero(np.asarray(table["partial"]) & (np.asarray(table["missing_bands"]) == "")))
    if n_partial:
        warnings.warn(
            f"{n_partial} cutout(s) overlap their image(s) only partly; the missing pixels are "
            f"{fill_value} (see the 'coverage' column)",
            PartialOverlapWarning,
            stacklevel=3,
        )
    total_bad = int(np.sum(table["n_nonfinite"]))
    if total_bad:
        warnings.warn(
            f"{total_bad} NaN/inf pixel(s) in {int(np.count_nonzero(table['n_nonfinite']))} "
            "cutout(s) were set to NaN (see the 'n_nonfinite' column)",
            NonFinitePixelsWarning,
            stacklevel=3,
        )

    meta = {
        "grid_wcs": grid_wcs.to_header_string(relax=True),
        "reference_band": reference_band,
        "images": {b: parsed[b].source for b in bands},
        "units": {b: parsed[b].unit for b in bands},
        "resampled_bands": resampled,
        "reproject": reproject,
        "cutout_shape": [h, w],
    }
    if has_missing.any() and on_missing == "skip":
        meta["skipped_ids"] = [str(i) for i in obj_ids[has_missing]]
    cs = CutoutSet(data, table, tuple(bands), meta=meta)
    log.info("made %d cutouts of %dx%d px in %d band(s)", len(cs), h, w, len(bands))
    return cs
