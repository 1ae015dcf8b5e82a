"""Residual profile features: what a smooth elliptical galaxy at the centre of a cutout does not explain.

A lens search subtracts the lens galaxy and looks at what is left around it; a morphologist
measures the light beyond a smooth profile (Astronomaly's ellipse features, the residual flux
fraction of a Sersic fit).  `profile_features` does the cheap, fit-free version of both for
every cutout and band: in elliptical annuli around the cutout's centre (the shape of the
central source from its second moments), the annulus median (the smooth profile) and how far
the pixels rise above it (the structure: arcs, rings, tidal features, companions, spiral
arms), in units of the cutout's sky noise.  Appended to the network's embeddings
(``ActiveLearningSession(profile=True)``), it gives the fast heads a description of faint
structure at each radius that globally pooled ImageNet features blur away.
"""

import warnings

import numpy as np

from ..utils.exceptions import InvalidInputError

__all__ = ["PROFILE_STATISTICS", "profile_features", "profile_width"]

#: The statistics of each annulus and band, in this order.
PROFILE_STATISTICS = ("median", "mean_excess", "p90_excess", "max_excess")

_SKY_SIGMA = 3.0  # sigma clipping of the sky estimate
_SHAPE_THRESHOLD = 2.0  # detection-image pixels (sky-noise units) that weigh in the central source's moments


def profile_width(n_bands, *, n_annuli=16):
    """The number of features `profile_features` gives per cutout."""
    return int(n_bands) * int(n_annuli) * len(PROFILE_STATISTICS)


def _sky_units(data, sigma):
    """(data - sky) / noise per cutout and band, NaN pixels set to the sky (0)."""
    from astropy.stats import sigma_clipped_stats
    from astropy.utils.exceptions import AstropyUserWarning

    with warnings.catch_warnings():  # NaN pixels are left out; all-NaN bands give NaN, replaced below
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", AstropyUserWarning)
        _, sky, noise = sigma_clipped_stats(data, axis=(-2, -1), sigma=sigma, maxiters=5)
    sky = np.nan_to_num(np.asarray(sky, dtype=np.float64), nan=0.0)
    noise = np.asarray(noise, dtype=np.float64)
    noise = np.where(np.isfinite(noise) & (noise > 0), noise, 1.0)
    z = (data - sky[..., None, None]) / noise[..., None, None]
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)


def _central_segments(above, near):
    """Per cutout, the connected pixels above the threshold that reach the centre (or come nearest to it)."""
    from scipy.ndimage import label

    out = np.zeros_like(above)
    h, w = above.shape[1:]
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx - (w - 1) / 2.0, yy - (h - 1) / 2.0)
    for i in range(len(above)):
        segments, count = label(above[i] & near)
        if count:
            own = segments[above[i] & near][np.argmin(dist[above[i] & near])]
            out[i] = segments == own
    return out


def _elliptical_radii(z, central):
    """Elliptical radius of every pixel (N, H*W) from the second moments of the central source."""
    n, _, h, w = z.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - (w - 1) / 2.0, yy - (h - 1) / 2.0
    det = z.sum(axis=1) / np.sqrt(z.shape[1])  # noise-weighted detection image
    weight = np.where(_central_segments(det > _SHAPE_THRESHOLD, np.hypot(dx, dy) <= central), det, 0.0)
    total = weight.sum(axis=(1, 2))
    safe = np.where(total > 0, total, 1.0)
    mxx = (weight * dx**2).sum(axis=(1, 2)) / safe
    myy = (weight * dy**2).sum(axis=(1, 2)) / safe
    mxy = (weight * dx * dy).sum(axis=(1, 2)) / safe
    theta = 0.5 * np.arctan2(2.0 * mxy, mxx - myy)  # the major axis
    half_diff = np.sqrt(((mxx - myy) / 2.0) ** 2 + mxy**2)
    major, minor = (mxx + myy) / 2.0 + half_diff, (mxx + myy) / 2.0 - half_diff
    q = np.sqrt(np.clip(minor, 0.0, None) / np.where(major > 0, major, 1.0))
    q = np.where(total > 0, np.clip(q, 0.2, 1.0), 1.0)  # no central source: circular annuli
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = dx * c + dy * s
    v = -dx * s + dy * c
    return np.hypot(u, v / q[:, None, None]).reshape(n, -1)


def profile_features(cutouts, *, n_annuli=16, max_radius=0.375, smooth=1.0, batch_size=2048):
    """Radial residual profile of every cutout: the smooth profile and the structure above it, per band.

    For each cutout and band the pixels are put in units of the cutout's sky noise (sky and
    noise from `astropy.stats.sigma_clipped_stats` of the whole cutout, 3 sigma, NaN pixels
    set to the sky) and smoothed with a Gaussian of ``smooth`` pixels.  The shape of the
    central source (axis ratio and position angle, from the second moments of the pixels
    above 2 sigma of the noise-weighted band sum within a quarter of the side of the centre)
    defines ``n_annuli`` elliptical annuli of equal width out to ``max_radius`` times the
    cutout side.  In each annulus and band four numbers (``PROFILE_STATISTICS``): the median
    (the smooth profile) and, of the pixels minus that median, the mean of the positive part,
    the 90th percentile and the maximum (the light a smooth elliptical profile does not
    explain: arcs, rings, tidal features, companions, spiral arms), each compressed with
    ``arcsinh``.  Every cutout is measured on its own: a cutout's features never depend on
    the other cutouts.

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet` or array-like
        The cutouts, or their pixels as an (N, C, H, W) array.
    n_annuli : int, optional
        Number of elliptical annuli (radius bins along the major axis).
    max_radius : float, optional
        Outer radius of the last annulus, as a fraction of the cutout side (``0.375``: three
        quarters of the way to the edge; the corners are left out).
    smooth : float, optional
        Standard deviation (pixels) of the Gaussian smoothing before the statistics (``0``:
        none); about the PSF's, so that faint extended light rises above the pixel noise.
    batch_size : int, optional
        Cutouts processed at once (bounds the memory).

    Returns
    -------
    numpy.ndarray
        float32 (N, C * n_annuli * 4): for each band, for each annulus from the centre out,
        the four statistics.  An annulus without pixels (the smallest ones of a very small
        cutout) gives zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro.embeddings import profile_features
    >>> noise = np.random.default_rng(0).normal(size=(48, 48))
    >>> yy, xx = np.mgrid[:48, :48] - 23.5
    >>> galaxy = 50 * np.exp(-np.hypot(xx, yy) / 3) + noise          # a smooth galaxy on noise ...
    >>> arc = galaxy + 3 * np.exp(-0.5 * (np.hypot(xx, yy) - 10) ** 2) * (xx > 0)  # ... with a 3-sigma arc at 10 px
    >>> f = profile_features(np.stack([galaxy, arc])[:, None], n_annuli=6).reshape(2, 6, 4)  # annuli 3 px wide
    >>> p90 = f[:, :, 2]                                               # the 90th percentile above the annulus median
    >>> int(np.argmax(p90[1] - p90[0]))                                # the arc's annulus, 9 to 12 px
    3
    """
    if hasattr(cutouts, "iter_batches"):  # a CutoutSet: read batch by batch (a lazy set is never read whole)
        n, c, (h, w) = len(cutouts), len(cutouts.bands), cutouts.image_shape
        batches = cutouts.iter_batches(batch_size=int(batch_size))
    else:
        data = np.asarray(cutouts)
        if data.ndim != 4:
            msg = f"expected cutouts of shape (N, C, H, W), got {data.shape}"
            raise InvalidInputError(msg)
        n, c, h, w = data.shape
        batches = (
            (np.arange(i, min(n, i + int(batch_size))), data[i : i + int(batch_size)])
            for i in range(0, n, int(batch_size))
        )
    if int(n_annuli) != n_annuli or n_annuli < 1:
        msg = f"n_annuli must be a positive integer, got {n_annuli!r}"
        raise InvalidInputError(msg)
    if not 0 < float(max_radius) <= 0.75:
        msg = f"max_radius is a fraction of the cutout side in (0, 0.75], got {max_radius!r}"
        raise InvalidInputError(msg)
    if not float(smooth) >= 0:
        msg = f"smooth must be >= 0 pixels, got {smooth!r}"
        raise InvalidInputError(msg)
    out = np.zeros((n, c, int(n_annuli), len(PROFILE_STATISTICS)), dtype=np.float32)
    edges = np.linspace(0.0, float(max_radius) * min(h, w), int(n_annuli) + 1)
    for rows, pixels in batches:
        out[rows] = _batch(np.asarray(pixels, dtype=np.float64), edges, float(smooth), min(h, w) / 4)
    return out.reshape(n, -1)


def _batch(data, edges, smooth, central):
    from scipy.ndimage import gaussian_filter

    z = _sky_units(data, _SKY_SIGMA)
    if smooth > 0:
        z = gaussian_filter(z, sigma=(0, 0, smooth, smooth), mode="nearest")
    radii = _elliptical_radii(z, central)
    n, c = z.shape[:2]
    flat = z.reshape(n, c, -1)
    which = np.digitize(radii, edges) - 1  # (N, H*W): the annulus of each pixel, -1 / len(edges)-1 outside
    feats = np.zeros((n, c, len(edges) - 1, len(PROFILE_STATISTICS)))
    with warnings.catch_warnings():  # an empty annulus: all-NaN slices, set to 0 below
        warnings.simplefilter("ignore", RuntimeWarning)
        for j in range(len(edges) - 1):
            vals = np.where((which == j)[:, None, :], flat, np.nan)
            med = np.nanmedian(vals, axis=-1)
            excess = vals - med[..., None]
            feats[:, :, j, 0] = med
            feats[:, :, j, 1] = np.nanmean(np.clip(excess, 0.0, None), axis=-1)
            feats[:, :, j, 2] = np.nanpercentile(excess, 90, axis=-1)
            feats[:, :, j, 3] = np.nanmax(excess, axis=-1)
    return np.arcsinh(np.nan_to_num(feats, nan=0.0)).astype(np.float32)
