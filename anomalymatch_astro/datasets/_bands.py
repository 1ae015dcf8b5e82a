"""The pixel grids of the mock survey's bands, and the drawing of objects on them.

Each band has its own celestial TAN grid (rotated, coarser, offset); objects are
drawn on small local stamps evaluated in sky offsets (arcsec east/north of the
object) through the band's CD matrix.  Extended light goes to a "smooth" image that
is convolved with the band's PSF once at the end; stars, trails and cosmic rays go
to a "sharp" image drawn with the PSF already applied (or none, for cosmic rays).
"""

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy.signal import oaconvolve

from ..utils.exceptions import InvalidInputError
from . import _render as R
from ._recipes import _MAGZERO

__all__ = []


def _default_fwhm(n_bands):
    """Seeing improving from blue to red, like a ground-based survey: 0.95" .. 0.75"."""
    if n_bands == 1:
        return np.array([0.85])
    return np.linspace(0.95, 0.75, n_bands)


def _cd_matrix(scale_deg, rotation_deg):
    t = np.deg2rad(rotation_deg)
    c, s = np.cos(t), np.sin(t)
    return scale_deg * np.array([[-c, s], [s, c]])


def _make_header(crval, crpix, cd, shape, band, extra):
    h = fits.Header()
    h["CTYPE1"] = "RA---TAN"
    h["CTYPE2"] = "DEC--TAN"
    h["CUNIT1"] = "deg"
    h["CUNIT2"] = "deg"
    h["CRVAL1"] = float(crval[0])
    h["CRVAL2"] = float(crval[1])
    h["CRPIX1"] = float(crpix[0])
    h["CRPIX2"] = float(crpix[1])
    h["CD1_1"] = float(cd[0, 0])
    h["CD1_2"] = float(cd[0, 1])
    h["CD2_1"] = float(cd[1, 0])
    h["CD2_2"] = float(cd[1, 1])
    h["RADESYS"] = "ICRS"
    h["FILTER"] = band
    h["MAGZERO"] = (_MAGZERO, "AB-like zero point of the pixel values")
    for key, value in extra.items():
        h[key] = value
    return h


def _band_grids(bands, ref_shape, crval, pixel_scale_deg, rotation_deg, scale_factor, pad):
    """One (WCS header, shape) per band; band 0 is the reference grid.

    Band 1 is rotated by ``rotation_deg``, band 2 has ``scale_factor`` times the pixel
    scale, later bands alternate (rotation and scale together, opposite rotation ...).
    Each grid is sized to cover the whole reference footprint plus ``pad`` arcsec.
    """
    ny, nx = ref_shape
    ref_cd = _cd_matrix(pixel_scale_deg, 0.0)
    ref_crpix = ((nx + 1) / 2.0, (ny + 1) / 2.0)
    ref_hdr = _make_header(crval, ref_crpix, ref_cd, ref_shape, bands[0], {})
    ref_wcs = WCS(ref_hdr)
    corners = ref_wcs.pixel_to_world([-0.5, nx - 0.5, nx - 0.5, -0.5], [-0.5, -0.5, ny - 0.5, ny - 0.5])
    grids = [(ref_hdr, ref_shape)]
    for k in range(1, len(bands)):
        mode = (k - 1) % 3
        rot = {0: rotation_deg, 1: 0.0, 2: -0.6 * rotation_deg}[mode]
        scl = {0: 1.0, 1: scale_factor, 2: 0.5 * (1.0 + scale_factor)}[mode]
        scale = pixel_scale_deg * scl
        cd = _cd_matrix(scale, rot)
        # a small pointing offset between bands (different exposures)
        off = np.array([2.0 * k, -1.5 * k]) / 3600.0
        centre = (crval[0] + off[0] / np.cos(np.deg2rad(crval[1])), crval[1] + off[1])
        trial = WCS(_make_header(centre, (0.0, 0.0), cd, ref_shape, bands[k], {}))
        x, y = trial.world_to_pixel(corners)
        pad_pix = pad / (scale * 3600.0)
        x0, x1 = x.min() - pad_pix, x.max() + pad_pix
        y0, y1 = y.min() - pad_pix, y.max() + pad_pix
        shape = (int(np.ceil(y1 - y0)) + 1, int(np.ceil(x1 - x0)) + 1)
        crpix = (1.0 - x0, 1.0 - y0)  # pixel x0 (0-based) becomes 0
        grids.append((_make_header(centre, crpix, cd, shape, bands[k], {}), shape))
    return grids


def _profile(name, params, xi, eta):
    p = {k: v for k, v in params.items() if not k.startswith("_")}
    xi = xi - params.get("_dx", 0.0)
    eta = eta - params.get("_dy", 0.0)
    if name == "sersic":
        return R.sersic(xi, eta, **p)
    if name == "spiral":
        return R.spiral_disk(xi, eta, **p)
    if name == "lensed":
        return R.lensed_sersic(xi, eta, **p)
    if name == "blobs":
        return R.gaussian_blobs(xi, eta, **p)
    msg = f"unknown profile {name!r}"
    raise InvalidInputError(msg)


class _Band:
    """One band's grid and the arrays being drawn on it."""

    def __init__(self, header, shape, fwhm, psf, sky_sigma, oversample):
        self.header = header
        self.shape = shape
        self.wcs = WCS(header)
        self.cd = np.array([[header["CD1_1"], header["CD1_2"]], [header["CD2_1"], header["CD2_2"]]]) * 3600.0
        self.cd_inv = np.linalg.inv(self.cd)
        self.scale = float(np.sqrt(abs(np.linalg.det(self.cd))))  # arcsec / pix
        self.pix_area = self.scale**2
        self.fwhm = fwhm
        self.psf = psf
        self.sky_sigma = sky_sigma
        self.sub = R.subpixel_offsets(oversample)
        self.smooth = np.zeros(shape, dtype=np.float32)  # convolved with the PSF later
        self.sharp = np.zeros(shape, dtype=np.float32)  # stars, trails, cosmic rays

    def grid(self, x, y, half):
        """Sky offsets (arcsec) of sub-pixel samples of a stamp around pixel position (x, y)."""
        ix0, iy0 = int(np.round(x)) - half, int(np.round(y)) - half
        n = 2 * half + 1
        px = ix0 + np.arange(n)[:, None] + self.sub[None, :] - x  # (n, s)
        py = iy0 + np.arange(n)[:, None] + self.sub[None, :] - y
        s = len(self.sub)
        gx = np.broadcast_to(px[None, None, :, :], (n, s, n, s))  # (y, sy, x, sx)
        gy = np.broadcast_to(py[:, :, None, None], (n, s, n, s))
        xi = self.cd[0, 0] * gx + self.cd[0, 1] * gy
        eta = self.cd[1, 0] * gx + self.cd[1, 1] * gy
        return ix0, iy0, xi, eta

    def add(self, target, ix0, iy0, stamp):
        ny, nx = self.shape
        h, w = stamp.shape
        x0, y0 = max(ix0, 0), max(iy0, 0)
        x1, y1 = min(ix0 + w, nx), min(iy0 + h, ny)
        if x1 <= x0 or y1 <= y0:
            return
        target[y0:y1, x0:x1] += stamp[y0 - iy0 : y1 - iy0, x0 - ix0 : x1 - ix0]

    def draw_components(self, x, y, comps, k, extent):
        half = int(np.clip(np.ceil(extent / self.scale), 6, 60))
        ix0, iy0, xi, eta = self.grid(x, y, half)
        n = 2 * half + 1
        stamp = np.zeros((n, n))
        for name, params, flux, norm in comps:
            if flux[k] <= 0:
                continue
            prof = _profile(name, params, xi, eta).mean(axis=(1, 3))
            if norm == "sum":
                total = prof.sum()
                if total > 0:
                    stamp += flux[k] * prof / total
            else:
                stamp += flux[k] * prof * self.pix_area
        self.add(self.smooth, ix0, iy0, stamp.astype(np.float32))

    def draw_star(self, x, y, flux):
        wings = 1 + np.log10(max(flux, 10.0)) / 2  # brighter stars: larger stamps
        half = int(np.clip(np.ceil(2.5 * self.fwhm / self.scale * wings), 6, 60))
        ix0, iy0, xi, eta = self.grid(x, y, half)
        prof = R.psf_profile(xi, eta, fwhm=self.fwhm, kind=self.psf).mean(axis=(1, 3))
        self.add(self.sharp, ix0, iy0, (flux * prof / prof.sum()).astype(np.float32))

    def draw_trail(self, x, y, *, offset, angle, half_length, amplitude):
        """A satellite trail: a straight PSF-wide streak passing ``offset`` arcsec from (x, y)."""
        half = int(np.ceil((half_length + 1.0) / self.scale))
        ix0, iy0, xi, eta = self.grid(x, y, half)
        u_ = np.array([np.cos(angle), np.sin(angle)])
        nrm = np.array([-u_[1], u_[0]])
        t = xi * u_[0] + eta * u_[1]
        d = xi * nrm[0] + eta * nrm[1] - offset
        sigma = self.fwhm / 2.3548
        taper = 1.0 / (1.0 + np.exp(-(half_length - np.abs(t)) / 0.3))
        stamp = (amplitude * np.exp(-0.5 * (d / sigma) ** 2) * taper).mean(axis=(1, 3))
        self.add(self.sharp, ix0, iy0, stamp.astype(np.float32))

    def draw_cosmic_ray(self, x, y, rng):
        """A sharp (not PSF-blurred) streak of a few hot pixels near (x, y)."""
        off = self.cd_inv @ rng.uniform(-1.0, 1.0, 2)
        length = rng.uniform(2.0, 8.0)
        ang = rng.uniform(0, np.pi)
        s = np.linspace(0, length, int(4 * length) + 2)
        px = np.round(x + off[0] + s * np.cos(ang)).astype(int)
        py = np.round(y + off[1] + s * np.sin(ang)).astype(int)
        pts = np.unique(np.stack([py, px], axis=1), axis=0)
        ok = (pts[:, 0] >= 0) & (pts[:, 0] < self.shape[0]) & (pts[:, 1] >= 0) & (pts[:, 1] < self.shape[1])
        pts = pts[ok]
        hits = self.sky_sigma * rng.uniform(25, 90, len(pts))
        self.sharp[pts[:, 0], pts[:, 1]] += hits.astype(np.float32)

    def finish(self, noise_rng):
        kernel = R.psf_kernel(self.fwhm / self.scale, kind=self.psf)
        image = oaconvolve(self.smooth, kernel, mode="same").astype(np.float32)
        image += self.sharp
        image += noise_rng.standard_normal(self.shape, dtype=np.float32) * np.float32(self.sky_sigma)
        return image


def make_bands(grids, fwhm, psf, sky_sigma, scale_arcsec):
    """One `_Band` per ``(header, shape)`` grid; the sky noise scales with the pixel scale (same depth per arcsec^2)."""
    band_objs = []
    for k, (hdr, shape) in enumerate(grids):
        scale_k = np.sqrt(abs(hdr["CD1_1"] * hdr["CD2_2"] - hdr["CD1_2"] * hdr["CD2_1"])) * 3600.0
        band_objs.append(_Band(hdr, shape, fwhm[k], psf, sky_sigma * scale_k / scale_arcsec, oversample=2))
    return band_objs
