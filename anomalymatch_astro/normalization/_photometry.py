"""Per-band flux scales from FITS header zero points, to put the bands of a composite on one flux scale.

Each band's pixels are in their own unit (counts per second, electrons, data numbers); a header
zero point says what flux density one pixel unit is:

* HST ``PHOTFLAM`` (inverse sensitivity, erg s^-1 cm^-2 A^-1 per pixel unit), with ``PHOTPLAM``
  (pivot wavelength in Angstrom) for f_nu: ``f_nu = PHOTFLAM * PHOTPLAM**2 / c``;
* a magnitude zero point ``ZP`` (``MAGZERO``, ``MAGZPT``, ``MAGZP``, ``ZP`` or ``PHOTZPT``, taken
  as AB): one pixel unit is ``10**(-0.4 * (ZP + 48.6))`` erg s^-1 cm^-2 Hz^-1 (f_nu).

``PHOTFLAM`` wins over a magnitude keyword (HST's ``PHOTZPT`` is the ST-magnitude offset that goes
with ``PHOTFLAM``, not a zero point of its own).
"""

import math
import warnings

import numpy as np

from ..utils.exceptions import InvalidInputError, MissingZeroPointWarning

__all__ = ["MAGNITUDE_ZERO_POINT_KEYS", "PHOTOMETRY_KEYS", "MissingZeroPointWarning", "band_flux_scales"]

#: The header keywords read as AB magnitude zero points, in order of preference.
MAGNITUDE_ZERO_POINT_KEYS = ("MAGZERO", "MAGZPT", "MAGZP", "ZP", "PHOTZPT")
#: every header keyword `band_flux_scales` reads
PHOTOMETRY_KEYS = ("PHOTFLAM", "PHOTPLAM", *MAGNITUDE_ZERO_POINT_KEYS)

_C_ANGSTROM_PER_S = 2.99792458e18  # speed of light in Angstrom / s
_UNITS = ("fnu", "flam")


def _number(header, key):
    """The header value of ``key`` as a finite float, or None."""
    if header is None or key not in header:
        return None
    try:
        value = float(header[key])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _flux_per_unit(header, unit):
    """Flux density of one pixel unit in cgs (f_nu per Hz or f_lambda per Angstrom), or (None, why)."""
    if header is None:
        return None, "no header"
    photflam = _number(header, "PHOTFLAM")
    pivot = _number(header, "PHOTPLAM")
    if photflam is not None and photflam > 0:
        if unit == "flam":
            return photflam, None
        if pivot is not None and pivot > 0:
            return photflam * pivot**2 / _C_ANGSTROM_PER_S, None
        return None, "PHOTFLAM without PHOTPLAM (the pivot wavelength f_nu needs)"
    for key in MAGNITUDE_ZERO_POINT_KEYS:
        zp = _number(header, key)
        if zp is None:
            continue
        fnu = 10.0 ** (-0.4 * (zp + 48.6))
        if unit == "fnu":
            return fnu, None
        if pivot is not None and pivot > 0:
            return fnu * _C_ANGSTROM_PER_S / pivot**2, None
        return None, f"{key} without PHOTPLAM (the pivot wavelength f_lambda needs)"
    keys = ", ".join(("PHOTFLAM", *MAGNITUDE_ZERO_POINT_KEYS))
    return None, f"no zero point ({keys})"


def band_flux_scales(headers, *, reference=None, unit="fnu", bands=None):
    """Factors that put each band on the same flux-density scale, relative to a reference band.

    Multiplying band ``k`` of a cutout by ``scales[k]`` expresses it in the flux unit of the
    reference band, so that equal flux densities have equal values in every band and a
    colour composite shows the colours of the sky (pass the result as ``band_scales`` to
    `~anomalymatch_astro.normalization.lupton_rgb` or `~anomalymatch_astro.normalization.make_rgb`).

    Parameters
    ----------
    headers : sequence of `~astropy.io.fits.Header` or mapping
        One header per band, in band order (the image HDU's header, which on HST files carries
        ``PHOTFLAM`` / ``PHOTPLAM``; merge the primary header in where the zero point lives there).
        ``None`` for a band without a header.
    reference : int, optional
        Index of the band whose unit the others are put in (its scale is 1); default: the first
        band with a zero point.
    unit : {"fnu", "flam"}, optional
        Equal f_nu (per Hz, as AB magnitudes; the default) or equal f_lambda (per Angstrom).
    bands : sequence of str, optional
        Band names, only used in the warnings.

    Returns
    -------
    `numpy.ndarray`
        float64, shape (len(headers),).  A band without a usable zero point gets 1, with a
        `~anomalymatch_astro.utils.exceptions.MissingZeroPointWarning` naming it (all ones when no band has one).

    Raises
    ------
    `~anomalymatch_astro.utils.exceptions.InvalidInputError`
        Unknown ``unit``, or a ``reference`` out of range or without a zero point.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from anomalymatch_astro.normalization import band_flux_scales
    >>> f435w = fits.Header({"PHOTFLAM": 3.1e-19, "PHOTPLAM": 4329.0})
    >>> f850lp = fits.Header({"PHOTFLAM": 1.5e-19, "PHOTPLAM": 9033.0})
    >>> band_flux_scales([f435w, f850lp]).round(3).tolist()
    [1.0, 2.107]
    """
    if unit not in _UNITS:
        msg = f"unit must be one of {_UNITS}, got {unit!r}"
        raise InvalidInputError(msg)
    headers = list(headers)
    names = list(bands) if bands is not None else [f"band {k}" for k in range(len(headers))]
    flux, whys = zip(*(_flux_per_unit(header, unit) for header in headers)) if headers else ((), ())
    missing = [f"{names[k]}: {why}" for k, why in enumerate(whys) if why is not None]
    known = [k for k, v in enumerate(flux) if v is not None]
    if reference is None:
        reference = known[0] if known else None
    elif not 0 <= int(reference) < len(headers):
        msg = f"reference={reference} is not a band index (0 .. {len(headers) - 1})"
        raise InvalidInputError(msg)
    elif flux[int(reference)] is None:
        msg = f"the reference band {names[int(reference)]} has no usable zero point ({whys[int(reference)]})"
        raise InvalidInputError(msg)
    if missing:
        warnings.warn(
            "no flux scale for " + "; ".join(missing) + " -- those bands are left unscaled (factor 1)",
            MissingZeroPointWarning,
            stacklevel=2,
        )
    if reference is None:
        return np.ones(len(headers), dtype=np.float64)
    ref = flux[int(reference)]
    return np.array([1.0 if v is None else v / ref for v in flux], dtype=np.float64)
