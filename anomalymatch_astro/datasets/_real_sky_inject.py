"""Anomalies injected into a real field as a survey would record them (used by `make_real_sky_set`).

Every injector adds noiseless, PSF-blurred light to the sky-subtracted image in place
(``image``: (3, H, W) float, bands blue, green, red) and returns, per anomaly, the row of
its catalogue source and a few numbers about it.  The host sources are real galaxies of the field.
"""

import numpy as np
from scipy.signal import fftconvolve

from . import _render as R

__all__ = ["ANOMALY_RECIPES", "inject"]

#: anomaly kind -> class name written in the set's ``class`` column
ANOMALY_RECIPES = {"arcs": "arc", "mergers": "merger", "trails": "trail", "colour": "odd_colour"}

_PSF_FWHM = 2.0  # pixels: the XDF colour image's resolution at 0.13"/px (about 0.25")
_HALF = 40  # half-size of the stamp an injection is drawn on


def _stamp_grid(x0, y0, shape, half=_HALF):
    """Integer box around (x0, y0) clipped to the image, and its pixel offsets from (x0, y0)."""
    h, w = shape
    xs, xe = max(0, int(round(x0)) - half), min(w, int(round(x0)) + half + 1)
    ys, ye = max(0, int(round(y0)) - half), min(h, int(round(y0)) + half + 1)
    yy, xx = np.mgrid[ys:ye, xs:xe].astype(np.float64)
    return (slice(ys, ye), slice(xs, xe)), xx - x0, yy - y0


def _blur(stamp):
    kernel = R.psf_kernel(_PSF_FWHM, kind="gaussian")
    return fftconvolve(stamp, kernel, mode="same")


def _scale_to_snr(profile, colour, noise, snr):
    """Fluxes per band of ``profile`` (unit-sum shape) with the matched-filter S/N ``snr`` over all bands.

    The optimal S/N of a known shape ``p`` with amplitude ``A_b`` in band ``b`` on white
    noise ``sigma_b`` is ``sqrt(sum_b A_b**2 sum p**2 / sigma_b**2)``.
    """
    colour = np.asarray(colour, dtype=np.float64)
    base = np.sqrt(np.sum(colour**2 / noise**2) * np.sum(profile**2))
    amp = snr / max(base, 1e-12)
    stamps = amp * colour[:, None, None] * profile[None]
    peak = float(np.max(stamps / noise[:, None, None]))
    return stamps, peak


def _arc(image, noise, host, rng, snr):
    """A lensed arc or ring around the host: a compact blue source behind an SIS at 0.7-1.8 arcsec."""
    box, dx, dy = _stamp_grid(host["x"], host["y"], image.shape[1:])
    theta_e = float(np.clip(2.5 * host["semimajor_sigma"] + rng.uniform(2.0, 6.0), 6.0, 14.0))
    beta = rng.uniform(0.15, 0.7) * theta_e  # small offsets give rings, large ones single arcs
    phi = rng.uniform(0, 2 * np.pi)
    shape = R.lensed_sersic(
        dx,
        dy,
        theta_e=theta_e,
        src_x=beta * np.cos(phi),
        src_y=beta * np.sin(phi),
        n=1.0,
        r_eff=rng.uniform(0.6, 1.4),
        q=rng.uniform(0.5, 1.0),
        pa=rng.uniform(0, np.pi),
    )
    shape = _blur(shape)
    shape /= shape.sum()
    colour = np.array([1.0, 0.75, 0.45]) * rng.uniform(0.85, 1.15, 3)  # star-forming, bluer than the lens
    stamps, peak = _scale_to_snr(shape, colour, noise, snr)
    image[(slice(None),) + box] += stamps
    return {"theta_e": theta_e, "peak_snr": peak}


def _merger(image, noise, host, rng, snr, donor, donor_pixels):
    """A real galaxy of the field pasted next to the host, with a faint tidal tail."""
    stamp = donor_pixels  # (3, h, w) sky-subtracted pixels of the donor's segment, zero elsewhere
    h, w = stamp.shape[1:]
    ratio = rng.uniform(0.3, 1.0) * host["flux"] / max(donor["flux"], 1e-9)
    sep = (host["semimajor_sigma"] + donor["semimajor_sigma"]) * rng.uniform(1.6, 2.6) + 2.0
    ang = rng.uniform(0, 2 * np.pi)
    cx, cy = host["x"] + sep * np.cos(ang), host["y"] + sep * np.sin(ang)
    x0, y0 = int(round(cx - donor["x"] + donor["bbox_xmin"])), int(round(cy - donor["y"] + donor["bbox_ymin"]))
    H, W = image.shape[1:]
    xs, ys = max(0, x0), max(0, y0)
    xe, ye = min(W, x0 + w), min(H, y0 + h)
    if xe > xs and ye > ys:
        image[:, ys:ye, xs:xe] += ratio * stamp[:, ys - y0 : ye - y0, xs - x0 : xe - x0]
    # a tidal tail: blobs along a curve leaving the pair on the far side of the companion
    box, dx, dy = _stamp_grid(host["x"], host["y"], image.shape[1:])
    n = 8
    t = np.linspace(0.3, 1.0, n)
    length = sep * rng.uniform(1.2, 2.0)
    bend = rng.choice([-1, 1]) * rng.uniform(0.4, 0.9)
    centres = [
        (
            (sep + length * s) * np.cos(ang + bend * s),
            (sep + length * s) * np.sin(ang + bend * s),
        )
        for s in t
    ]
    tail = _blur(R.gaussian_blobs(dx, dy, centres=centres, sigma=1.8, weights=np.linspace(1.0, 0.4, n)))
    tail /= tail.sum()
    colour = np.array([0.8, 0.9, 1.0])
    stamps, peak = _scale_to_snr(tail, colour, noise, snr)
    image[(slice(None),) + box] += stamps
    return {"peak_snr": peak, "separation": float(sep)}


def _trail(image, noise, host, rng, snr):
    """A short satellite / asteroid streak through the host's cutout: a straight 1-band-dominated line."""
    box, dx, dy = _stamp_grid(host["x"], host["y"], image.shape[1:])
    ang = rng.uniform(0, np.pi)
    offset = rng.uniform(-4.0, 4.0)
    along = dx * np.cos(ang) + dy * np.sin(ang)
    across = -dx * np.sin(ang) + dy * np.cos(ang) - offset
    half = rng.uniform(18.0, 36.0)
    line = np.exp(-0.5 * (across / 0.85) ** 2) * (np.abs(along) <= half)
    line = _blur(line)
    line /= line.sum()
    colour = np.ones(3) * 0.3
    colour[rng.integers(3)] = 1.0  # one exposure (band) caught the satellite
    stamps, peak = _scale_to_snr(line, colour, noise, snr)
    image[(slice(None),) + box] += stamps
    return {"peak_snr": peak, "trail": (float(host["x"]), float(host["y"]), float(ang), float(offset), float(half))}


def _odd_colour(image, noise, host, rng, snr, segment_mask):
    """The host's own light multiplied in one band: a galaxy with an impossible colour."""
    band = int(rng.integers(3))
    factor = rng.uniform(2.0, 3.5)
    sel = segment_mask
    image[band][sel] += (factor - 1.0) * np.clip(image[band][sel], 0.0, None)
    return {"peak_snr": float(np.max(image[band][sel]) / noise[band]), "band": band}


def inject(kind, image, noise, hosts, rng, *, snr_range, donors=None, donor_pixels=None, masks=None):
    """Inject ``kind`` at every host (a list of dicts); returns one info dict per host."""
    out = []
    for i, host in enumerate(hosts):
        snr = float(rng.uniform(*snr_range))
        if kind == "arcs":
            info = _arc(image, noise, host, rng, snr)
        elif kind == "mergers":
            info = _merger(image, noise, host, rng, snr, donors[i], donor_pixels[i])
        elif kind == "trails":
            info = _trail(image, noise, host, rng, snr)
        else:
            info = _odd_colour(image, noise, host, rng, snr, masks[i])
        info["snr"] = snr if kind != "colour" else float("nan")
        out.append(info)
    return out
