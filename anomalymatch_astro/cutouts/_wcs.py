"""The WCS of a cutout, and how a band's pixel grid relates to the cutout grid."""

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales, wcs_to_celestial_frame

from ..utils.exceptions import InvalidInputError

__all__ = ["cutout_wcs"]


def _cutout_shape(size, grid_wcs):
    if isinstance(size, u.Quantity):
        size = np.atleast_1d(size)
        if not size.unit.is_equivalent(u.deg):
            msg = f"an angular size needs angle units (arcsec, arcmin, deg), got {size.unit}"
            raise InvalidInputError(msg)
        scales = proj_plane_pixel_scales(grid_wcs) * u.deg  # (x, y)
        size = size if size.size == 2 else np.repeat(size, 2)  # (ny, nx)
        shape = (
            int(round((size[0] / scales[1]).decompose().value)),
            int(round((size[1] / scales[0]).decompose().value)),
        )
    else:
        shape = tuple(int(s) for s in np.atleast_1d(size))
        shape = shape if len(shape) == 2 else (shape[0], shape[0])
    if min(shape) < 1 or len(shape) != 2:
        msg = f"cutout size must be one or two positive pixel counts or angles, got {size}"
        raise InvalidInputError(msg)
    return shape


def _linear_part(wcs):
    return np.asarray(wcs.wcs.get_pc()) * np.asarray(wcs.wcs.get_cdelt())[:, None]


def _same_frame(wcs1, wcs2):
    try:
        return wcs_to_celestial_frame(wcs1).is_equivalent_frame(wcs_to_celestial_frame(wcs2))
    except ValueError:
        return False


def _grid_offset(band_wcs, grid_wcs):
    """Whole-pixel (dx, dy) with band pixel = grid pixel + offset, or None if not aligned."""
    b, g = band_wcs.wcs, grid_wcs.wcs
    if list(b.ctype) != list(g.ctype) or band_wcs.sip is not None or grid_wcs.sip is not None:
        return None
    if not _same_frame(band_wcs, grid_wcs):
        return None
    if not np.allclose(_linear_part(band_wcs), _linear_part(grid_wcs), rtol=1e-9, atol=0):
        return None
    if not np.allclose(b.crval, g.crval, rtol=0, atol=1e-10):
        return None
    if b.lonpole != g.lonpole or b.latpole != g.latpole:
        return None
    shift = np.asarray(b.crpix) - np.asarray(g.crpix)
    if not np.allclose(shift, np.round(shift), atol=1e-6):
        return None
    return int(round(shift[0])), int(round(shift[1]))


def cutout_wcs(grid_wcs, x_origin, y_origin):
    """The WCS of a cutout whose pixel (0, 0) is grid pixel (x_origin, y_origin).

    Parameters
    ----------
    grid_wcs : `~astropy.wcs.WCS` or `~astropy.io.fits.Header` or str
        The grid WCS (``CutoutSet.meta["grid_wcs"]`` holds it as a header string).
    x_origin, y_origin : int
        Columns ``x_origin``/``y_origin`` of the cutout's metadata row.

    Returns
    -------
    `~astropy.wcs.WCS`
    """
    if isinstance(grid_wcs, str):
        grid_wcs = fits.Header.fromstring(grid_wcs)
    if isinstance(grid_wcs, fits.Header):
        grid_wcs = WCS(grid_wcs)
    wcs = grid_wcs.deepcopy()
    wcs.wcs.crpix = np.asarray(wcs.wcs.crpix) - np.array([x_origin, y_origin], dtype=float)
    if wcs.sip is not None:
        wcs = grid_wcs.slice((slice(int(y_origin), None), slice(int(x_origin), None)))
    return wcs
