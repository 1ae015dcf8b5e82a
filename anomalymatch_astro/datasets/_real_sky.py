"""A benchmark set on real sky: the Hubble eXtreme Deep Field with anomalies injected as a survey records them.

The field is scikit-image's ``skimage.data.hubble_deep_field()`` (installed with
scikit-image, no download), the sources come from photutils segmentation and
deblending, and the field's own stars, diffraction spikes and deblended fragments stay
in as the normal population; anomalies are added around real galaxies of the field.
"""

import functools
import logging
import warnings

import numpy as np
from astropy import units as u
from astropy.table import Table
from astropy.wcs import WCS

from ..utils import require
from ..utils.exceptions import InvalidInputError, PartialOverlapWarning
from ._real_sky_inject import ANOMALY_RECIPES, inject

__all__ = ["make_real_sky_set", "xdf_field", "REAL_SKY_ANOMALIES", "XDF_PIXEL_SCALE"]

log = logging.getLogger(__name__)

#: The anomaly kinds of `make_real_sky_set`.
REAL_SKY_ANOMALIES = tuple(ANOMALY_RECIPES)

#: The pixel scale given to the XDF image (arcsec per pixel).
XDF_PIXEL_SCALE = 0.13

_BANDS = ("blue", "green", "red")
_DETECT_SIGMA = 5.0  # threshold on the smoothed detection image, in its own (clipped) noise
_NPIX = 20
#: The stars of the field with diffraction spikes (found by eye on the image, in the flipped pixel
#: frame of `xdf_field`): x, y and the radius (pixels) of their halo and spikes.
_XDF_STARS = ((753.8, 292.9, 70.0), (253.4, 704.9, 50.0), (146.0, 653.0, 25.0))
_SNR = {"arcs": (20.0, 45.0), "mergers": (15.0, 35.0), "trails": (20.0, 45.0), "colour": (0.0, 0.0)}


def _xdf_wcs(shape):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [53.1625, -27.7914]  # the XDF / Hubble Ultra Deep Field centre
    wcs.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    wcs.wcs.cdelt = [-XDF_PIXEL_SCALE / 3600, XDF_PIXEL_SCALE / 3600]
    return wcs


@functools.lru_cache(maxsize=1)
def _field():
    from astropy.stats import sigma_clipped_stats
    from skimage.data import hubble_deep_field

    rgb = np.asarray(hubble_deep_field(), dtype=np.float32)
    # rows flipped so that row 0 is the bottom (FITS convention, north up); bands by wavelength
    image = np.ascontiguousarray(rgb[::-1, :, ::-1].transpose(2, 0, 1))
    sky, noise = np.empty(3), np.empty(3)
    for b in range(3):
        _, sky[b], noise[b] = sigma_clipped_stats(image[b], sigma=3.0, maxiters=5)
    image -= sky[:, None, None].astype(np.float32)
    return image, noise


def xdf_field():
    """The Hubble eXtreme Deep Field of scikit-image as a sky-subtracted float image with a WCS.

    ``skimage.data.hubble_deep_field()`` is an 8-bit RGB colour composite (872 x 1000
    pixels; values 0-255 after a display stretch, so not linear in flux, and saturated at
    255 in the cores of the brightest objects).  Here its 3 channels are treated as 3
    bands (``"blue"``, ``"green"``, ``"red"``, in that order), converted to float, the
    rows flipped so that row 0 is the bottom, and each band's sky (the sigma-clipped
    median, 3 sigma, 5 iterations) subtracted.  The sky noise is the sigma-clipped
    standard deviation of each band (about 5.4, 5.4 and 6.0 of the 8-bit units).  The WCS
    is a TAN projection at 0.13 arcsec per pixel centred on the Hubble Ultra Deep Field.

    Returns
    -------
    image : numpy.ndarray
        (3, 872, 1000) float32, sky-subtracted (a copy).
    wcs : `~astropy.wcs.WCS`
    noise : numpy.ndarray
        (3,) sky noise per band.
    """
    require("skimage", feature="the real-sky benchmark set (scikit-image's Hubble Deep Field)")
    image, noise = _field()
    return image.copy(), _xdf_wcs(image.shape[1:]), noise.copy()


@functools.lru_cache(maxsize=1)
def _detection():
    """Segmentation (parents), deblended segmentation and the source table of the unmodified field."""
    require("photutils", feature="the real-sky benchmark set (source detection)")
    from astropy.convolution import convolve
    from astropy.stats import sigma_clipped_stats
    from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources, make_2dgaussian_kernel

    image, noise = _field()
    det = (image / noise[:, None, None]).sum(axis=0) / np.sqrt(3.0)
    smooth = convolve(det, make_2dgaussian_kernel(3.0, size=7))
    threshold = _DETECT_SIGMA * sigma_clipped_stats(smooth, sigma=3.0, maxiters=5)[2]
    parents = detect_sources(smooth, threshold, _NPIX)
    deblended = deblend_sources(smooth, parents, _NPIX, contrast=0.01, progress_bar=False)
    cat = SourceCatalog(det, deblended, convolved_data=smooth)
    labels = np.asarray(cat.label)
    table = Table(
        {
            "label": labels,
            "x": np.asarray(_attr(cat, "x_centroid", "xcentroid"), dtype=np.float64),
            "y": np.asarray(_attr(cat, "y_centroid", "ycentroid"), dtype=np.float64),
            "flux": np.asarray(cat.segment_flux, dtype=np.float64),
            "peak": np.asarray(cat.max_value, dtype=np.float64),
            "area": np.asarray(cat.area.value, dtype=np.float64),
            "semimajor_sigma": np.asarray(_attr(cat, "semimajor_axis", "semimajor_sigma").value, dtype=np.float64),
            "semiminor_sigma": np.asarray(_attr(cat, "semiminor_axis", "semiminor_sigma").value, dtype=np.float64),
            "orientation": np.asarray(cat.orientation.value, dtype=np.float64),
            "bbox_xmin": np.asarray(cat.bbox_xmin),
            "bbox_ymin": np.asarray(cat.bbox_ymin),
            "bbox_xmax": np.asarray(cat.bbox_xmax),
            "bbox_ymax": np.asarray(cat.bbox_ymax),
        }
    )
    pmap = np.asarray(parents.data)
    dmap = np.asarray(deblended.data)
    # the parent of each deblended piece: the parent label under its pixels
    table["system"] = [int(np.bincount(pmap[dmap == lab]).argmax()) for lab in labels]
    _flag_artefacts(table)
    return pmap, dmap, table


def _attr(cat, name, old_name):
    """A SourceCatalog property under its photutils >= 3 name, or its older name."""
    return getattr(cat, name) if hasattr(type(cat), name) else getattr(cat, old_name)


def _flag_artefacts(table):
    """Columns ``is_star``, ``star_zone``, ``fragment`` and ``artefact`` (in place)."""
    x, y = np.asarray(table["x"]), np.asarray(table["y"])
    is_star = np.zeros(len(table), dtype=bool)
    zone = np.zeros(len(table), dtype=bool)
    for sx, sy, radius in _XDF_STARS:
        d = np.hypot(x - sx, y - sy)
        is_star[np.argmin(d)] = True
        zone |= d <= radius
    zone &= ~is_star
    table["is_star"] = is_star
    table["star_zone"] = zone
    fragment = np.zeros(len(table), dtype=bool)
    systems = np.asarray(table["system"])
    flux = np.asarray(table["flux"])
    for s in np.unique(systems):
        rows = np.flatnonzero(systems == s)
        if len(rows) > 1:
            fragment[rows[rows != rows[np.argmax(flux[rows])]]] = True
    table["fragment"] = fragment
    table["artefact"] = zone | fragment


def _pick_hosts(table, n, rng, image_shape, margin, min_sep):
    """Rows of real galaxies to host the anomalies: isolated, not stars, not artefacts, mid-bright."""
    h, w = image_shape
    x, y, flux = np.asarray(table["x"]), np.asarray(table["y"]), np.asarray(table["flux"])
    ok = ~np.asarray(table["artefact"]) & ~np.asarray(table["is_star"])
    ok &= (x > margin) & (x < w - margin) & (y > margin) & (y < h - margin)
    ok &= (flux > np.percentile(flux, 40)) & (np.asarray(table["area"]) >= 40)
    chosen = []
    for r in rng.permutation(np.flatnonzero(ok)):
        if all(np.hypot(x[r] - x[c], y[r] - y[c]) >= min_sep for c in chosen):
            chosen.append(int(r))
        if len(chosen) == n:
            break
    if len(chosen) < n:
        msg = f"the field has room for only {len(chosen)} well-separated hosts; ask for n_anomalies <= {len(chosen)}"
        raise InvalidInputError(msg)
    return np.asarray(chosen)


def _segment_pixels(image, dmap, row):
    """(3, h, w) sky-subtracted pixels of a source's segment inside its bounding box (zero elsewhere)."""
    sl = (
        slice(int(row["bbox_ymin"]), int(row["bbox_ymax"]) + 1),
        slice(int(row["bbox_xmin"]), int(row["bbox_xmax"]) + 1),
    )
    own = dmap[sl] == row["label"]
    return np.where(own[None], image[(slice(None),) + sl], 0.0)


def _trail_members(table, info, radius):
    """Rows whose centre lies within ``radius`` pixels of a trail segment."""
    x0, y0, ang, offset, half = info["trail"]
    dx, dy = np.asarray(table["x"]) - x0, np.asarray(table["y"]) - y0
    along = dx * np.cos(ang) + dy * np.sin(ang)
    across = -dx * np.sin(ang) + dy * np.cos(ang) - offset
    dist = np.hypot(np.clip(np.abs(along) - half, 0.0, None), across)
    return np.flatnonzero(dist <= radius)


def make_real_sky_set(
    *,
    anomaly="arcs",
    n_anomalies=30,
    seed=0,
    cutout_size=64,
    mask_neighbours=False,
    keep_blended=False,
    snr=None,
    edge_margin=8,
    progress=False,
    return_field=False,
):
    """Real sky: cutouts of every source of the Hubble XDF, with anomalies injected around real galaxies.

    The field is `xdf_field` (scikit-image's 8-bit RGB XDF as 3 float bands, sky-subtracted,
    TAN WCS at 0.13"/px).  Sources: photutils segmentation of the noise-weighted sum of the
    bands (smoothed with a 3-pixel Gaussian, 5 sigma, 20 pixels) and deblending (32 levels,
    contrast 0.01): about 1000 sources, all kept as normals, including the field's stars,
    the sources in their halos and diffraction spikes and the deblended fragments of
    large galaxies.  ``n_anomalies`` host galaxies (isolated, not stars or artefacts,
    brighter than the median source, at least ``cutout_size / 2`` apart) then get one
    anomaly each, drawn in the sky-subtracted pixels (so the field's own noise is the
    noise) and blurred by the image's resolution (Gaussian, FWHM 2 px):

    ``"arcs"``
        A faint lensed arc or ring: a compact blue Sersic source behind a singular
        isothermal sphere of Einstein radius 6-14 px (0.8-1.8") centred on the host.
        Integrated matched-filter S/N 20-45 over the 3 bands, i.e. a peak of about
        1-3 sigma per pixel: what a lens search at survey depth sees.
    ``"mergers"``
        Another real galaxy of the field (its deblended segment's pixels, 0.3-1 times the
        host's flux) pasted 1.6-2.6 combined radii from the host, plus a faint tidal tail
        (S/N 15-35).
    ``"trails"``
        A short satellite streak (36-72 px, width 2 px, one band dominant, S/N 20-45)
        through a host; every source within ``cutout_size / 8`` of it is an anomaly, and
        streaks are added until ``n_anomalies`` sources are marked (a few more at most).
    ``"colour"``
        The host's own light multiplied by 2-3.5 in one band.

    With 30 anomalies among the 1007 sources the anomalies are 3 % of the set
    (``meta["anomaly_fraction"]``); each seed picks other hosts and other anomalies.

    Parameters
    ----------
    anomaly : {"arcs", "mergers", "trails", "colour"}, optional
        What is injected.
    n_anomalies : int, optional
        Hosts that get an anomaly (trails mark more sources: those they cross).
    seed : int, optional
        Random seed (hosts and anomaly parameters); the same seed gives the same set.
    cutout_size : int, optional
        Side of the cutouts (pixels).
    mask_neighbours : bool, optional
        Replace the pixels of other sources in every cutout with background noise
        (`~anomalymatch_astro.cutouts.mask_neighbours` with the deblended segmentation).
    keep_blended : bool, optional
        With ``mask_neighbours``, keep the deblended pieces touching each source's own
        (``mask_neighbours(..., keep_blended=True)``).
    snr : (float, float), optional
        Range of the integrated S/N of the injected light (defaults above).
    edge_margin : int, optional
        Sources whose centre is closer than this to the image edge are left out; the
        cutouts of the others that reach beyond the edge are filled with 0 (the sky level)
        there.
    progress : bool, optional
        Progress bars.
    return_field : bool, optional
        Also return a dict with the injected ``image`` (3, H, W), ``wcs``, ``noise``,
        ``segmentation`` (parents) and ``deblended`` maps.

    Returns
    -------
    `~anomalymatch_astro.CutoutSet`
        Table columns: ``class`` (``"galaxy"``, ``"star"`` or the anomaly's class),
        ``is_anomaly``, ``system`` (the segmentation parent: the deblended pieces of one
        detection share it), ``is_star``, ``star_zone`` (within the halo / spike zone of a
        bright star), ``fragment`` (a deblended piece that is not the brightest of its
        parent), ``artefact`` (``star_zone | fragment``), ``label`` (deblended segment),
        ``x``, ``y``, ``flux``, ``semimajor_sigma``, ``semiminor_sigma`` (pixels),
        ``orientation`` (deg), ``snr`` and ``peak_snr`` of the injected light (NaN for
        normals).

    Examples
    --------
    >>> from anomalymatch_astro.datasets import make_real_sky_set
    >>> cs = make_real_sky_set(anomaly="arcs", n_anomalies=20, seed=0, cutout_size=32)  # doctest: +SKIP
    >>> int(cs.table["is_anomaly"].sum()), cs.bands  # doctest: +SKIP
    (20, ('blue', 'green', 'red'))
    """
    if anomaly not in ANOMALY_RECIPES:
        msg = f"anomaly must be one of {REAL_SKY_ANOMALIES}, got {anomaly!r}"
        raise InvalidInputError(msg)
    if int(n_anomalies) != n_anomalies or n_anomalies < 1:
        msg = f"n_anomalies must be a positive integer, got {n_anomalies!r}"
        raise InvalidInputError(msg)
    if int(cutout_size) != cutout_size or cutout_size < 16:
        msg = f"cutout_size must be an integer >= 16, got {cutout_size!r}"
        raise InvalidInputError(msg)
    image, wcs, noise = xdf_field()
    pmap, dmap, table = _detection()
    table = table.copy()
    rng = np.random.default_rng([int(seed), 16])
    hosts = _pick_hosts(table, int(n_anomalies), rng, image.shape[1:], cutout_size / 2, cutout_size / 2)
    host_rows = [dict(zip(table.colnames, table[r])) for r in hosts]
    kwargs = {}
    if anomaly == "mergers":
        pool = np.setdiff1d(np.flatnonzero(~table["artefact"] & ~table["is_star"] & (table["area"] >= 40)), hosts)
        donors = rng.choice(pool, len(hosts), replace=False)
        kwargs["donors"] = [dict(zip(table.colnames, table[r])) for r in donors]
        kwargs["donor_pixels"] = [_segment_pixels(image, dmap, table[r]) for r in donors]
    if anomaly == "colour":
        kwargs["masks"] = [dmap == table["label"][r] for r in hosts]
    n = len(table)
    truth = np.zeros(n, dtype=bool)
    if anomaly == "trails":  # one streak at a time, until the sources they cross are n_anomalies
        infos, used = [], []
        for r, row in zip(hosts, host_rows):
            if truth.sum() >= n_anomalies:
                break
            infos += inject(anomaly, image, noise, [row], rng, snr_range=snr or _SNR[anomaly])
            truth[_trail_members(table, infos[-1], cutout_size / 8)] = True
            truth[r] = True
            used.append(r)
        hosts = np.asarray(used)
    else:
        infos = inject(anomaly, image, noise, host_rows, rng, snr_range=snr or _SNR[anomaly], **kwargs)
        truth[hosts] = True
    snr_col, peak_col = np.full(n, np.nan), np.full(n, np.nan)
    snr_col[hosts] = [i["snr"] for i in infos]
    peak_col[hosts] = [i["peak_snr"] for i in infos]
    cls = np.where(table["is_star"], "star", "galaxy").astype("U16")
    cls[truth] = ANOMALY_RECIPES[anomaly]
    table["class"] = cls
    table["is_anomaly"] = truth
    table["snr"] = snr_col
    table["peak_snr"] = peak_col
    h, w = image.shape[1:]
    keep = (table["x"] >= edge_margin) & (table["x"] < w - edge_margin)
    keep &= (table["y"] >= edge_margin) & (table["y"] < h - edge_margin)
    table = table[keep]
    segmentation = dmap if mask_neighbours else None
    cs = _cut(image, wcs, table, int(cutout_size), progress, segmentation, int(seed), bool(keep_blended))
    cs.meta.update(
        benchmark="real_sky",
        field="xdf",
        anomaly=anomaly,
        anomaly_class=ANOMALY_RECIPES[anomaly],
        anomaly_fraction=float(np.mean(table["is_anomaly"])),
        seed=int(seed),
        pixel_scale_arcsec=XDF_PIXEL_SCALE,
        sky_noise=[float(v) for v in noise],
        mask_neighbours=bool(mask_neighbours),
        keep_blended=bool(mask_neighbours and keep_blended),
    )
    if return_field:
        field = {"image": image, "wcs": wcs, "noise": noise, "segmentation": pmap, "deblended": dmap}
        return cs, field
    return cs


def _cut(image, wcs, table, size, progress, segmentation, seed, keep_blended=False):
    from ..cutouts import CutoutSet, make_cutouts, mask_neighbours

    coords = wcs.pixel_to_world(np.asarray(table["x"]), np.asarray(table["y"]))
    ids = [f"xdf{int(lab):04d}" for lab in table["label"]]
    positions = Table({"id": ids, "coord": coords})
    images = {band: (image[b], wcs) for b, band in enumerate(_BANDS)}
    with warnings.catch_warnings():  # sources near the edge: outside the image is the sky level, 0
        warnings.simplefilter("ignore", PartialOverlapWarning)
        cs = make_cutouts(images, positions, size, fill_value=0.0, progress=progress)
    out = table.copy()
    if segmentation is not None:
        cs = mask_neighbours(
            cs, segmentation=segmentation, wcs=wcs, seed=seed, keep_blended=keep_blended, progress=progress
        )
        out["n_masked"] = cs.table["n_masked"]
    data = np.asarray(cs.data)
    for name in ("semimajor_sigma", "semiminor_sigma"):
        out[name] = out[name] * u.pix
    out["orientation"] = out["orientation"] * u.deg
    cols = ["class", "is_anomaly", "system", "is_star", "star_zone", "fragment", "artefact", "label", "x", "y"]
    cols += ["flux", "semimajor_sigma", "semiminor_sigma", "orientation", "snr", "peak_snr"]
    cols += ["n_masked"] if segmentation is not None else []
    return CutoutSet.from_arrays(data, ids=ids, bands=_BANDS, coords=cs.coords, table=out[cols], meta=dict(cs.meta))
