"""A deterministic synthetic multi-band imaging survey with injected anomalies.

`make_mock_survey` draws a small sky survey -- stars, bulge+disk and elliptical
galaxies, faint uncatalogued background galaxies, PSF blur and sky noise -- into
one FITS mosaic per band, each band on its OWN pixel grid (a rotated one, a
coarser one ...) with a real celestial TAN WCS, so that any cutout tool has to
reproject.  A few per cent of the catalogued objects are anomalies of four kinds:
strong gravitational lenses, mergers, image artefacts and odd colours.  It also
writes the truth catalogue (ECSV).

Objects are drawn on small local stamps, evaluated in sky coordinates (arcsec
east/north of the object) through each band's WCS, and added into that band's
mosaic; the whole mosaic is then convolved with the band's PSF once.  Stars,
satellite trails and cosmic rays are drawn after the convolution.
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy.signal import oaconvolve

from ..utils.exceptions import InvalidInputError
from . import _render as R

__all__ = ["MockSurvey", "make_mock_survey", "make_lens_survey", "ANOMALY_KINDS"]

log = logging.getLogger(__name__)

#: The anomaly kinds `make_mock_survey` can inject.
ANOMALY_KINDS = ("lens", "merger", "trail", "colour")

_MAGZERO = 30.0
_STAR_FRACTION = 0.2


@dataclass
class MockSurvey:
    """A synthetic survey written by `make_mock_survey`: FITS mosaics and a truth catalogue.

    Attributes
    ----------
    images : dict
        ``{band: path}`` of the FITS mosaics, one per band, in band order.
    catalog_path : `pathlib.Path`
        The ECSV truth catalogue.
    catalog : `~astropy.table.Table`
        The truth catalogue: ``id``, ``ra``, ``dec`` (deg), ``kind``, ``is_anomaly``,
        ``mag_<band>``, ``sersic_n``, ``r_eff_arcsec``, ``axis_ratio``, ``pa_deg``, ``detail``.
    bands : tuple of str
        Band names, blue to red.
    reference_band : str
        The band whose pixel grid is the survey's reference grid (the first band).
    pixel_scale : `~astropy.units.Quantity`
        Pixel scale of the reference band.
    directory : `pathlib.Path`
        Where the files are.
    """

    images: dict
    catalog_path: Path
    catalog: Table
    bands: tuple
    reference_band: str
    pixel_scale: u.Quantity
    directory: Path
    meta: dict = field(default_factory=dict)

    @property
    def coords(self):
        """`~astropy.coordinates.SkyCoord` of the catalogued objects."""
        return SkyCoord(self.catalog["ra"], self.catalog["dec"], unit="deg", frame="icrs")

    @property
    def is_anomaly(self):
        """Boolean truth array, one per catalogued object."""
        return np.asarray(self.catalog["is_anomaly"], dtype=bool)

    def wcs(self, band):
        """The celestial `~astropy.wcs.WCS` of ``band``'s mosaic."""
        return WCS(fits.getheader(self.images[band]))


# ----------------------------------------------------------------------------- helpers
def _check_args(n_objects, bands, anomaly_fraction, anomaly_kinds, pixel_scale):
    if isinstance(bands, str):
        bands = (bands,)
    bands = tuple(str(b) for b in bands)
    if not bands or len(set(bands)) != len(bands):
        msg = f"bands must be a non-empty sequence of unique names, got {bands!r}"
        raise InvalidInputError(msg)
    if int(n_objects) != n_objects or n_objects < 1:
        msg = f"n_objects must be a positive integer, got {n_objects!r}"
        raise InvalidInputError(msg)
    if not 0.0 <= float(anomaly_fraction) < 1.0:
        msg = f"anomaly_fraction must be in [0, 1), got {anomaly_fraction!r}"
        raise InvalidInputError(msg)
    if isinstance(anomaly_kinds, str):
        anomaly_kinds = (anomaly_kinds,)
    anomaly_kinds = tuple(anomaly_kinds)
    unknown = [k for k in anomaly_kinds if k not in ANOMALY_KINDS]
    if unknown or (anomaly_fraction > 0 and not anomaly_kinds):
        msg = f"anomaly_kinds must be chosen from {ANOMALY_KINDS}; got {anomaly_kinds!r}"
        raise InvalidInputError(msg)
    if "colour" in anomaly_kinds and len(bands) < 2:
        msg = "'colour' anomalies need at least two bands; pass more bands or drop 'colour' from anomaly_kinds"
        raise InvalidInputError(msg)
    try:
        pixel_scale = u.Quantity(pixel_scale, u.arcsec)
    except (TypeError, u.UnitsError) as exc:
        msg = f"pixel_scale must be an angle (e.g. 0.2 * u.arcsec), got {pixel_scale!r}"
        raise InvalidInputError(msg) from exc
    if not pixel_scale.isscalar or pixel_scale <= 0:
        msg = f"pixel_scale must be a positive scalar angle, got {pixel_scale!r}"
        raise InvalidInputError(msg)
    return int(n_objects), bands, float(anomaly_fraction), anomaly_kinds, pixel_scale


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


def _mags_from_colour(m0, c, n_bands, scatter, rng):
    """Band magnitudes from a mid-band magnitude and a colour per band step (red if c > 0)."""
    t = np.arange(n_bands) - (n_bands - 1) / 2.0
    return m0 - c * t + scatter * rng.standard_normal(n_bands)


def _flux(mag):
    return 10.0 ** (-0.4 * (np.asarray(mag, dtype=float) - _MAGZERO))


def _size_for_mag(m0, base, rng, spread=0.25):
    return base * 10.0 ** (-0.12 * (m0 - 21.0)) * 10.0 ** (spread * rng.uniform(-1, 1))


# ----------------------------------------------------------------------------- object recipes
# A component is (profile_name, params, flux per band, normalisation) with normalisation
# "sum" (the stamp is rescaled to the flux) or "area" (profile is per arcsec^2, flux conserved
# through lensing magnification).
def _normal_galaxy(rng, n_bands, m0, *, kind=None):
    """A normal galaxy: an elliptical or a bulge+disk (some with spiral arms)."""
    if kind is None:
        kind = "elliptical" if rng.random() < 0.35 else ("spiral" if rng.random() < 0.4 else "disk")
    pa = rng.uniform(0, np.pi)
    if kind == "elliptical":
        n = float(np.round(rng.uniform(2.5, 5.0), 1))
        r_e = _size_for_mag(m0, 0.7, rng)
        q = rng.uniform(0.5, 1.0)
        mags = _mags_from_colour(m0, rng.normal(0.55, 0.06), n_bands, 0.03, rng)
        comps = [("sersic", dict(n=n, r_eff=r_e, q=q, pa=pa), _flux(mags), "sum")]
        return comps, dict(sersic_n=n, r_eff=r_e, q=q, pa=pa, mags=mags, detail=kind)
    r_d = _size_for_mag(m0, 1.1, rng)
    q = rng.uniform(0.25, 1.0)
    bt = rng.uniform(0.1, 0.45)
    mag_tot = _mags_from_colour(m0, rng.normal(0.3, 0.08), n_bands, 0.03, rng)
    # bulge redder than disk at fixed total colour
    t = np.arange(n_bands) - (n_bands - 1) / 2.0
    f_tot = _flux(mag_tot)
    f_bulge = f_tot * bt * 10.0 ** (0.4 * 0.15 * t)
    f_disk = np.clip(f_tot - f_bulge, 0.05 * f_tot, None)
    bulge_params = dict(n=4.0, r_eff=rng.uniform(0.2, 0.4) * r_d, q=min(1.0, q + 0.3), pa=pa)
    bulge = ("sersic", bulge_params, f_bulge, "sum")
    if kind == "spiral":
        disk = (
            "spiral",
            dict(
                r_eff=r_d,
                q=q,
                pa=pa,
                n_arms=int(rng.choice([2, 2, 3])),
                pitch=rng.uniform(0.25, 0.45),
                amplitude=rng.uniform(0.5, 0.9),
                phase=rng.uniform(0, 2 * np.pi),
            ),
            f_disk,
            "sum",
        )
    else:
        disk = ("sersic", dict(n=1.0, r_eff=r_d, q=q, pa=pa), f_disk, "sum")
    mags = _MAGZERO - 2.5 * np.log10(f_bulge + f_disk)
    return [bulge, disk], dict(sersic_n=1.0, r_eff=r_d, q=q, pa=pa, mags=mags, detail=kind)


def _deflector(rng, n_bands):
    """A bright, round, red elliptical: a lens galaxy, or a lens-like normal target."""
    m0 = rng.uniform(19.0, 21.0)
    comps, info = _normal_galaxy(rng, n_bands, m0, kind="elliptical")
    info["q"] = comps[0][1]["q"] = rng.uniform(0.7, 1.0)
    return m0, comps, info


def _lens(rng, n_bands, *, hard):
    m0, comps, info = _deflector(rng, n_bands)
    if hard:
        theta_e = rng.uniform(0.8, 1.5)
        src_r = rng.uniform(0.05, 0.1)
        src_off = rng.uniform(0.3, 0.7) * theta_e
        src_m = m0 + rng.uniform(3.2, 4.2)
    else:
        theta_e = rng.uniform(1.2, 2.0)
        src_r = rng.uniform(0.1, 0.25)
        src_off = rng.uniform(0.0, 0.5) * theta_e
        src_m = m0 + rng.uniform(2.3, 3.0)
    phi = rng.uniform(0, 2 * np.pi)
    src_mags = _mags_from_colour(src_m, rng.normal(-0.35, 0.08), n_bands, 0.03, rng)  # blue source
    src = (
        "lensed",
        dict(
            theta_e=theta_e,
            src_x=src_off * np.cos(phi),
            src_y=src_off * np.sin(phi),
            n=1.0,
            r_eff=src_r,
            q=rng.uniform(0.5, 1.0),
            pa=rng.uniform(0, np.pi),
        ),
        _flux(src_mags),
        "area",
    )
    ring = src_off < 0.15 * theta_e
    info["detail"] = f"{'hard_' if hard else ''}sis_{'ring' if ring else 'arc'}"
    info["extent"] = theta_e + 1.5
    return [*comps, src], info


def _merger(rng, n_bands):
    m0 = rng.uniform(19.5, 21.5)
    sep = rng.uniform(1.0, 2.4)
    phi = rng.uniform(0, 2 * np.pi)
    f2 = rng.uniform(0.3, 1.0)  # flux ratio secondary/primary
    d1 = np.array([np.cos(phi), np.sin(phi)]) * sep * f2 / (1 + f2)  # flux-weighted centre at 0
    d2 = -np.array([np.cos(phi), np.sin(phi)]) * sep / (1 + f2)
    comps = []
    infos = []
    for d, m in ((d1, m0 + 2.5 * np.log10(1 + f2)), (d2, m0 + 2.5 * np.log10(1 + f2) - 2.5 * np.log10(f2))):
        c, info = _normal_galaxy(rng, n_bands, m, kind=rng.choice(["disk", "spiral"]))
        for comp in c:
            comp[1]["_dx"], comp[1]["_dy"] = d
        comps.extend(c)
        infos.append(info)
    # a curved tidal tail leaving the primary on the side away from the secondary
    start = d1
    direction = -np.array([np.cos(phi), np.sin(phi)])
    perp = np.array([-direction[1], direction[0]]) * rng.choice([-1, 1])
    length = rng.uniform(1.5, 3.0)
    s = np.linspace(0.2, 1.0, 12)
    path = s[:, None] * (-direction)[None, :] + 0.8 * s[:, None] ** 2 * perp[None, :]
    pts = start[None, :] + length * path
    tail_mags = _mags_from_colour(m0 + rng.uniform(1.2, 2.0), 0.15, n_bands, 0.03, rng)
    comps.append(
        ("blobs", dict(centres=pts, sigma=rng.uniform(0.2, 0.35), weights=np.exp(-1.5 * s)), _flux(tail_mags), "sum")
    )
    flux = sum(c[2] for c in comps)
    info = dict(infos[0])
    info["mags"] = _MAGZERO - 2.5 * np.log10(flux)
    info["detail"] = "merger"
    info["extent"] = sep + length + 2.0
    return comps, info


def _colour_anomaly(rng, n_bands):
    m0 = rng.uniform(19.5, 22.0)
    comps, info = _normal_galaxy(rng, n_bands, m0)
    choice = rng.integers(3)
    if choice == 0:
        k = int(rng.integers(n_bands))
        mags = np.full(n_bands, m0 + rng.uniform(2.5, 3.5))
        mags[k] = m0
        detail = f"one_band_{k}"
    elif choice == 1:
        mags = _mags_from_colour(m0, rng.uniform(-1.3, -0.9), n_bands, 0.03, rng)
        detail = "extreme_blue"
    else:
        mags = _mags_from_colour(m0, rng.uniform(1.4, 1.9), n_bands, 0.03, rng)
        detail = "extreme_red"
    total = sum(c[2] for c in comps)
    new = _flux(mags)
    comps = [(c[0], c[1], c[2] / total * new, c[3]) for c in comps]
    info["mags"] = mags
    info["detail"] = detail
    return comps, info


# ----------------------------------------------------------------------------- drawing
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


# ----------------------------------------------------------------------------- public API
def make_mock_survey(
    directory,
    *,
    n_objects=1500,
    bands=("g", "r", "i"),
    anomaly_fraction=0.03,
    anomaly_kinds=ANOMALY_KINDS,
    seed=0,
    pixel_scale=0.2 * u.arcsec,
    center=None,
    psf_fwhm=None,
    psf="moffat",
    sky_sigma=5.0,
    spacing=72,
    rotation=25 * u.deg,
    scale_factor=1.5,
    n_background=None,
    population="mixed",
    n_field=None,
    hard_lens=False,
    prefix="mock",
    progress=False,
):
    """Write a deterministic synthetic multi-band survey with injected anomalies.

    The survey is one FITS mosaic per band plus an ECSV truth catalogue.  The bands
    lie on different pixel grids: the first (reference) band at ``pixel_scale``
    with north up, the second rotated by ``rotation`` through its CD matrix, the
    third at ``scale_factor`` times the pixel scale (later bands alternate), each
    with a small pointing offset -- so that cutting matched multi-band cutouts
    needs reprojection.  Every image has a celestial TAN WCS centred near
    ``center``.

    The sky holds stars (Moffat or Gaussian PSF, colours from blue to red),
    ellipticals (Sersic n = 2.5-5, red), bulge + disk galaxies (some with spiral
    arms, bluer disks), faint uncatalogued background galaxies, PSF blur with a
    band-dependent FWHM and Gaussian sky noise.  Catalogued objects sit on a
    jittered grid ``spacing`` reference pixels apart, so 64-pixel cutouts rarely
    overlap.  A fraction ``anomaly_fraction`` of them are anomalies, shared
    evenly among ``anomaly_kinds``:

    ``"lens"``
        a red elliptical with blue lensed arcs or an Einstein ring (a Sersic source
        behind a singular isothermal sphere, Einstein radius 1.2-2.0").
    ``"merger"``
        two overlapping disk galaxies 1-2.4" apart with a curved tidal tail.
    ``"trail"``
        an image artefact over a normal object in ONE band only: a satellite trail
        (a PSF-wide streak about 12" long through the object) or a cosmic-ray hit
        (a few sharp hot pixels).
    ``"colour"``
        a galaxy with an unusual spectral energy distribution: bright in one band
        only, or far bluer or redder than any normal galaxy.

    Parameters
    ----------
    directory : str or path-like
        Output directory (created if needed); files there with the same names are overwritten.
    n_objects : int, optional
        Number of catalogued objects.
    bands : sequence of str, optional
        Band names, blue to red; the first is the reference band.
    anomaly_fraction : float, optional
        Fraction of catalogued objects that are anomalies (rounded to a whole number).
    anomaly_kinds : sequence of str, optional
        Which kinds to inject, from ``ANOMALY_KINDS``.
    seed : int or None, optional
        Random seed; the same seed gives identical files (None: a fresh seed, recorded
        in the catalogue's ``meta["seed"]``).
    pixel_scale : `~astropy.units.Quantity`, optional
        Pixel scale of the reference band.
    center : `~astropy.coordinates.SkyCoord`, optional
        Field centre (default RA 150.1, Dec 2.2 deg, in the COSMOS field).
    psf_fwhm : sequence of float or `~astropy.units.Quantity`, optional
        PSF FWHM per band (arcsec); default from 0.95" (bluest) to 0.75" (reddest).
    psf : {"moffat", "gaussian"}, optional
        PSF shape (Moffat beta = 3.5).
    sky_sigma : float, optional
        Sky noise per reference-band pixel (counts at zero point 30); coarser
        grids get proportionally more per pixel (same depth per arcsec^2).
    spacing : int, optional
        Grid spacing of the catalogued objects in reference pixels.
    rotation : `~astropy.units.Quantity`, optional
        Rotation of the second band's grid.
    scale_factor : float, optional
        Pixel-scale ratio of the third band to the reference band.
    n_background : int, optional
        Number of faint uncatalogued background galaxies (default ``2 * n_objects``).
    population : {"mixed", "ellipticals"}, optional
        What the catalogued normal objects are: ``"mixed"`` (20% stars, ellipticals,
        disk and spiral galaxies) or ``"ellipticals"`` (a lens-search target list:
        every normal object is a bright round red elliptical drawn exactly like the
        lens galaxies, so only the arcs tell lenses apart; stars and disk galaxies
        then appear as uncatalogued field objects).
    n_field : int, optional
        Number of uncatalogued field stars and galaxies scattered at random
        (default ``n_objects // 2`` for ``population="ellipticals"``, else 0).
    hard_lens : bool, optional
        Draw lenses as faint thin arcs (see `make_lens_survey`) instead of bright ones.
    prefix : str, optional
        File name prefix: ``<prefix>_<band>.fits`` and ``<prefix>_catalog.ecsv``.
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    MockSurvey

    Examples
    --------
    >>> import tempfile
    >>> from anomalymatch_astro.datasets import make_mock_survey
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     survey = make_mock_survey(tmp, n_objects=20, anomaly_fraction=0.2, seed=1)
    ...     print(survey.bands, len(survey.catalog), int(survey.catalog["is_anomaly"].sum()))
    ('g', 'r', 'i') 20 4
    """
    from ..utils import progress_bar

    n_objects, bands, anomaly_fraction, anomaly_kinds, pixel_scale = _check_args(
        n_objects, bands, anomaly_fraction, anomaly_kinds, pixel_scale
    )
    if population not in ("mixed", "ellipticals"):
        msg = f"population must be 'mixed' or 'ellipticals', got {population!r}"
        raise InvalidInputError(msg)
    if psf not in ("moffat", "gaussian"):
        msg = f"psf must be 'moffat' or 'gaussian', got {psf!r}"
        raise InvalidInputError(msg)
    n_bands = len(bands)
    if psf_fwhm is None:
        fwhm = _default_fwhm(n_bands)
    else:
        fwhm = np.atleast_1d(u.Quantity(psf_fwhm, u.arcsec).value).astype(float)
        if fwhm.shape != (n_bands,) or np.any(fwhm <= 0):
            msg = f"psf_fwhm must give one positive FWHM per band ({n_bands}), got {psf_fwhm!r}"
            raise InvalidInputError(msg)
    if center is None:
        center = SkyCoord(150.1, 2.2, unit="deg")
    center = center.icrs
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if seed is None:  # draw one, and record it in the catalogue's meta so the survey can be rebuilt
        seed = int(np.random.SeedSequence().entropy % 2**32)
    if int(seed) != seed or seed < 0:
        msg = f"seed must be a non-negative integer or None, got {seed!r}"
        raise InvalidInputError(msg)
    seed = int(seed)
    rng = np.random.default_rng(seed)
    scale_arcsec = float(pixel_scale.to_value(u.arcsec))

    # --- who is where: a jittered grid, kinds assigned at random
    n_anom = int(round(anomaly_fraction * n_objects))
    n_normal = n_objects - n_anom
    n_star = int(round(_STAR_FRACTION * n_normal)) if population == "mixed" else 0
    kinds = ["star"] * n_star + ["galaxy"] * (n_normal - n_star)
    kinds += [anomaly_kinds[i % len(anomaly_kinds)] for i in range(n_anom)]
    kinds = np.array(kinds, dtype=object)[rng.permutation(n_objects)]
    nx = int(np.ceil(np.sqrt(n_objects)))
    ny = int(np.ceil(n_objects / nx))
    pad = 48 + spacing // 4
    cells = rng.permutation(nx * ny)[:n_objects]
    jitter = rng.uniform(-spacing / 8, spacing / 8, (n_objects, 2))
    x_ref = pad + spacing * (cells % nx) + jitter[:, 0]
    y_ref = pad + spacing * (cells // nx) + jitter[:, 1]
    ref_shape = (2 * pad + spacing * (ny - 1) + 1, 2 * pad + spacing * (nx - 1) + 1)
    grids = _band_grids(
        bands,
        ref_shape,
        (center.ra.deg, center.dec.deg),
        scale_arcsec / 3600.0,
        float(u.Quantity(rotation, u.deg).value),
        float(scale_factor),
        pad=2.0,
    )
    band_objs = []
    for k, (hdr, shape) in enumerate(grids):
        scale_k = np.sqrt(abs(hdr["CD1_1"] * hdr["CD2_2"] - hdr["CD1_2"] * hdr["CD2_1"])) * 3600.0
        band_objs.append(_Band(hdr, shape, fwhm[k], psf, sky_sigma * scale_k / scale_arcsec, oversample=2))
    ref_wcs = band_objs[0].wcs
    sky = ref_wcs.pixel_to_world(x_ref, y_ref)
    pix = [b.wcs.world_to_pixel(sky) for b in band_objs]

    # --- catalogued objects
    rows = []
    draws = []  # per object: (components, extent, star flux, artefact)
    for i in progress_bar(range(n_objects), total=n_objects, desc="mock survey: objects", progress=progress):
        kind = kinds[i]
        artefact = None
        star_flux = None
        comps = []
        extent = 4.0
        if kind == "star" or (kind == "trail" and rng.random() < 0.3):
            m0 = rng.uniform(17.0, 23.0)
            c = rng.uniform(-0.3, 0.9)
            mags = _mags_from_colour(m0, c, n_bands, 0.02, rng)
            star_flux = _flux(mags)
            info = dict(sersic_n=np.nan, r_eff=0.0, q=1.0, pa=0.0, mags=mags, detail="star")
        elif kind in ("galaxy", "trail"):
            if population == "ellipticals":
                comps, info = _deflector(rng, n_bands)[1:]
            else:
                comps, info = _normal_galaxy(rng, n_bands, rng.uniform(19.0, 23.0))
            extent = 4.0 * info["r_eff"] + 1.5
        elif kind == "lens":
            comps, info = _lens(rng, n_bands, hard=hard_lens)
            extent = info.pop("extent")
        elif kind == "merger":
            comps, info = _merger(rng, n_bands)
            extent = info.pop("extent")
        elif kind == "colour":
            comps, info = _colour_anomaly(rng, n_bands)
            extent = 4.0 * info["r_eff"] + 1.5
        if kind == "trail":
            kb = int(rng.integers(n_bands))
            if rng.random() < 0.65:
                artefact = (
                    "trail",
                    kb,
                    dict(
                        offset=rng.uniform(-1.0, 1.0),
                        angle=rng.uniform(0, np.pi),
                        half_length=rng.uniform(5.5, 6.5),
                        amplitude=rng.uniform(4.0, 12.0),
                    ),
                )
                info["detail"] = f"satellite_trail_{bands[kb]}"
            else:
                artefact = ("cosmic_ray", kb, int(rng.integers(2**31)))
                info["detail"] = f"cosmic_ray_{bands[kb]}"
        if info["detail"].startswith("one_band_"):
            info["detail"] = f"one_band_{bands[int(info['detail'][9:])]}"
        draws.append((comps, min(extent, 10.0), star_flux, artefact))
        rows.append(info)

    # --- faint uncatalogued background galaxies
    n_bg = 2 * n_objects if n_background is None else int(n_background)
    bg_xy = rng.uniform([0, 0], [ref_shape[1] - 1, ref_shape[0] - 1], (n_bg, 2))
    bg_sky = ref_wcs.pixel_to_world(bg_xy[:, 0], bg_xy[:, 1])
    bg_pix = [b.wcs.world_to_pixel(bg_sky) for b in band_objs]
    bg_draws = []
    for _ in range(n_bg):
        m0 = rng.uniform(23.5, 26.0)
        mags = _mags_from_colour(m0, rng.uniform(0.0, 0.6), n_bands, 0.05, rng)
        r_e = rng.uniform(0.15, 0.5)
        bg_draws.append(
            [
                (
                    "sersic",
                    dict(
                        n=float(rng.choice([1.0, 1.5, 2.5])),
                        r_eff=r_e,
                        q=rng.uniform(0.3, 1.0),
                        pa=rng.uniform(0, np.pi),
                    ),
                    _flux(mags),
                    "sum",
                )
            ]
        )

    # --- uncatalogued field stars and galaxies (when the catalogue is a target list)
    n_fld = (n_objects // 2 if population == "ellipticals" else 0) if n_field is None else int(n_field)
    fld_xy = rng.uniform([0, 0], [ref_shape[1] - 1, ref_shape[0] - 1], (n_fld, 2))
    fld_sky = ref_wcs.pixel_to_world(fld_xy[:, 0], fld_xy[:, 1])
    fld_pix = [b.wcs.world_to_pixel(fld_sky) for b in band_objs]
    fld_draws = []
    for _ in range(n_fld):
        if rng.random() < _STAR_FRACTION:
            mags = _mags_from_colour(rng.uniform(17.0, 23.0), rng.uniform(-0.3, 0.9), n_bands, 0.02, rng)
            fld_draws.append(("star", _flux(mags), 0.0))
        else:
            comps, info = _normal_galaxy(rng, n_bands, rng.uniform(19.0, 23.0))
            fld_draws.append(("galaxy", comps, min(4.0 * info["r_eff"] + 1.5, 10.0)))

    # --- draw every band
    files = {}
    for k, band in enumerate(bands):
        b = band_objs[k]
        px, py = pix[k]
        for j in range(n_bg):
            b.draw_components(bg_pix[k][0][j], bg_pix[k][1][j], bg_draws[j], k, 2.0)
        for j, (what, thing, extent) in enumerate(fld_draws):
            if what == "star":
                b.draw_star(fld_pix[k][0][j], fld_pix[k][1][j], thing[k])
            else:
                b.draw_components(fld_pix[k][0][j], fld_pix[k][1][j], thing, k, extent)
        for i in range(n_objects):
            comps, extent, star_flux, artefact = draws[i]
            if comps:
                b.draw_components(px[i], py[i], comps, k, extent)
            if star_flux is not None:
                b.draw_star(px[i], py[i], star_flux[k])
            if artefact is not None and artefact[1] == k:
                if artefact[0] == "trail":
                    p = dict(artefact[2])
                    p["amplitude"] *= b.sky_sigma
                    b.draw_trail(px[i], py[i], **p)
                else:
                    b.draw_cosmic_ray(px[i], py[i], np.random.default_rng(artefact[2]))
        image = b.finish(np.random.default_rng([seed, 7919, k]))
        hdr = b.header.copy()
        hdr["PSF_FWHM"] = (float(fwhm[k]), "[arcsec] PSF FWHM")
        hdr["PSF_TYPE"] = psf
        hdr["SKYSIG"] = (float(b.sky_sigma), "sky noise per pixel")
        hdr["PIXSCALE"] = (b.scale, "[arcsec/pix]")
        hdr["OBJECT"] = "anomalymatch_astro mock survey"
        hdr["SEED"] = int(seed)
        path = directory / f"{prefix}_{band}.fits"
        fits.PrimaryHDU(image, header=hdr).writeto(path, overwrite=True)
        files[band] = path
        b.smooth = b.sharp = None
        log.info("wrote %s (%d x %d, %.3f arcsec/pix)", path, b.shape[1], b.shape[0], b.scale)

    # --- catalogue
    cat = Table()
    cat["id"] = [f"MS{i + 1:06d}" for i in range(n_objects)]
    cat["ra"] = sky.ra.deg
    cat["ra"].unit = u.deg
    cat["dec"] = sky.dec.deg
    cat["dec"].unit = u.deg
    cat["kind"] = np.array(kinds, dtype=str)
    cat["is_anomaly"] = np.isin(cat["kind"], ANOMALY_KINDS)
    for k, band in enumerate(bands):
        cat[f"mag_{band}"] = np.array([r["mags"][k] for r in rows])
    cat["sersic_n"] = np.array([r["sersic_n"] for r in rows], dtype=float)
    cat["r_eff_arcsec"] = np.array([r["r_eff"] for r in rows], dtype=float)
    cat["r_eff_arcsec"].unit = u.arcsec
    cat["axis_ratio"] = np.array([r["q"] for r in rows], dtype=float)
    cat["pa_deg"] = np.rad2deg(np.array([r["pa"] for r in rows], dtype=float)) % 180.0
    cat["pa_deg"].unit = u.deg
    cat["detail"] = np.array([r["detail"] for r in rows], dtype=str)
    for col in ("sersic_n", "axis_ratio", "pa_deg", "r_eff_arcsec", *(f"mag_{b}" for b in bands)):
        cat[col] = np.round(cat[col], 4)
    meta = dict(
        generator="anomalymatch_astro.datasets.make_mock_survey",
        seed=int(seed),
        bands=list(bands),
        population=population,
        reference_band=bands[0],
        pixel_scale_arcsec=scale_arcsec,
        magzero=_MAGZERO,
        anomaly_fraction=anomaly_fraction,
        anomaly_kinds=list(anomaly_kinds),
        hard_lens=bool(hard_lens),
        psf=psf,
        psf_fwhm_arcsec=[float(f) for f in fwhm],
        images={b: os.fspath(p.name) for b, p in files.items()},
    )
    cat.meta.update(meta)
    cat_path = directory / f"{prefix}_catalog.ecsv"
    cat.write(cat_path, format="ascii.ecsv", overwrite=True)
    return MockSurvey(
        images=files,
        catalog_path=cat_path,
        catalog=cat,
        bands=bands,
        reference_band=bands[0],
        pixel_scale=pixel_scale,
        directory=directory,
        meta=meta,
    )


def make_lens_survey(directory, *, n_objects=1500, lens_fraction=0.01, seed=0, **kwargs):
    """Write the hard benchmark survey: faint, thin lensing arcs at 1% on a realistic sky.

    The same sky as `make_mock_survey` (stars, galaxies, faint background, PSF,
    noise, bands on different grids), but catalogued like a lens search: the
    catalogue is a target list of bright, round, red ellipticals (as a real search
    pre-selects massive early-type galaxies), and the anomalies are the 1% of
    targets that are strong lenses.  Lens galaxies are drawn exactly like the
    other targets, so only the arcs tell them apart, and the arcs are faint and
    thin: Einstein radius 0.8-1.5", source half-light radius 0.05-0.1", source
    3.2-4.2 magnitudes fainter than the lens galaxy and offset so that it forms
    arcs rather than full rings.  The arcs are a few times the sky noise per pixel
    and sit inside the lens galaxy's light -- the open problem of the benchmarks.
    Stars and disk galaxies are present as uncatalogued field objects.

    Parameters
    ----------
    directory : str or path-like
        Output directory.
    n_objects : int, optional
        Number of catalogued targets.
    lens_fraction : float, optional
        Fraction of them that are lenses.
    seed : int, optional
        Random seed.
    **kwargs
        Any other `make_mock_survey` argument (bands, pixel_scale, prefix,
        ``population="mixed"`` for a catalogue of every kind of object ...).

    Returns
    -------
    MockSurvey
    """
    kwargs.setdefault("prefix", "lens")
    kwargs.setdefault("population", "ellipticals")
    return make_mock_survey(
        directory,
        n_objects=n_objects,
        anomaly_fraction=lens_fraction,
        anomaly_kinds=("lens",),
        seed=seed,
        hard_lens=True,
        **kwargs,
    )
