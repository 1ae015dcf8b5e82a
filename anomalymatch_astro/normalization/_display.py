"""Colour composites for display (Lupton et al. 2004 via astropy), as float RGB in [0, 1]."""

import numpy as np
from astropy.visualization import make_lupton_rgb

from ..utils.exceptions import InvalidInputError
from ._stretch import Normalizer

__all__ = ["lupton_rgb", "make_rgb"]


def _three_planes(cutout):
    cutout = np.asarray(cutout, dtype=np.float32)
    if cutout.ndim == 2:
        cutout = cutout[None]
    if cutout.ndim != 3:
        msg = f"expected one cutout of shape (C, H, W), got {cutout.shape}"
        raise InvalidInputError(msg)
    c = cutout.shape[0]
    if c == 1:
        planes = [cutout[0]] * 3
    elif c == 2:
        planes = [cutout[1], 0.5 * (cutout[0] + cutout[1]), cutout[0]]
    else:  # bluest -> blue, reddest -> red (bands in wavelength order, e.g. g, r, i)
        planes = [cutout[-1], cutout[c // 2], cutout[0]]
    return [np.nan_to_num(p, nan=0.0, posinf=0.0, neginf=0.0) for p in planes]


def lupton_rgb(cutout, *, stretch=None, Q=8, minimum=None):
    """Lupton asinh colour composite of one (C, H, W) cutout, as float RGB (H, W, 3) in [0, 1].

    Bands are taken in wavelength order (``bands[0]`` bluest): the reddest band goes to
    red, the bluest to blue, the middle one to green; one or two bands are mapped to grey /
    a two-colour composite.

    Parameters
    ----------
    cutout : array-like
        Shape (C, H, W) or (H, W).
    stretch : float, optional
        Linear stretch of the Lupton mapping; default: the 99.5th percentile minus the
        median of the composite, so faint and bright cutouts are both visible.
    Q : float, optional
        Asinh softening of the Lupton mapping.
    minimum : float, optional
        Black level; default: the median of each cutout (sky).

    Returns
    -------
    `numpy.ndarray`
        float32 array (H, W, 3).
    """
    r, g, b = _three_planes(cutout)
    stack = np.stack([r, g, b])
    if minimum is None:
        minimum = float(np.median(stack))
    if stretch is None:
        stretch = max(float(np.percentile(stack, 99.5)) - minimum, 1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):  # empty cutouts: astropy divides 0 by 0
        rgb = make_lupton_rgb(r, g, b, minimum=minimum, stretch=stretch, Q=Q, output_dtype=np.float64)
    rgb = np.nan_to_num(rgb, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def make_rgb(cutout, *, method="lupton", normalizer=None):
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
        Used by ``method="normalized"``.

    Returns
    -------
    `numpy.ndarray`
        float32 (H, W, 3) in [0, 1].
    """
    if method == "lupton":
        return lupton_rgb(cutout)
    if method == "normalized":
        normalizer = normalizer or Normalizer()
        planes = _three_planes(normalizer(np.asarray(cutout, dtype=np.float32)))
        return np.clip(np.stack(planes, axis=-1), 0, 1).astype(np.float32)
    msg = f"method must be 'lupton' or 'normalized', got {method!r}"
    raise InvalidInputError(msg)
