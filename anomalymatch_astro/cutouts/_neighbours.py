"""Neighbour handling: replace the pixels of other catalogued sources in a cutout with background.

In a crowded field a faint object's cutout often holds a bright neighbour, or the
diffraction spikes of a star, and those pixels, not the object, drive its score.
`mask_neighbours` finds the pixels of the OTHER sources of each cutout, from a
segmentation map of the image or from the catalogue's shapes (ellipses), and replaces
them with noise drawn from the cutout's own sigma-clipped background, band by band.
The central object's own pixels are never touched (optionally, with a segmentation map,
its whole blend: the other deblended pieces of its parent).
"""

import logging
import warnings

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.table import QTable
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from scipy.ndimage import binary_dilation

from ..utils import progress_bar
from ..utils.exceptions import InvalidInputError
from ._collection import CutoutSet
from ._wcs import _grid_offset

__all__ = ["mask_neighbours"]

log = logging.getLogger(__name__)

_MODES = ("noise", "median", "nan", "zero")
# (semi-major, semi-minor, orientation) column names, tried in order when shapes=None
_SHAPE_COLUMNS = (
    ("semimajor_sigma", "semiminor_sigma", "orientation"),  # photutils SourceCatalog
    ("A_IMAGE", "B_IMAGE", "THETA_IMAGE"),  # SExtractor
    ("a", "b", "theta"),
)
_MIN_BACKGROUND_PIXELS = 16


def _grid_of(cutouts):
    if "grid_wcs" not in cutouts.meta:
        return None
    return WCS(fits.Header.fromstring(str(cutouts.meta["grid_wcs"])))


def _scale(wcs):
    return float(np.mean(proj_plane_pixel_scales(wcs.celestial)))


def _find_shapes(catalog, shapes):
    if shapes is False or catalog is None:
        return None
    if shapes is not None:
        missing = [c for c in shapes if c not in catalog.colnames]
        if len(shapes) != 3 or missing:
            msg = f"shapes must name three catalogue columns (a, b, theta); missing {missing} in {catalog.colnames}"
            raise InvalidInputError(msg)
        return tuple(shapes)
    return next((cols for cols in _SHAPE_COLUMNS if all(c in catalog.colnames for c in cols)), None)


def _axis_values(column, grid_scale):
    """Semi-axes in grid pixels (angles converted with the grid's scale)."""
    values = u.Quantity(column, dtype=np.float64)
    if values.unit in (u.one, u.dimensionless_unscaled, u.pix):
        return values.value
    if not values.unit.is_equivalent(u.deg) or grid_scale is None:
        msg = f"shape axes must be pixels or angles (with a grid WCS), got {values.unit}"
        raise InvalidInputError(msg)
    return values.to_value(u.deg) / grid_scale


def _angle_values(column):
    values = u.Quantity(column, dtype=np.float64)
    if values.unit in (u.one, u.dimensionless_unscaled):
        return np.deg2rad(values.value)
    return values.to_value(u.rad)


class _Catalogue:
    """Source positions in grid pixels and ellipse axes (a, b, theta) for the masks."""

    def __init__(self, catalog, grid, *, shapes, factor, radius):
        from astropy.coordinates import SkyCoord

        self.grid = grid
        grid_scale = None if grid is None else _scale(grid)
        table = QTable(catalog)
        sky = next((table[c] for c in table.colnames if isinstance(table[c], SkyCoord)), None)
        if sky is None:
            if "ra" not in table.colnames or "dec" not in table.colnames:
                msg = f"the catalogue needs a SkyCoord column or ra/dec columns; it has {table.colnames}"
                raise InvalidInputError(msg)
            ra, dec = (u.Quantity(table[c]) for c in ("ra", "dec"))
            ra = ra if ra.unit.is_equivalent(u.deg) else ra.value * u.deg
            dec = dec if dec.unit.is_equivalent(u.deg) else dec.value * u.deg
            sky = SkyCoord(ra, dec, frame="icrs")
        self.sky = sky
        self.shapes = _find_shapes(table, shapes)
        if self.shapes is not None:
            a_col, b_col, t_col = self.shapes
            self.a = np.nan_to_num(_axis_values(table[a_col], grid_scale)) * factor
            self.b = np.nan_to_num(_axis_values(table[b_col], grid_scale)) * factor
            self.theta = np.nan_to_num(_angle_values(table[t_col]))
        else:
            self.a = np.full(len(table), float(radius))
            self.b = self.a.copy()
            self.theta = np.zeros(len(table))
        self.a, self.b = np.maximum(self.a, 0.5), np.maximum(self.b, 0.5)
        self.xy = None
        if grid is not None:
            self.xy = np.array(grid.world_to_pixel(sky))

    def pixels(self, cutouts, row, wcs):
        """Source positions in the cutout's pixels, and the cutout's pixel size in grid pixels."""
        table = cutouts.table
        if self.xy is not None and "cutout_wcs" not in table.colnames:
            return self.xy[0] - int(table["x_origin"][row]), self.xy[1] - int(table["y_origin"][row]), 1.0
        x, y = wcs.world_to_pixel(self.sky)
        ratio = 1.0 if self.grid is None else _scale(wcs) / _scale(self.grid)
        return np.asarray(x), np.asarray(y), ratio


def _ellipse_masks(cat, x, y, ratio, shape, centre, own_radius, keep=None):
    """(neighbour mask, own mask) from the catalogue's ellipses in one cutout.

    Sources centred on a ``keep`` pixel (the central object's blend) count as the object's own.
    """
    h, w = shape
    a, b = cat.a / ratio, cat.b / ratio
    near = (x > -a - 1) & (x < w + a) & (y > -a - 1) & (y < h + a)
    neighbour = np.zeros(shape, dtype=bool)
    own = np.zeros(shape, dtype=bool)
    dist = np.hypot(x - centre[0], y - centre[1])
    own_index = int(np.argmin(dist)) if len(dist) else -1
    if own_index >= 0 and not dist[own_index] <= own_radius:
        own_index = -1
    yy, xx = np.mgrid[0:h, 0:w]
    for k in np.flatnonzero(near):
        ix, iy = int(round(float(x[k]))), int(round(float(y[k])))
        if keep is not None and k != own_index and 0 <= ix < w and 0 <= iy < h and keep[iy, ix]:
            continue  # a deblended piece of the central object's own blend
        dx, dy = xx - x[k], yy - y[k]
        c, s = np.cos(cat.theta[k]), np.sin(cat.theta[k])
        inside = ((dx * c + dy * s) / a[k]) ** 2 + ((-dx * s + dy * c) / b[k]) ** 2 <= 1.0
        if k == own_index:
            own |= inside
        else:
            neighbour |= inside
    return neighbour, own, own_index >= 0


def _segment_block(seg, seg_wcs, cutouts, row, wcs, grid, shape):
    """The segmentation labels on the cutout's pixels (0 outside the map)."""
    h, w = shape
    table = cutouts.table
    offset = None if grid is None or "cutout_wcs" in table.colnames else _grid_offset(seg_wcs, grid)
    if offset is not None:
        x0, y0 = int(table["x_origin"][row]) + offset[0], int(table["y_origin"][row]) + offset[1]
        out = np.zeros(shape, dtype=seg.dtype)
        ys, ye, xs, xe = max(0, y0), min(seg.shape[0], y0 + h), max(0, x0), min(seg.shape[1], x0 + w)
        if ys < ye and xs < xe:
            out[ys - y0 : ye - y0, xs - x0 : xe - x0] = seg[ys:ye, xs:xe]
        return out
    yy, xx = np.mgrid[0:h, 0:w]
    sx, sy = seg_wcs.world_to_pixel(wcs.pixel_to_world(xx.ravel(), yy.ravel()))
    ix, iy = np.round(sx), np.round(sy)
    ok = np.isfinite(ix) & np.isfinite(iy) & (ix >= 0) & (iy >= 0) & (ix < seg.shape[1]) & (iy < seg.shape[0])
    labels = np.zeros(h * w, dtype=seg.dtype)
    labels[ok] = seg[iy[ok].astype(np.int64), ix[ok].astype(np.int64)]
    return labels.reshape(shape)


def _segment_masks(
    labels, centre, own_radius, keep_blended=False, brightness=None, blend_contrast=np.inf, saturated=None
):
    """(neighbour mask, own mask, found) from the segmentation labels of one cutout.

    With ``keep_blended`` the own mask grows from the central segment into the segments that
    touch it (8-connectivity: the other deblended pieces of its parent), and from those into
    the ones that touch them, but never into a segment whose brightest ``brightness`` pixel
    is over ``blend_contrast`` times the central segment's, nor through it (a bright star
    deblended together with a faint galaxy stays masked, and so do the other sources its halo
    joined to the same parent).  Nor into a segment with a ``saturated`` pixel: a saturated
    star's clipped peak passes the contrast test.
    """
    h, w = labels.shape
    cx, cy = int(round(centre[0])), int(round(centre[1]))
    own_label = labels[cy, cx] if 0 <= cx < w and 0 <= cy < h else 0
    if own_label == 0:
        yy, xx = np.mgrid[0:h, 0:w]
        near = labels[(np.hypot(xx - centre[0], yy - centre[1]) <= own_radius) & (labels > 0)]
        if near.size:
            values, counts = np.unique(near, return_counts=True)
            own_label = values[np.argmax(counts)]
    own = (labels == own_label) & (own_label != 0)
    if keep_blended and own.any():
        own = _grow_blend(labels, own, own_label, brightness, blend_contrast, saturated)
    return (labels != 0) & ~own, own, own_label != 0


def _grow_blend(labels, own, own_label, brightness, blend_contrast, saturated=None):
    """The central segment and the segments reachable from it through touching, not too bright segments."""
    from scipy.ndimage import maximum

    ceiling = np.inf
    if brightness is not None:
        ceiling = float(blend_contrast) * max(float(maximum(brightness, labels, own_label)), 0.0)
    touching = np.ones((3, 3), dtype=bool)
    seen = {int(own_label)}
    if saturated is not None:  # never kept, never followed
        seen.update(int(lab) for lab in np.unique(labels[saturated & ~own]))
    while True:
        rim = binary_dilation(own, structure=touching) & ~own & (labels != 0)
        new = [int(lab) for lab in np.unique(labels[rim]) if int(lab) not in seen]
        if not new:
            return own
        seen.update(new)
        if brightness is not None:
            peaks = np.atleast_1d(maximum(brightness, labels, new))
            new = [lab for lab, peak in zip(new, peaks) if peak <= ceiling]
        if not new:
            return own
        own = own | np.isin(labels, new)


def _saturation_levels(saturation, bands, *, keep_blended):
    """The saturation level of each band as a float array, or None when there is no test."""
    if saturation is None:
        return None
    if not keep_blended:
        msg = "saturation= is used by keep_blended=True only (to stop a blend at a saturated segment): pass both"
        raise InvalidInputError(msg)
    try:
        levels = np.atleast_1d(np.asarray(saturation, dtype=np.float64))
    except (TypeError, ValueError):
        msg = f"saturation must be a number or one number per band, got {saturation!r}"
        raise InvalidInputError(msg) from None
    if levels.ndim != 1 or len(levels) not in (1, len(bands)) or not np.all(np.isfinite(levels)):
        msg = (
            f"saturation must be one finite level or one per band ({len(bands)}: {', '.join(bands)}), "
            f"got {saturation!r}"
        )
        raise InvalidInputError(msg)
    return np.broadcast_to(levels, (len(bands),)).copy()


def _replace(pixels, mask, background, mode, rng, sigma):
    """Replace ``mask`` pixels of every band (finite ones only) in place; returns pixels replaced."""
    replaced = 0
    for band in pixels:
        target = mask & np.isfinite(band)
        count = int(target.sum())
        if count == 0:
            continue
        if mode == "nan":
            band[target] = np.nan
        elif mode == "zero":
            band[target] = 0.0
        else:
            sky = band[background & np.isfinite(band)]
            if sky.size < _MIN_BACKGROUND_PIXELS:
                sky = band[np.isfinite(band) & ~mask]
            if sky.size == 0:
                sky = band[np.isfinite(band)]
            _, median, std = sigma_clipped_stats(sky, sigma=sigma, maxiters=10)
            if mode == "median":
                band[target] = median
            else:
                band[target] = rng.normal(median, std, count).astype(np.float32)
        replaced = max(replaced, count)
    return replaced


def mask_neighbours(
    cutouts,
    catalog=None,
    *,
    segmentation=None,
    wcs=None,
    shapes=None,
    factor=3.0,
    radius=None,
    dilate=0,
    own_radius=2.0,
    keep_blended=False,
    blend_contrast=10.0,
    saturation=None,
    mode="noise",
    seed=0,
    sigma=3.0,
    progress=True,
    return_masks=False,
):
    """Replace the pixels of OTHER catalogued sources in every cutout with background noise.

    The pixels of a neighbour come from a segmentation map of the image (every non-zero
    label but the one under the cutout's centre) and/or from the catalogue (each other
    source's ellipse: its semi-axes times ``factor``, or a disc of ``radius`` pixels when
    the catalogue has no shapes).  They are replaced band by band with noise drawn from
    the cutout's own background (sigma-clipped median and standard deviation of the
    pixels outside every source).  The central object's own pixels (its segment, its
    ellipse) are never touched, and pixels outside the image (NaN) stay NaN.

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet`
        Cutouts that know their WCS (made by `make_cutouts`).
    catalog : `~astropy.table.Table`, optional
        All catalogued sources of the field (positions; shapes optional), e.g. photutils'
        ``SourceCatalog.to_table()``.  Default: the cutouts' own table when no
        ``segmentation`` is given.
    segmentation : `numpy.ndarray` or segmentation image, optional
        2-D integer label map of the image (0 = sky), e.g. photutils' deblended
        segmentation; read on each cutout's pixels through the WCS.
    wcs : `~astropy.wcs.WCS`, optional
        The WCS of ``segmentation`` (default: the cutouts' grid, ``meta["grid_wcs"]``).
    shapes : (str, str, str), None or False, optional
        Catalogue columns of the semi-major axis, semi-minor axis (pixels of the grid, or
        angles) and orientation (degrees counter-clockwise from the x axis).  Default:
        photutils' ``semimajor_sigma, semiminor_sigma, orientation``, SExtractor's
        ``A_IMAGE, B_IMAGE, THETA_IMAGE`` or ``a, b, theta``, whichever is present;
        ``False`` uses discs of ``radius``.
    factor : float, optional
        Multiplies the semi-axes (3 covers most of the light of an rms-sized ellipse).
    radius : float, optional
        Disc radius in grid pixels for sources without shapes (default: an eighth of the
        cutout's smaller side).
    dilate : int, optional
        Grow the neighbours' masks by this many pixels (halos, spikes beyond the segment).
    own_radius : float, optional
        How far (pixels) from the cutout centre the central object's catalogue entry or
        segment is looked for.
    keep_blended : bool, optional
        With a segmentation map, also keep the segments that touch the central object's
        own (the other deblended pieces of its parent, as photutils' ``deblend_sources``
        and SExtractor split it), and those that touch them, with their catalogue entries.
        A deblended fragment of a galaxy then shows as part of its galaxy instead of an
        isolated oddity; but a faint galaxy blended by chance with a neighbour keeps the
        neighbour.  Default ``False``: every other segment is masked.  See the crowded-fields
        guide for when each is better.
    blend_contrast : float, optional
        With ``keep_blended``, a touching segment whose brightest pixel (the sum of the
        bands above the cutout's median) is more than this many times the central
        segment's is masked all the same, and the blend is not followed through it: a
        bright star and its spikes, deblended together with the faint galaxy beside them,
        do not stay in the galaxy's cutout.  The test needs unsaturated peaks: on a
        saturated star (or an 8-bit display image) the contrast is clipped and the star may
        be kept: give ``saturation`` for such data.
    saturation : float or sequence of float, optional
        With ``keep_blended``, the level at or above which a pixel is saturated, in the
        cutouts' pixel units (one value for every band, or one per band; e.g. the image's
        ``SATURATE`` header keyword).  A touching segment with a saturated pixel in any band
        is masked, and the blend is not followed through it, whatever its contrast.  Meant
        for data where only stars saturate: a clipped galaxy core counts as saturated too,
        and its deblended pieces are then masked.  Default: no saturation test.
    mode : {"noise", "median", "nan", "zero"}, optional
        What replaces the masked pixels: background noise (default), the background
        median, NaN or zero.
    seed : int, optional
        Seed of the noise; the same seed gives the same pixels.
    sigma : float, optional
        Clipping threshold of the background statistics.
    progress : bool, optional
        Show a progress bar.
    return_masks : bool, optional
        Also return the (N, H, W) boolean masks of the replaced pixels.

    Returns
    -------
    `~anomalymatch_astro.CutoutSet` or (`~anomalymatch_astro.CutoutSet`, `numpy.ndarray`)
        A new set with the same ids, bands, positions and table, plus the columns
        ``n_masked`` (pixels replaced) and ``masked_fraction``; ``meta["neighbour_mask"]``
        records what was done.
    """
    if mode not in _MODES:
        msg = f"mode must be one of {_MODES}, got {mode!r}"
        raise InvalidInputError(msg)
    if not isinstance(cutouts, CutoutSet):
        msg = f"cutouts must be a CutoutSet, got {type(cutouts).__name__}"
        raise InvalidInputError(msg)
    n, h, w = len(cutouts), *cutouts.image_shape
    levels = _saturation_levels(saturation, cutouts.bands, keep_blended=keep_blended)
    grid = _grid_of(cutouts)
    if n and grid is None and "cutout_wcs" not in cutouts.table.colnames:
        msg = "mask_neighbours needs cutouts that know their WCS (made by make_cutouts)"
        raise InvalidInputError(msg)
    seg = seg_wcs = None
    if segmentation is not None:
        seg = np.asarray(getattr(segmentation, "data", segmentation))
        if seg.ndim != 2 or seg.dtype.kind not in "iu":
            msg = f"segmentation must be a 2-D integer label map, got {seg.dtype} of shape {seg.shape}"
            raise InvalidInputError(msg)
        seg_wcs = (wcs if wcs is not None else grid).celestial if (wcs is not None or grid is not None) else None
        if seg_wcs is None:
            msg = "give wcs= (the WCS of the segmentation map)"
            raise InvalidInputError(msg)
    if catalog is None and segmentation is None:
        catalog = cutouts.to_table()
    radius = min(h, w) / 8.0 if radius is None else float(radius)
    cat = None
    if catalog is not None:
        cat = _Catalogue(catalog, grid, shapes=shapes, factor=float(factor), radius=radius)
    centres = cutouts.coords
    structure = None
    if dilate:
        yy, xx = np.mgrid[-dilate : dilate + 1, -dilate : dilate + 1]
        structure = np.hypot(xx, yy) <= dilate

    out = np.empty((n, len(cutouts.bands), h, w), dtype=np.float32)
    masks = np.zeros((n, h, w), dtype=bool)
    n_masked = np.zeros(n, dtype=np.int64)
    bar = progress_bar(total=n, desc="masking neighbours", progress=progress, unit="cutout")
    for rows, pixels in cutouts.iter_batches(batch_size=256):
        for k, row in enumerate(rows):
            cw = cutouts.wcs(int(row))
            if centres is None:
                centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
            else:
                centre = np.array(cw.world_to_pixel(centres[int(row)]), dtype=float).ravel()
            neighbour = np.zeros((h, w), dtype=bool)
            own = np.zeros((h, w), dtype=bool)
            found = False
            if seg is not None:
                labels = _segment_block(seg, seg_wcs, cutouts, int(row), cw, grid, (h, w))
                brightness = saturated = None
                if keep_blended:
                    with np.errstate(all="ignore"), warnings.catch_warnings():  # all-NaN bands
                        warnings.simplefilter("ignore", RuntimeWarning)
                        flat = np.asarray(pixels[k], dtype=np.float64)
                        brightness = np.nansum(flat - np.nanmedian(flat, axis=(-2, -1), keepdims=True), axis=0)
                        if levels is not None:
                            saturated = np.any(flat >= levels[:, None, None], axis=0)
                nb, ow, found = _segment_masks(
                    labels, centre, own_radius, keep_blended, brightness, blend_contrast, saturated
                )
                neighbour |= nb
                own |= ow
            if cat is not None:
                x, y, ratio = cat.pixels(cutouts, int(row), cw)
                keep = own if (seg is not None and keep_blended) else None
                nb, ow, got = _ellipse_masks(cat, x, y, ratio, (h, w), centre, own_radius, keep)
                neighbour |= nb
                own |= ow
                found = found or got
            if not found:  # no catalogue entry or segment at the centre: protect a disc there
                yy, xx = np.mgrid[0:h, 0:w]
                own |= np.hypot(xx - centre[0], yy - centre[1]) <= radius
            if structure is not None:
                neighbour = binary_dilation(neighbour, structure=structure)
            mask = neighbour & ~own
            background = ~(neighbour | own)
            band_pixels = np.array(pixels[k], dtype=np.float32, copy=True)
            rng = np.random.default_rng([int(seed), int(row)])
            n_masked[row] = _replace(band_pixels, mask, background, mode, rng, sigma)
            out[row] = band_pixels
            masks[row] = mask
        bar.update(len(rows))
    bar.close()

    table = QTable(cutouts.table, copy=True)
    table["n_masked"] = n_masked
    table["masked_fraction"] = n_masked / float(h * w)
    meta = dict(cutouts.meta)
    meta["neighbour_mask"] = {
        "mode": mode,
        "seed": int(seed),
        "segmentation": seg is not None,
        "catalog": cat is not None,
        "shapes": None if cat is None or cat.shapes is None else list(cat.shapes),
        "factor": float(factor),
        "radius_px": radius,
        "dilate": int(dilate),
        "keep_blended": bool(keep_blended) and seg is not None,
        "blend_contrast": float(blend_contrast),
        "saturation": None if levels is None else [float(v) for v in levels],
        "sigma": float(sigma),
    }
    masked = CutoutSet.from_arrays(out, ids=cutouts.ids, bands=cutouts.bands, table=table, meta=meta)
    log.info("masked neighbours in %d of %d cutout(s) (%s)", int(np.count_nonzero(n_masked)), n, mode)
    return (masked, masks) if return_masks else masked
