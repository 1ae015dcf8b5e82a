"""The local sky level of each cutout and band: a sigma-clipped median, in numpy and in torch.

One algorithm, two implementations side by side so that they stay the same (the numpy one
serves `Normalizer`, the torch one `normalize_tensor`):

1. the pixels considered are the finite pixels of the band, all of them (``"median"``) or those
   of an annulus around the centre (``"annulus"``, see `annulus_mask`), taken in float64;
2. they are sorted once; the pixels kept are always a contiguous run of that order;
3. ``BACKGROUND_ITERS`` (5) times: the median ``m`` (mean of the two middle values for an even
   count) and the standard deviation ``s`` (population, ``ddof=0``, two-pass) of the kept
   pixels; those outside ``[m - sigma s, m + sigma s]`` are dropped for good (a pixel dropped
   once never comes back, as in `astropy.stats.sigma_clip`);
4. the sky is the median of the pixels kept; a band without any considered pixel has sky 0.

This is `astropy.stats.sigma_clipped_stats` with its defaults (``cenfunc="median"``,
``stdfunc="std"``, ``maxiters=5``; astropy stops early when nothing is clipped, which gives
the same result) up to float64 rounding.  torch is imported inside the functions.
"""

import numpy as np

__all__ = ["BACKGROUNDS", "BACKGROUND_ITERS", "annulus_mask", "sky_levels", "sky_levels_tensor"]

#: The ``background`` options of `Normalizer` (None: no subtraction).
BACKGROUNDS = (None, "median", "annulus")

#: The fixed number of clipping iterations (astropy's ``maxiters`` default).
BACKGROUND_ITERS = 5


def annulus_mask(height, width, annulus):
    """Boolean (height * width,) mask of the pixels in the annulus, row-major.

    A pixel (y, x) is in the annulus when ``inner <= r <= outer`` with
    ``r = hypot((y - (height - 1) / 2) / height, (x - (width - 1) / 2) / width)``: radii are
    fractions of the cutout side (per axis for a non-square cutout), measured from the
    centre of the cutout, in float64.

    Parameters
    ----------
    height, width : int
        The cutout shape.
    annulus : (float, float)
        Inner and outer radius as fractions of the side.

    Returns
    -------
    `numpy.ndarray`
        bool, shape (height * width,).

    Examples
    --------
    >>> from anomalymatch_astro.normalization._background import annulus_mask
    >>> m = annulus_mask(8, 8, (0.35, 0.5)).reshape(8, 8)
    >>> bool(m[0, 3]), bool(m[4, 4]), bool(m[0, 0])
    (True, False, False)
    """
    inner, outer = annulus
    yy = (np.arange(height, dtype=np.float64) - (height - 1) / 2.0) / height
    xx = (np.arange(width, dtype=np.float64) - (width - 1) / 2.0) / width
    r = np.hypot(yy[:, None], xx[None, :])
    return ((r >= inner) & (r <= outer)).reshape(-1)


def _run_stats(ordered, start, end):
    """Median, mean-free std of ``ordered[..., start:end]`` per row (numpy, float64)."""
    n = end - start
    n_safe = np.maximum(n, 1)
    last = ordered.shape[-1] - 1
    i_a = np.clip(start + (n - 1) // 2, 0, last)[..., None]
    i_b = np.clip(start + n // 2, 0, last)[..., None]
    median = (np.take_along_axis(ordered, i_a, -1)[..., 0] + np.take_along_axis(ordered, i_b, -1)[..., 0]) / 2.0
    idx = np.arange(ordered.shape[-1])
    inside = (idx >= start[..., None]) & (idx < end[..., None])
    kept = np.where(inside, ordered, 0.0)
    mean = kept.sum(-1) / n_safe
    dev = np.where(inside, ordered - mean[..., None], 0.0)
    std = np.sqrt((dev * dev).sum(-1) / n_safe)
    return median, std


def sky_levels(batch, *, mode, sigma, annulus):
    """The sigma-clipped sky level of every cutout and band (numpy).

    Parameters
    ----------
    batch : `numpy.ndarray`
        (N, C, H, W) pixels.
    mode : {"median", "annulus"}
        Whole cutout or annulus (see the module docstring).
    sigma : float
        The clipping threshold in standard deviations.
    annulus : (float, float)
        For ``mode="annulus"``: inner and outer radius as fractions of the side.

    Returns
    -------
    `numpy.ndarray`
        float64, shape (N, C).
    """
    n, c, h, w = batch.shape
    flat = batch.reshape(n, c, h * w)
    if mode == "annulus":
        flat = flat[..., annulus_mask(h, w, annulus)]
    if flat.shape[-1] == 0 or n * c == 0:
        return np.zeros((n, c), np.float64)
    flat = flat.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        ordered = np.sort(np.where(np.isfinite(flat), flat, np.inf), axis=-1)
        count = np.isfinite(ordered).sum(-1)
        start, end = np.zeros_like(count), count
        for _ in range(BACKGROUND_ITERS):
            median, std = _run_stats(ordered, start, end)
            lo = (median - sigma * std)[..., None]
            hi = (median + sigma * std)[..., None]
            new_start = np.maximum(start, (ordered < lo).sum(-1))
            new_end = np.minimum(end, (ordered <= hi).sum(-1))
            keep = new_end > new_start  # never empty in exact arithmetic; rounding must not make it so
            start, end = np.where(keep, new_start, start), np.where(keep, new_end, end)
        median, _ = _run_stats(ordered, start, end)
    return np.where(count > 0, median, 0.0)


def _run_stats_tensor(ordered, start, end):
    import torch

    n = end - start
    n_safe = n.clamp_min(1)
    last = ordered.shape[-1] - 1
    i_a = (start + torch.div(n - 1, 2, rounding_mode="floor")).clamp(0, last)[..., None]
    i_b = (start + torch.div(n, 2, rounding_mode="floor")).clamp(0, last)[..., None]
    median = (ordered.gather(-1, i_a)[..., 0] + ordered.gather(-1, i_b)[..., 0]) / 2.0
    idx = torch.arange(ordered.shape[-1], device=ordered.device)
    inside = (idx >= start[..., None]) & (idx < end[..., None])
    kept = torch.where(inside, ordered, 0.0)
    mean = kept.sum(-1) / n_safe
    dev = torch.where(inside, ordered - mean[..., None], 0.0)
    std = torch.sqrt((dev * dev).sum(-1) / n_safe)
    return median, std


def sky_levels_tensor(batch, *, mode, sigma, annulus):
    """`sky_levels` in torch, on the tensor's device; float64 (N, C)."""
    import torch

    n, c, h, w = batch.shape
    flat = batch.reshape(n, c, h * w)
    if mode == "annulus":
        mask = torch.from_numpy(annulus_mask(h, w, annulus)).to(batch.device)
        flat = flat[..., mask]
    if flat.shape[-1] == 0 or n * c == 0:
        return torch.zeros((n, c), dtype=torch.float64, device=batch.device)
    flat = flat.to(torch.float64)
    ordered = torch.where(torch.isfinite(flat), flat, torch.inf).sort(dim=-1).values
    count = torch.isfinite(ordered).sum(-1)
    start, end = torch.zeros_like(count), count
    for _ in range(BACKGROUND_ITERS):
        median, std = _run_stats_tensor(ordered, start, end)
        lo = (median - sigma * std)[..., None]
        hi = (median + sigma * std)[..., None]
        new_start = torch.maximum(start, (ordered < lo).sum(-1))
        new_end = torch.minimum(end, (ordered <= hi).sum(-1))
        keep = new_end > new_start
        start, end = torch.where(keep, new_start, start), torch.where(keep, new_end, end)
    median, _ = _run_stats_tensor(ordered, start, end)
    return torch.where(count > 0, median, 0.0)
