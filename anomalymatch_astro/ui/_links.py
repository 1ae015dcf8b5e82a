"""Links out to sky viewers and databases, built as URLs only (nothing is fetched)."""

import math
from urllib.parse import urlencode

from ..utils.exceptions import InvalidInputError

__all__ = ["sky_links", "tile_position", "SKY_LINKS"]

#: The services `sky_links` links to, in display order.
SKY_LINKS = ("Legacy Survey", "ESASky", "SIMBAD")


def sky_links(ra, dec, *, radius_arcsec=10.0):
    """URLs of a sky position in the Legacy Survey viewer, ESASky and SIMBAD.

    Parameters
    ----------
    ra, dec : float
        ICRS position in degrees.
    radius_arcsec : float, optional
        SIMBAD cone radius.

    Returns
    -------
    dict
        ``{service name: URL}`` in the order of ``SKY_LINKS``.

    Examples
    --------
    >>> from anomalymatch_astro.ui import sky_links
    >>> links = sky_links(150.1, 2.2)
    >>> links["Legacy Survey"]
    'https://www.legacysurvey.org/viewer?ra=150.100000&dec=2.200000&layer=ls-dr10&zoom=16'
    >>> links["SIMBAD"].startswith("https://simbad.cds.unistra.fr/simbad/sim-coo?")
    True
    """
    ra, dec = float(ra), float(dec)
    if not (math.isfinite(ra) and math.isfinite(dec) and -90.0 <= dec <= 90.0):
        msg = f"need a finite position with -90 <= dec <= 90, got ra={ra}, dec={dec}"
        raise InvalidInputError(msg)
    ra %= 360.0
    pos = f"{ra:.6f} {dec:+.6f}"
    return {
        "Legacy Survey": "https://www.legacysurvey.org/viewer?"
        + urlencode({"ra": f"{ra:.6f}", "dec": f"{dec:.6f}", "layer": "ls-dr10", "zoom": 16}),
        "ESASky": "https://sky.esa.int/esasky/?"
        + urlencode({"target": pos, "hips": "DSS2 color", "fov": "0.03", "cooframe": "J2000", "sci": "true"}),
        "SIMBAD": "https://simbad.cds.unistra.fr/simbad/sim-coo?"
        + urlencode(
            {
                "Coord": pos,
                "CooFrame": "ICRS",
                "Radius": f"{float(radius_arcsec):g}",
                "Radius.unit": "arcsec",
                "submit": "submit query",
            }
        ),
    }


def tile_position(ra, dec, row):
    """``{"ra", "dec", "links"}`` of a gallery tile: the rounded position and links out, when known.

    ``ra`` and ``dec`` are the arrays of every object (or None without positions), ``row``
    the tile's row (or None).
    """
    out = {"ra": None, "dec": None, "links": {}}
    if ra is None or row is None:
        return out
    r, d = float(ra[row]), float(dec[row])
    if math.isfinite(r) and math.isfinite(d):
        out["ra"], out["dec"] = round(r, 6), round(d, 6)
        try:
            out["links"] = sky_links(r, d)
        except InvalidInputError:
            out["links"] = {}
    return out
