"""Cutout size per object, and flux-conserving resampling to one output grid.

`cutout_sizes` turns a size column of a source catalogue (Kron radius, semi-major axis...)
into per-object angular sizes; `~anomalymatch_astro.make_cutouts` with ``output_size=`` cuts every object at
its own size and resamples it to the common grid.

The resampling is exact area-weighted rebinning (a drizzle with ``pixfrac=1`` between two
aligned square grids): every output pixel is the sum of the input pixels it covers, each
weighted by the fraction of its area that falls inside.  The total flux of the cutout is
kept exactly (downsampling and upsampling alike); values become flux per output pixel,
so the surface brightness per pixel scales with the pixel area.
"""

import logging

import numpy as np
from astropy import units as u
from astropy.table import QTable, vstack
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from ..utils.exceptions import InvalidInputError
from ._collection import CutoutSet
from ._wcs import _cutout_shape, cutout_wcs

__all__ = ["cutout_sizes", "parse_pixel_scale"]

log = logging.getLogger(__name__)


def parse_pixel_scale(pixel_scale):
    """The angle per pixel of ``pixel_scale``: an angle, an angle per pixel, or a celestial WCS.

    Parameters
    ----------
    pixel_scale : `~astropy.units.Quantity` or `~astropy.wcs.WCS`
        E.g. ``0.13 * u.arcsec``, ``0.13 * u.arcsec / u.pix`` or the image's WCS (the mean of
        its two axes' scales).

    Returns
    -------
    `~astropy.units.Quantity`
        A positive scalar angle in degrees.

    Examples
    --------
    >>> import astropy.units as u
    >>> from anomalymatch_astro.cutouts import parse_pixel_scale
    >>> parse_pixel_scale(0.36 * u.arcsec / u.pix).to(u.arcsec)
    <Quantity 0.36 arcsec>
    """
    if isinstance(pixel_scale, WCS):
        return float(np.mean(proj_plane_pixel_scales(pixel_scale.celestial))) * u.deg
    try:
        scale = u.Quantity(pixel_scale)
    except TypeError:
        scale = None
    if scale is not None and scale.unit.is_equivalent(u.deg / u.pix):
        scale = scale * u.pix
    if scale is None or not scale.unit.is_equivalent(u.deg) or not scale.isscalar or scale.value <= 0:
        msg = f"pixel_scale must be one positive angle per pixel (e.g. 0.13 * u.arcsec) or a WCS, got {pixel_scale!r}"
        raise InvalidInputError(msg)
    return scale.to(u.deg)


def _as_angle(value, scale, what):
    value = u.Quantity(value)
    if value.unit in (u.one, u.dimensionless_unscaled, u.pix):
        if scale is None:
            msg = f"{what} is in pixels; give pixel_scale= (angle per pixel, or a WCS) to turn it into an angle"
            raise InvalidInputError(msg)
        return value.value * scale
    if not value.unit.is_equivalent(u.deg):
        msg = f"{what} must be an angle or a number of pixels, got unit {value.unit}"
        raise InvalidInputError(msg)
    return value


def cutout_sizes(
    catalog,
    *,
    column="kron_radius",
    factor=2.5,
    min_size=None,
    max_size=None,
    pixel_scale=None,
    scale_column=None,
):
    """Per-object cutout sizes (full side, as angles) from a size column of a catalogue.

    ``size = 2 * factor * radius`` (times ``scale_column`` when given), clipped to
    ``[min_size, max_size]``; objects without a usable radius (NaN, zero, negative) get
    ``min_size`` (or the median size when there is no ``min_size``).

    Parameters
    ----------
    catalog : `~astropy.table.Table`
        The sources, one row per cutout (e.g. photutils' ``SourceCatalog.to_table()``).
    column : str, optional
        The radius column: angles, or pixels (no unit or ``pix``) with ``pixel_scale``.
        E.g. ``"semimajor_sigma"`` (photutils), ``"A_IMAGE"`` (SExtractor) or
        ``"kron_radius"`` with ``scale_column="semimajor_sigma"``.
    factor : float, optional
        How many radii from the centre to the cutout's edge.
    min_size, max_size : `~astropy.units.Quantity` or float, optional
        Clip limits (angles, or pixels with ``pixel_scale``).
    pixel_scale : `~astropy.units.Quantity` or `~astropy.wcs.WCS`, optional
        Angle per pixel of the image the catalogue was measured on, for pixel columns.
    scale_column : str, optional
        A second column the radius is multiplied by, for radii in units of another size
        (photutils' ``kron_radius`` is in units of ``semimajor_sigma``).

    Returns
    -------
    `~astropy.units.Quantity`
        One angular size per row (arcsec), to pass as ``size`` to `make_cutouts` with
        ``output_size``.

    Examples
    --------
    >>> from astropy import units as u
    >>> from astropy.table import Table
    >>> from anomalymatch_astro.cutouts import cutout_sizes
    >>> t = Table({"a": [2.0, 10.0, 100.0]})
    >>> cutout_sizes(t, column="a", factor=3, pixel_scale=0.1 * u.arcsec, min_size=2 * u.arcsec, max_size=10 * u.arcsec)
    <Quantity [ 2.,  6., 10.] arcsec>
    """
    if column not in catalog.colnames:
        msg = f"size column {column!r} is not in the catalogue ({catalog.colnames})"
        raise InvalidInputError(msg)
    if not np.isfinite(factor) or factor <= 0:
        msg = f"factor must be a positive number, got {factor!r}"
        raise InvalidInputError(msg)
    scale = None if pixel_scale is None else parse_pixel_scale(pixel_scale)
    radius = u.Quantity(catalog[column], dtype=np.float64)
    if scale_column is not None:
        if scale_column not in catalog.colnames:
            msg = f"scale column {scale_column!r} is not in the catalogue ({catalog.colnames})"
            raise InvalidInputError(msg)
        other = u.Quantity(catalog[scale_column], dtype=np.float64)
        # kron_radius is tagged 'pix' by photutils although it counts semi-major axes
        radius = radius.value * other
    radius = _as_angle(radius, scale, f"column {column!r}").to(u.arcsec)
    size = 2.0 * float(factor) * radius
    lo = None if min_size is None else _as_angle(min_size, scale, "min_size").to(u.arcsec)
    hi = None if max_size is None else _as_angle(max_size, scale, "max_size").to(u.arcsec)
    if lo is not None and hi is not None and lo > hi:
        msg = f"min_size ({lo}) is larger than max_size ({hi})"
        raise InvalidInputError(msg)
    bad = ~np.isfinite(size) | (size <= 0)
    if bad.any():
        fallback = lo if lo is not None else (np.median(size[~bad]) if (~bad).any() else None)
        if fallback is None:
            msg = f"no row of column {column!r} has a usable size; give min_size="
            raise InvalidInputError(msg)
        log.info("%d object(s) without a usable %r get %s", int(bad.sum()), column, fallback)
        size = np.where(bad, fallback, size)
    if lo is not None:
        size = np.maximum(size, lo)
    if hi is not None:
        size = np.minimum(size, hi)
    return size


# ---------------------------------------------------------------------------- resampling
def _overlap_matrix(n_in, n_out):
    """(n_out, n_in) fraction of each input pixel that falls in each output pixel (columns sum to 1)."""
    edges_in = np.arange(n_in + 1, dtype=np.float64)
    edges_out = np.linspace(0.0, n_in, n_out + 1)
    lo = np.maximum(edges_out[:-1, None], edges_in[None, :-1])
    hi = np.minimum(edges_out[1:, None], edges_in[None, 1:])
    return np.clip(hi - lo, 0.0, None)


def rebin_flux(images, shape):
    """Resample (..., H, W) images to (..., h, w) conserving the total flux (area-weighted).

    NaN pixels are filled by the mean of the finite pixels that share an output pixel
    (scaled by area); output pixels with no finite input are NaN.
    """
    images = np.asarray(images, dtype=np.float64)
    ry = _overlap_matrix(images.shape[-2], shape[0])
    rx = _overlap_matrix(images.shape[-1], shape[1])
    finite = np.isfinite(images)
    flux = np.einsum("yi,...ij,xj->...yx", ry, np.where(finite, images, 0.0), rx, optimize=True)
    if finite.all():
        return flux.astype(np.float32)
    area = np.einsum("yi,...ij,xj->...yx", ry, finite.astype(np.float64), rx, optimize=True)
    full = np.outer(ry.sum(axis=1), rx.sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(area > 0, flux * full / area, np.nan)
    return out.astype(np.float32)


def _scaled_wcs(grid_wcs, x0, y0, in_shape, out_shape):
    """Header string of the WCS of a cutout cut at grid origin (x0, y0) and resampled to ``out_shape``."""
    wcs = cutout_wcs(grid_wcs, x0, y0).celestial.deepcopy()
    sy, sx = in_shape[0] / out_shape[0], in_shape[1] / out_shape[1]
    scale = np.array([sx, sy])
    # FITS pixel edges are at 0.5: the first output pixel's lower edge stays at the input's
    wcs.wcs.crpix = (np.asarray(wcs.wcs.crpix) - 0.5) / scale + 0.5
    if wcs.wcs.has_cd():
        wcs.wcs.cd = np.asarray(wcs.wcs.cd) * scale[None, :]
    else:
        wcs.wcs.cdelt = np.asarray(wcs.wcs.cdelt) * scale
    wcs.sip = None  # distortion terms of the grid do not carry over to a rescaled grid (approximate)
    return wcs.to_header_string(relax=True)


def _per_object_shapes(size, n, table, grid_wcs):
    """One (ny, nx) grid shape per object from a scalar, an array or a column name."""
    if isinstance(size, str):
        if table is None or size not in table.colnames:
            msg = f"size column {size!r} is not in the position table"
            raise InvalidInputError(msg)
        size = table[size]
        size = u.Quantity(size) if getattr(size, "unit", None) is not None else np.asarray(size)
    arr = size if isinstance(size, u.Quantity) else np.asarray(size)
    if arr.ndim == 0 or (arr.ndim == 1 and arr.shape[0] == 2 and n != 2):
        return [_cutout_shape(size, grid_wcs)] * n
    if arr.shape[0] != n or arr.ndim not in (1, 2):
        msg = f"size has {arr.shape[0]} entries for {n} positions; give one size per position (or one size)"
        raise InvalidInputError(msg)
    return [_cutout_shape(s, grid_wcs) for s in arr]


def cut_per_object(cut, parsed, coords, obj_ids, extra, size, output_size, *, grid_wcs, reference_band, **kwargs):
    """Cut every object at its own size with ``cut`` (`make_cutouts`' worker), resample to ``output_size``.

    Objects with the same grid shape are cut together; the results are put back in the
    positions' order.
    """
    if isinstance(output_size, u.Quantity):
        msg = "output_size is the common grid in pixels (an int or (ny, nx)), not an angle"
        raise InvalidInputError(msg)
    if grid_wcs is not None:
        if not isinstance(grid_wcs, WCS) or not grid_wcs.has_celestial:
            msg = "grid_wcs must be an astropy WCS with celestial axes"
            raise InvalidInputError(msg)
        ref_wcs = grid_wcs.celestial
    else:
        band = next(iter(parsed)) if reference_band is None else str(reference_band)
        ref_wcs = parsed[band].wcs if band in parsed else next(iter(parsed.values())).wcs
    out_shape = _cutout_shape(output_size, ref_wcs)
    shapes = _per_object_shapes(size, len(coords), extra, ref_wcs)
    groups = {}
    for i, shape in enumerate(shapes):
        groups.setdefault(shape, []).append(i)
    datas, tables, meta, bands = [], [], None, None
    for shape, rows in groups.items():
        rows = np.asarray(rows)
        sub_extra = None if extra is None else extra[rows]
        cs = cut(
            parsed,
            coords[rows],
            obj_ids[rows],
            sub_extra,
            shape,
            grid_wcs=grid_wcs,
            reference_band=reference_band,
            **kwargs,
        )
        meta, bands = cs.meta, cs.bands
        if len(cs) == 0:
            continue
        table = QTable(cs.table, copy=True)
        headers = [
            _scaled_wcs(meta["grid_wcs"], int(x0), int(y0), shape, out_shape)
            for x0, y0 in zip(table["x_origin"], table["y_origin"])
        ]
        table["cutout_wcs"] = np.array(headers)
        table["cut_shape"] = np.tile(np.asarray(shape, dtype=np.int64), (len(table), 1))
        datas.append(rebin_flux(cs.data, out_shape))
        tables.append(table)
    if not tables:
        return CutoutSet(np.zeros((0, len(bands), *out_shape), np.float32), QTable({"id": []}), bands, meta=meta)
    table = QTable(vstack(tables, metadata_conflicts="silent"))
    data = np.concatenate(datas)
    position = {obj_id: i for i, obj_id in enumerate(obj_ids)}
    order = np.argsort([position[str(i)] for i in table["id"]], kind="stable")
    meta = dict(meta)
    meta.update(
        {
            "cutout_shape": list(out_shape),
            "per_object_size": True,
            "resample": "flux-conserving area-weighted rebinning",
        }
    )
    kept = set(np.asarray(table["id"]).astype(str))
    skipped = [str(i) for i in obj_ids if str(i) not in kept]
    if skipped:
        meta["skipped_ids"] = skipped
    log.info("cut %d object(s) at %d size(s), resampled to %dx%d px", len(table), len(groups), *out_shape)
    return CutoutSet(data[order], table[order], bands, meta=meta)
