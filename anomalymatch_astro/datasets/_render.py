"""Small vectorised surface-brightness models used to draw the synthetic data sets.

Every profile is a plain numpy function of offsets ``(x, y)`` from the object's
centre, in any consistent unit (arcsec on the sky for the mock survey, pixels for
the benchmark stamps).  Position angles are in radians, measured from the ``+y``
axis towards the ``+x`` axis (north through east on the sky, where ``x`` points
east).  Nothing here knows about WCS or FITS.
"""

import numpy as np
from scipy.special import gamma, gammaincinv

__all__ = []


def sersic_b(n):
    """The Sersic ``b_n`` such that ``r_eff`` encloses half of the light."""
    return gammaincinv(2.0 * n, 0.5)


def _rotate(x, y, pa):
    """Offsets along (major, minor) axes for a position angle ``pa`` (rad, +y through +x)."""
    s, c = np.sin(pa), np.cos(pa)
    major = x * s + y * c
    minor = x * c - y * s
    return major, minor


def sersic(x, y, *, n, r_eff, q=1.0, pa=0.0):
    """Sersic surface brightness normalised to unit total flux (per unit area of ``x, y``).

    ``r_eff`` is the semi-major half-light radius, ``q`` the axis ratio b/a.
    """
    major, minor = _rotate(x, y, pa)
    r = np.sqrt(major**2 + (minor / q) ** 2)
    b = sersic_b(n)
    total = 2.0 * np.pi * q * r_eff**2 * n * np.exp(b) * b ** (-2.0 * n) * gamma(2.0 * n)
    return np.exp(-b * ((r / r_eff) ** (1.0 / n) - 1.0)) / total


def spiral_disk(x, y, *, r_eff, q=1.0, pa=0.0, n_arms=2, pitch=0.35, amplitude=0.8, phase=0.0):
    """An exponential disk modulated by logarithmic spiral arms (not normalised)."""
    major, minor = _rotate(x, y, pa)
    minor = minor / q
    r = np.sqrt(major**2 + minor**2) + 1e-6 * r_eff
    theta = np.arctan2(minor, major)
    arms = 0.5 * (1.0 + np.cos(n_arms * (theta - np.log(r / r_eff) / np.tan(pitch)) + phase))
    disk = np.exp(-sersic_b(1.0) * r / r_eff)
    # arms fade towards the centre (where the bulge dominates) and far out
    weight = amplitude * (1.0 - np.exp(-((r / (0.5 * r_eff)) ** 2)))
    return disk * ((1.0 - weight) + 2.0 * weight * arms**2.0)


def lensed_sersic(x, y, *, theta_e, src_x, src_y, n, r_eff, q=1.0, pa=0.0):
    """Surface brightness of a Sersic source behind a singular isothermal sphere.

    The lens equation ``beta = theta - theta_e * theta / |theta|`` maps every image
    position back to the source plane; surface brightness is conserved, so the
    returned image (per unit area, for a source of unit total flux) already carries
    the lensing magnification: arcs near the Einstein radius and a counter-image.
    """
    r = np.sqrt(x**2 + y**2) + 1e-9
    bx = x - theta_e * x / r - src_x
    by = y - theta_e * y / r - src_y
    return sersic(bx, by, n=n, r_eff=r_eff, q=q, pa=pa)


def gaussian_blobs(x, y, *, centres, sigma, weights):
    """A sum of round Gaussian blobs (e.g. along a tidal tail), unit total flux."""
    centres = np.asarray(centres, dtype=float)
    weights = np.asarray(weights, dtype=float)
    weights = weights / weights.sum()
    out = np.zeros(np.broadcast(x, y).shape)
    for (cx, cy), w in zip(centres, weights):
        out += w * np.exp(-0.5 * ((x - cx) ** 2 + (y - cy) ** 2) / sigma**2)
    return out / (2.0 * np.pi * sigma**2)


def moffat(x, y, *, fwhm, beta=3.5):
    """Round Moffat profile of the given FWHM, unit total flux."""
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    return (beta - 1.0) / (np.pi * alpha**2) * (1.0 + (x**2 + y**2) / alpha**2) ** (-beta)


def gaussian(x, y, *, fwhm):
    """Round Gaussian profile of the given FWHM, unit total flux."""
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    return np.exp(-0.5 * (x**2 + y**2) / sigma**2) / (2.0 * np.pi * sigma**2)


def psf_profile(x, y, *, fwhm, kind="moffat", beta=3.5):
    """The point-spread function: ``kind`` is ``"moffat"`` or ``"gaussian"``."""
    if kind == "gaussian":
        return gaussian(x, y, fwhm=fwhm)
    return moffat(x, y, fwhm=fwhm, beta=beta)


def psf_kernel(fwhm_pix, *, kind="moffat", beta=3.5, oversample=3):
    """A normalised, odd-sized PSF kernel in pixels (pixel-integrated by oversampling)."""
    half = int(np.ceil(3.0 * fwhm_pix)) + 1
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    grid = np.arange(-half, half + 1)
    fine = (grid[:, None] + sub[None, :]).ravel()
    yy, xx = np.meshgrid(fine, fine, indexing="ij")
    k = psf_profile(xx, yy, fwhm=fwhm_pix, kind=kind, beta=beta)
    size = 2 * half + 1
    k = k.reshape(size, oversample, size, oversample).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


def subpixel_offsets(oversample):
    """Offsets of the sub-pixel sample centres within one pixel."""
    return (np.arange(oversample) + 0.5) / oversample - 0.5
