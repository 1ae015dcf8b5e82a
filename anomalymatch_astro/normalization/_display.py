"""Colour composites for display (Lupton et al. 2004 via astropy), as float RGB in [0, 1]."""

import numpy as np
from astropy.visualization import make_lupton_rgb

from ..utils.exceptions import InvalidInputError
from ._background import sky_levels
from ._stretch import Normalizer

__all__ = ["SKY_MODES", "lupton_rgb", "make_rgb"]


def _one_cutout(cutout):
    """``cutout`` as a (C, H, W) float32 array (a 2-D image is one band)."""
    cutout = np.asarray(cutout, dtype=np.float32)
    if cutout.ndim == 2:
        cutout = cutout[None]
    if cutout.ndim != 3:
        msg = f"expected one cutout of shape (C, H, W), got {cutout.shape}"
        raise InvalidInputError(msg)
    return cutout


def _three_planes(cutout):
    cutout = _one_cutout(cutout)
    c = cutout.shape[0]
    if c == 1:
        planes = [cutout[0]] * 3
    elif c == 2:
        planes = [cutout[1], 0.5 * (cutout[0] + cutout[1]), cutout[0]]
    else:  # bluest -> blue, reddest -> red (bands in wavelength order, e.g. g, r, i)
        planes = [cutout[-1], cutout[c // 2], cutout[0]]
    return [np.nan_to_num(p, nan=0.0, posinf=0.0, neginf=0.0) for p in planes]


#: The ``sky`` options of `lupton_rgb` and `make_rgb` (None: no per-band subtraction).
SKY_MODES = (None, "median", "annulus")

#: Sigma-clipping threshold of the per-band sky level of the composites.
SKY_SIGMA = 3.0


def _scaled_sky_subtracted(cutout, *, band_scales, sky, annulus=(0.35, 0.5)):
    """(C, H, W) float32 cutout, each band times its flux scale, minus its sigma-clipped sky."""
    cutout = _one_cutout(cutout)
    if sky not in SKY_MODES:
        msg = f"sky must be one of {SKY_MODES}, got {sky!r}"
        raise InvalidInputError(msg)
    if band_scales is not None:
        scales = np.asarray(band_scales, dtype=np.float64).reshape(-1)
        if scales.shape[0] != cutout.shape[0] or not np.all(np.isfinite(scales)):
            msg = f"band_scales needs one finite factor per band ({cutout.shape[0]}), got {band_scales!r}"
            raise InvalidInputError(msg)
        cutout = (cutout * scales[:, None, None]).astype(np.float32)
    if sky is not None:
        levels = sky_levels(cutout[None], mode=sky, sigma=SKY_SIGMA, annulus=annulus)[0]
        cutout = (cutout - levels[:, None, None]).astype(np.float32)
    return cutout


def lupton_rgb(cutout, *, stretch=None, Q=8, minimum=None, band_scales=None, sky="median"):
    """Lupton asinh colour composite of one (C, H, W) cutout, as float RGB (H, W, 3) in [0, 1].

    Bands are taken in wavelength order (``bands[0]`` bluest): the reddest band goes to
    red, the bluest to blue, the middle one to green; one or two bands are mapped to grey /
    a two-colour composite.  Before the mapping each band is multiplied by its
    ``band_scales`` factor (a common flux unit, see
    `~anomalymatch_astro.normalization.band_flux_scales`) and its own sky level is
    subtracted (``sky``), so that an unsubtracted sky that differs between bands does not
    tint the whole composite.

    Parameters
    ----------
    cutout : array-like
        Shape (C, H, W) or (H, W).
    stretch : float, optional
        Linear stretch of the Lupton mapping; default: the 99.5th percentile minus the
        black level of the composite, so faint and bright cutouts are both visible.
    Q : float, optional
        Asinh softening of the Lupton mapping (small: closer to linear; large: brings up
        faint structure and compresses bright cores).
    minimum : float, optional
        Black level; default: the median of the composite (after sky subtraction, about 0).
    band_scales : sequence of float, optional
        One factor per band that puts the bands on one flux scale (e.g. from
        `~anomalymatch_astro.normalization.band_flux_scales`); default: the pixels as they are.
    sky : {"median", "annulus", None}, optional
        Per-band sky subtracted before the mapping: the sigma-clipped (3 sigma, 5 iterations)
        median of each band over the whole cutout (``"median"``, the default) or over the
        annulus ``0.35 <= r <= 0.5`` of the cutout side around the centre (``"annulus"``, for
        an object that fills the cutout), as in ``Normalizer(background=...)``; ``None``: none.

    Returns
    -------
    `numpy.ndarray`
        float32 array (H, W, 3).
    """
    r, g, b = _three_planes(_scaled_sky_subtracted(cutout, band_scales=band_scales, sky=sky))
    stack = np.stack([r, g, b])
    if minimum is None:
        minimum = float(np.median(stack))
    if stretch is None:
        stretch = max(float(np.percentile(stack, 99.5)) - minimum, 1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):  # empty cutouts: astropy divides 0 by 0
        rgb = make_lupton_rgb(r, g, b, minimum=minimum, stretch=stretch, Q=Q, output_dtype=np.float64)
    rgb = np.nan_to_num(rgb, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def make_rgb(cutout, *, method="lupton", normalizer=None, band_scales=None, sky="median", Q=8, stretch=None):
    """A displayable RGB (H, W, 3) float image of one cutout.

    Parameters
    ----------
    cutout : array-like
        Shape (C, H, W).
    method : {"lupton", "normalized"}, optional
        ``"lupton"``: `~anomalymatch_astro.normalization.lupton_rgb`.  ``"normalized"``: each band
        through ``normalizer``
        (default asinh + percentile), then mapped to RGB like `~anomalymatch_astro.normalization.lupton_rgb`.
    normalizer : `~anomalymatch_astro.normalization.Normalizer`, optional
        Used by ``method="normalized"`` (its own ``background`` option subtracts the sky there).
    band_scales : sequence of float, optional
        One factor per band applied before either method (see
        `~anomalymatch_astro.normalization.band_flux_scales`); with ``"normalized"`` it only
        matters for a Normalizer with ``per_band=False``.
    sky : {"median", "annulus", None}, optional
        Per-band sky subtraction of ``method="lupton"`` (see
        `~anomalymatch_astro.normalization.lupton_rgb`).
    Q, stretch : float, optional
        The Lupton mapping's parameters, for ``method="lupton"``.

    Returns
    -------
    `numpy.ndarray`
        float32 (H, W, 3) in [0, 1].
    """
    if method == "lupton":
        return lupton_rgb(cutout, band_scales=band_scales, sky=sky, Q=Q, stretch=stretch)
    if method == "normalized":
        normalizer = normalizer or Normalizer()
        pixels = np.asarray(cutout, dtype=np.float32)
        if band_scales is not None:
            pixels = _scaled_sky_subtracted(pixels, band_scales=band_scales, sky=None)
        planes = _three_planes(normalizer(pixels))
        return np.clip(np.stack(planes, axis=-1), 0, 1).astype(np.float32)
    msg = f"method must be 'lupton' or 'normalized', got {method!r}"
    raise InvalidInputError(msg)
