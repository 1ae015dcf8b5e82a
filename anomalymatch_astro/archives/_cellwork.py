"""One cell's work, apart from the network: pick an image per source, cut, detect sources.

`cut_sources` cuts every source from, in each band, the image that holds its whole cutout
with the widest margin (tiles of a mosaic overlap, so one always does away from the
mosaic's edge); sources that no image of some band holds whole are left out and counted.
`detect_sources_on_images` finds sources with photutils when the survey has no catalogue.
"""

import logging

import numpy as np
from astropy import units as u

from ..utils import require
from ._sources import image_footprint

__all__ = ["cut_sources", "detect_sources_on_images", "to_arrow"]

log = logging.getLogger(__name__)


def _margins(path, ra, dec, size):
    """Pixels to spare between each source's cutout and the image edge (negative: it does not fit)."""
    (ny, nx), wcs = image_footprint(path)
    x, y = wcs.celestial.world_to_pixel_values(ra, dec)
    x, y = np.asarray(x, float), np.asarray(y, float)
    hy, hx = size[0] / 2.0, size[1] / 2.0
    m = np.minimum.reduce([x - hx + 0.5, (nx - 0.5) - (x + hx), y - hy + 0.5, (ny - 0.5) - (y + hy)])
    return np.where(np.isfinite(m), m, -np.inf)


def pick_images(images, ra, dec, size):
    """For each band, the index into ``images[band]`` of the image each source fits best (-1: none)."""
    picks = {}
    for band, entries in images.items():
        if not entries:
            picks[band] = np.full(len(ra), -1)
            continue
        margins = np.stack([_margins(e["path"], ra, dec, size) for e in entries])
        best = np.argmax(margins, axis=0)
        ok = margins[best, np.arange(len(ra))] >= 1.0  # one pixel of slack for the cutout's rounding
        picks[band] = np.where(ok, best, -1)
    return picks


def cut_sources(images, sources, size, *, reproject="interp"):
    """Cut every source that one image of each band holds whole.

    Parameters
    ----------
    images : dict
        ``{band: [image dict]}`` (each with ``path``, ``dataset_id``, ``access_url``, ``method``).
    sources : `~astropy.table.Table`
        ``id``, ``ra``, ``dec`` and any other columns (kept).
    size : (int, int)
        Cutout size in pixels of the first band's image.
    reproject : str, optional
        Resampling of bands not on the first band's grid (see ``make_cutouts``).

    Returns
    -------
    cutouts : `~anomalymatch_astro.CutoutSet` or None
        In the order of ``sources`` (None when no source fits), with ``dataset_id_<band>``,
        ``access_url_<band>`` and ``method_<band>`` provenance columns.
    n_partial : int
        Sources left out because no image of some band holds their whole cutout.
    """
    from ..cutouts import CutoutSet, concatenate, make_cutouts

    bands = list(images)
    ra, dec = np.asarray(sources["ra"], float), np.asarray(sources["dec"], float)
    picks = pick_images(images, ra, dec, size)
    fits = np.all([picks[b] >= 0 for b in bands], axis=0)
    groups = {}
    for k in np.flatnonzero(fits):
        groups.setdefault(tuple(int(picks[b][k]) for b in bands), []).append(int(k))
    parts = []
    for key, rows in sorted(groups.items(), key=lambda kv: kv[1][0]):
        chosen = {b: images[b][i] for b, i in zip(bands, key)}
        table = sources[rows]
        cs = make_cutouts({b: chosen[b]["path"] for b in bands}, table, size, reproject=reproject, progress=False)
        t = cs.table
        for b in bands:
            for name in ("dataset_id", "access_url", "method"):
                t[f"{name}_{b}"] = [chosen[b][name]] * len(t)
        parts.append(CutoutSet(cs.data, t, cs.bands, meta={"bands": bands}))
    if not parts:
        return None, int((~fits).sum())
    cs = concatenate(parts) if len(parts) > 1 else parts[0]
    order = [str(i) for i in np.asarray(sources["id"]).astype(str)[fits]]
    cs = cs[cs.index_of(order)]
    return cs, int((~fits).sum())


def detect_sources_on_images(images, *, band=None, nsigma=3.0, npixels=8, fwhm=None):
    """Detect sources with photutils on the images of one band; one entry per object.

    Each image is background-subtracted (sigma-clipped median and standard deviation),
    smoothed with a Gaussian kernel of ``fwhm`` pixels and segmented above ``nsigma``
    sigma (deblended).  An object seen on several overlapping images is kept once, from
    the image where it lies farthest from the edge.

    Parameters
    ----------
    images : dict
        ``{band: [image dict]}``.
    band : str, optional
        The detection band (default: the first).
    nsigma : float, optional
        Detection threshold in background sigmas.
    npixels : int, optional
        Fewest connected pixels of a source.
    fwhm : float, optional
        Smoothing kernel FWHM in pixels (default 3).

    Returns
    -------
    `~astropy.table.Table`
        ``id`` (``"J<ra><dec>"`` from the position, 0.1 arcsec), ``ra``, ``dec`` (deg),
        ``flux`` (background-subtracted, image units) and ``area`` (pixels).
    """
    from astropy.convolution import Gaussian2DKernel, convolve
    from astropy.coordinates import SkyCoord
    from astropy.io import fits as pyfits
    from astropy.stats import gaussian_fwhm_to_sigma, sigma_clipped_stats
    from astropy.table import Table, vstack

    seg = require("photutils.segmentation", feature="Source detection on the images (no catalogue given)")
    band = band or next(iter(images))
    fwhm = 3.0 if fwhm is None else float(fwhm)
    found = []
    for entry in images.get(band, []):
        (ny, nx), wcs = image_footprint(entry["path"])
        with pyfits.open(entry["path"], memmap=False) as hdul:
            data = next(h.data for h in hdul if h.is_image and h.header.get("NAXIS", 0) >= 2).astype(float)
        data = np.squeeze(data)
        _, median, std = sigma_clipped_stats(data, sigma=3.0)
        data = data - median
        kernel = Gaussian2DKernel(fwhm * gaussian_fwhm_to_sigma)
        smooth = convolve(data, kernel, normalize_kernel=True, nan_treatment="fill", fill_value=0.0)
        segm = seg.detect_sources(smooth, nsigma * std, npixels)  # positional: npixels, n_pixels in photutils 3
        if segm is None:
            continue
        segm = seg.deblend_sources(smooth, segm, npixels, progress_bar=False)
        cat = seg.SourceCatalog(data, segm, convolved_data=smooth)
        new_names = hasattr(type(cat), "x_centroid")  # photutils >= 3 renamed the centroids
        x = np.asarray(cat.x_centroid if new_names else cat.xcentroid, float)
        y = np.asarray(cat.y_centroid if new_names else cat.ycentroid, float)
        good = np.isfinite(x) & np.isfinite(y)
        sky = wcs.celestial.pixel_to_world(x[good], y[good])
        t = Table()
        t["ra"], t["dec"] = sky.ra.deg, sky.dec.deg
        t["flux"] = np.asarray(cat.segment_flux, float)[good]
        t["area"] = np.asarray(cat.area.value, float)[good]
        t["_edge"] = np.minimum.reduce([x[good], nx - 1 - x[good], y[good], ny - 1 - y[good]])
        found.append(t)
    if not found:
        return Table({"id": np.zeros(0, "U1"), "ra": np.zeros(0), "dec": np.zeros(0)})
    t = vstack(found)
    t = t[np.argsort(-np.asarray(t["_edge"]), kind="stable")]
    coords = SkyCoord(t["ra"] * u.deg, t["dec"] * u.deg)
    keep = np.ones(len(t), bool)
    if len(t) > 1:  # the same object on two tiles: keep the detection farthest from an edge (first)
        first, second, _, _ = coords.search_around_sky(coords, 2 * u.arcsec)
        order = np.lexsort((second, first))  # pairs by first index: a dropped detection drops no other
        for k, j in zip(first[order], second[order]):
            if j > k and keep[k]:
                keep[j] = False
    t = t[keep]
    t.remove_column("_edge")
    t.sort(["ra", "dec"])
    names = [f"J{r:09.5f}{d:+09.5f}" for r, d in zip(t["ra"], t["dec"])]
    t.add_column(names, name="id", index=0)
    return t


def to_arrow(table):
    """A `pyarrow.Table` of the 1-d string and numeric columns of an astropy table (masks filled)."""
    import pyarrow as pa

    arrays, names = [], []
    for name in table.colnames:
        col = table[name]
        if getattr(col, "ndim", 1) != 1 or name.startswith("_"):
            continue
        values = np.ma.filled(np.ma.asarray(col)) if np.ma.isMaskedArray(col) or hasattr(col, "mask") else col
        values = np.asarray(values)
        if values.dtype.kind in "US":
            arrays.append(pa.array([str(v) for v in values], type=pa.string()))
        elif values.dtype.kind in "biuf":
            arrays.append(pa.array(values))
        else:
            continue
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)
