"""Sky regions as HEALPix cells: the units of work of `mine`.

A region (cone, box, polygon, MOC or MOC file) becomes a `mocpy.MOC` at a fine order
(``FINE_ORDER``), which decides which sources belong to the region; it is cut into the
NESTED HEALPix cells of one order (`choose_order` picks it from the images' size), and
every source belongs to exactly one cell: the one that contains its position.
"""

import os

import numpy as np
from astropy import units as u

from ..utils import require
from ..utils.exceptions import InvalidInputError

__all__ = [
    "FINE_ORDER",
    "parse_region",
    "choose_order",
    "region_cells",
    "cell_of",
    "cell_center_radius",
    "cells_moc",
    "cell_dir",
]

#: The order at which regions are kept (about 3 arcsec cells): source membership is decided there.
FINE_ORDER = 16

_MIN_ORDER, _MAX_ORDER = 3, 14


def _mocpy():
    return require("mocpy", feature="Archive mining (anomalymatch_astro.archives.mine)")


def _angle(value, what):
    q = u.Quantity(value, u.deg)
    if not q.isscalar or not (0 < q.to_value(u.deg) < 180):
        msg = f"{what} must be a positive angle (e.g. 0.2 * u.deg), got {value!r}"
        raise InvalidInputError(msg)
    return q.to(u.deg)


def _center(value):
    from astropy.coordinates import SkyCoord

    if isinstance(value, SkyCoord):
        c = value.icrs
    else:
        ra, dec = value
        c = SkyCoord(u.Quantity(ra, u.deg), u.Quantity(dec, u.deg), frame="icrs")
    if not c.isscalar:
        msg = "a region centre must be one position (SkyCoord or (ra, dec) in degrees)"
        raise InvalidInputError(msg)
    return c


def parse_region(region, *, max_depth=FINE_ORDER):
    """The `mocpy.MOC` of a region.

    Parameters
    ----------
    region : `mocpy.MOC`, str, os.PathLike, `~astropy.coordinates.SkyCoord` or tuple
        A MOC; a MOC FITS file; a polygon (a `~astropy.coordinates.SkyCoord` of at
        least 3 vertices); a cone ``(centre, radius)``; or a box ``(centre, width,
        height)`` (sides along great circles, north up).  A centre is a SkyCoord or
        ``(ra, dec)`` in degrees; lengths are angles (or degrees).
    max_depth : int, optional
        Order of the MOC (default ``FINE_ORDER``, 16); a given MOC is kept as it is.

    Returns
    -------
    `mocpy.MOC`

    Raises
    ------
    InvalidInputError
        When the region is none of these, or is empty.
    """
    from astropy.coordinates import SkyCoord

    mocpy = _mocpy()
    if isinstance(region, mocpy.MOC):
        moc = region
    elif isinstance(region, (str, os.PathLike)):
        if not os.path.exists(region):
            msg = f"the MOC file {os.fspath(region)!r} does not exist"
            raise InvalidInputError(msg)
        moc = mocpy.MOC.from_fits(os.fspath(region))
    elif isinstance(region, SkyCoord) and not region.isscalar:
        if len(region) < 3:
            msg = f"a polygon needs at least 3 vertices, got {len(region)}"
            raise InvalidInputError(msg)
        moc = mocpy.MOC.from_polygon_skycoord(region.icrs, max_depth=max_depth)
    elif isinstance(region, tuple) and len(region) == 2:
        c, r = _center(region[0]), _angle(region[1], "a cone radius")
        moc = mocpy.MOC.from_cone(lon=c.ra, lat=c.dec, radius=r, max_depth=max_depth)
    elif isinstance(region, tuple) and len(region) == 3:
        c = _center(region[0])
        w, h = _angle(region[1], "a box width"), _angle(region[2], "a box height")
        moc = mocpy.MOC.from_box(lon=c.ra, lat=c.dec, a=w / 2, b=h / 2, angle=0 * u.deg, max_depth=max_depth)
    else:
        msg = (
            "region must be a mocpy.MOC, a MOC FITS file, a polygon SkyCoord (>= 3 vertices), "
            f"a cone (centre, radius) or a box (centre, width, height); got {type(region).__name__}"
        )
        raise InvalidInputError(msg)
    if moc.empty():
        msg = "the region is empty"
        raise InvalidInputError(msg)
    return moc


def cell_size(order):
    """The mean side of a HEALPix cell of ``order`` (degrees)."""
    return float(np.degrees(np.sqrt(4 * np.pi / (12 * 4**order))))


def choose_order(image_size):
    """The cell order for images of side ``image_size``: the largest cells no wider than one image.

    A cell then meets at most a few images of each band, and an image is fetched for a
    few cells at most.

    Parameters
    ----------
    image_size : `~astropy.units.Quantity` or float
        The side of a typical image (degrees when a float).

    Returns
    -------
    int
        Between 3 and 14.

    Examples
    --------
    >>> choose_order(0.1667)   # 10 arcmin images: 6.9 arcmin cells
    9
    """
    side = float(u.Quantity(image_size, u.deg).to_value(u.deg))
    if not np.isfinite(side) or side <= 0:
        msg = f"image_size must be a positive angle, got {image_size!r}"
        raise InvalidInputError(msg)
    for order in range(_MIN_ORDER, _MAX_ORDER + 1):
        if cell_size(order) <= side:
            return order
    return _MAX_ORDER


def region_cells(moc, order):
    """The NESTED indices (sorted int64) of the cells of ``order`` that meet the region ``moc``."""
    if order > moc.max_order:
        moc = moc.refine_to_order(order) if hasattr(moc, "refine_to_order") else moc
    cells = moc.degrade_to_order(order).flatten()
    return np.unique(np.asarray(cells, dtype=np.int64))


def cell_of(ra, dec, order):
    """The NESTED cell of ``order`` that contains each position (degrees)."""
    cdshealpix = require("cdshealpix", feature="Archive mining")
    ra = np.atleast_1d(np.asarray(ra, dtype=float))
    dec = np.atleast_1d(np.asarray(dec, dtype=float))
    return np.asarray(cdshealpix.lonlat_to_healpix(ra * u.deg, dec * u.deg, order), dtype=np.int64)


def cell_center_radius(pix, order):
    """Centre (`~astropy.coordinates.SkyCoord`) and radius (deg, to the farthest vertex) of one cell."""
    from astropy.coordinates import SkyCoord

    cdshealpix = require("cdshealpix", feature="Archive mining")
    ipix = np.array([int(pix)], dtype=np.uint64)
    lon, lat = cdshealpix.healpix_to_lonlat(ipix, order)
    center = SkyCoord(lon[0], lat[0], frame="icrs")
    vlon, vlat = cdshealpix.vertices(ipix, order)
    vertices = SkyCoord(vlon[0], vlat[0], frame="icrs")
    return center, float(center.separation(vertices).max().to_value(u.deg))


def cells_moc(cells, order):
    """The `mocpy.MOC` of a set of cells of one order (an empty MOC for none)."""
    mocpy = _mocpy()
    cells = np.asarray(sorted(int(c) for c in cells), dtype=np.uint64)
    if len(cells) == 0:
        return mocpy.MOC.new_empty(order)
    return mocpy.MOC.from_healpix_cells(cells, np.full(len(cells), order, dtype=np.uint8), order)


def cell_dir(order, pix):
    """The relative folder of a cell's files: ``Norder=<order>/Dir=<10000 * (pix // 10000)>`` (HATS style)."""
    return os.path.join(f"Norder={int(order)}", f"Dir={10000 * (int(pix) // 10000)}")
