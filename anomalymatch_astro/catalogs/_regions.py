"""Region files of candidates (DS9, CRTF) with the ``regions`` package, for overlaying on images."""

import logging
import os

from astropy import units as u

from ..utils import atomic_path, require
from ..utils.exceptions import InvalidInputError, OutputExistsError
from ._crossmatch import parse_radius, table_coords

__all__ = ["write_regions", "REGION_FORMATS"]

log = logging.getLogger(__name__)

#: ``format`` -> the ``regions`` serializer name.
REGION_FORMATS = {"ds9": "ds9", "crtf": "crtf"}


def write_regions(table, path, *, format="ds9", radius=3 * u.arcsec, text_column="id", color=None, overwrite=False):
    """Write a circle region per candidate to a DS9 or CASA (CRTF) region file.

    Parameters
    ----------
    table : `~astropy.table.Table` or `~astropy.coordinates.SkyCoord`
        Candidates with a SkyCoord column or ``ra``/``dec`` columns.
    path : str or os.PathLike
        Output file (e.g. ``candidates.reg`` or ``candidates.crtf``).
    format : {"ds9", "crtf"}, optional
        Region file format.
    radius : `~astropy.units.Quantity` or str, optional
        Circle radius.
    text_column : str or None, optional
        Column whose value labels each circle (default ``id``; None for no text).
    color : str, optional
        Circle colour (e.g. ``"red"``); when None and the table has a ``label`` column,
        labelled anomalies are red, labelled normals blue and the rest green.
    overwrite : bool, optional
        Replace an existing file.

    Returns
    -------
    `regions.Regions`
        The regions written.

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.table import QTable
    >>> from anomalymatch_astro.catalogs import write_regions
    >>> t = QTable({"id": ["a", "b"], "coord": SkyCoord([10, 20], [0, 1], unit="deg")})
    >>> write_regions(t, "cands.reg", radius="2arcsec", overwrite=True)  # doctest: +SKIP
    <Regions([<CircleSkyRegion(...)>, <CircleSkyRegion(...)>])>
    """
    regions = require("regions", feature="writing region files")
    fmt = str(format).lower()
    if fmt not in REGION_FORMATS:
        msg = f"format must be one of {sorted(REGION_FORMATS)}, got {format!r}"
        raise InvalidInputError(msg)
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        msg = f"{path!r} exists; pass overwrite=True to replace it"
        raise OutputExistsError(msg)
    radius = parse_radius(radius)
    from astropy.coordinates import SkyCoord
    from astropy.table import QTable

    if isinstance(table, SkyCoord):
        table = QTable({"coord": table.reshape((1,)) if table.isscalar else table})
    coords = table_coords(table, what="candidate table").icrs
    if text_column is not None and text_column not in table.colnames:
        msg = f"text_column {text_column!r} is not a column of the table ({table.colnames})"
        raise InvalidInputError(msg)
    colours = {"anomaly": "red", "normal": "blue"}
    out = []
    for k in range(len(coords)):
        meta = {}
        if text_column is not None:
            meta["text"] = str(table[text_column][k])
        visual = {}
        if color is not None:
            visual["color"] = color
        elif "label" in table.colnames:
            visual["color"] = colours.get(str(table["label"][k]), "green")
        out.append(
            regions.CircleSkyRegion(
                center=coords[k],
                radius=radius.to(u.arcsec),
                meta=regions.RegionMeta(meta),
                visual=regions.RegionVisual(visual),
            )
        )
    result = regions.Regions(out)
    with atomic_path(path) as tmp:
        result.write(tmp, format=REGION_FORMATS[fmt], overwrite=True)
    log.info("wrote %d %s regions to %s", len(out), fmt, path)
    return result
