"""The photometric zero points of the images, and the per-band flux scales they give the cutouts."""

import numpy as np

from ..normalization import PHOTOMETRY_KEYS, band_flux_scales

__all__ = []


def header_photometry(header, primary=None):
    """The zero-point keywords of ``header`` (falling back on ``primary``), or None."""
    found = {}
    for key in PHOTOMETRY_KEYS:
        for h in (header, primary):
            value = None if h is None else h.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
                found[key] = float(value)
                break
    return found or None


def record_photometry(cs, parsed):
    """Record the bands' zero points and flux scales in ``cs.meta`` (used by the colour composites)."""
    photometry = {band: image.photometry for band, image in parsed.items() if image.photometry}
    if not photometry:
        return
    cs.meta["photometry"] = photometry
    headers = [parsed[band].photometry for band in cs.bands]
    scales = band_flux_scales(headers, bands=cs.bands)
    cs.meta["band_flux_scales"] = {band: float(v) for band, v in zip(cs.bands, scales)}
