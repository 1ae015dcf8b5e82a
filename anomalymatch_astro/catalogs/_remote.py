"""Cross-match candidates against remote catalogues: SIMBAD and VizieR (astroquery), any TAP service (pyvo).

Each function sends the candidates' positions in batches, then matches the returned
sources to the candidates locally with `crossmatch`, so the result has the same shape as a
local cross-match (one row per candidate in ``"nearest"`` mode).  Network traffic goes
through the given astroquery object or requests session, which makes the calls testable
offline on recorded responses.  Every query runs on the archives' one HTTP layer
(`~anomalymatch_astro.archives.HTTPClient`): retried with backoff after timeouts,
connection errors and HTTP 429/5xx answers (``anomalymatch_astro.archives.conf``
sets the retries), its failures mapped by exception type to
`~anomalymatch_astro.utils.exceptions.ArchiveError` (cannot reach the service) and
`~anomalymatch_astro.utils.exceptions.ServiceError` (the service answered an error).
"""

import logging

import numpy as np
from astropy.table import QTable, Table, vstack

from ..archives import HTTPClient
from ..utils import require
from ..utils.exceptions import ArchiveError, InvalidInputError, ServiceError
from ._crossmatch import crossmatch, parse_radius, table_coords
from ._tap_batches import BatchStore, run_batches

__all__ = ["crossmatch_simbad", "crossmatch_vizier", "crossmatch_tap"]

log = logging.getLogger(__name__)


def _check_batch_size(batch_size):
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        msg = f"batch_size must be an integer of at least 1, got {batch_size!r}"
        raise InvalidInputError(msg)


def _unique_rows(found, coord=None):
    """Drop duplicate sources (the same source found around two nearby candidates), by position."""
    if found is None or len(found) < 2:
        return found
    sky = table_coords(found, coord=coord, what="service result")
    key = np.round(np.column_stack([sky.spherical.lon.deg, sky.spherical.lat.deg]) * 3.6e6).astype(np.int64)
    _, first = np.unique(key, axis=0, return_index=True)
    return found[np.sort(first)]


def _query(http, attempt, service, *, throttle):
    """One query through the HTTP layer: retried on network failures and 429/5xx, errors mapped by type."""
    hint = (
        f"Could not reach {service}, or it kept failing: check the network connection and the service URL, "
        "or retry later (anomalymatch_astro.archives.conf.max_retries and .backoff set the retries)."
    )
    try:
        return http.call(attempt, what=f"{service} query", throttle=throttle, hint=hint)
    except ArchiveError:
        raise
    except ValueError as exc:  # astroquery's answer parsers raise ValueError on unexpected documents
        msg = f"{service} query failed: {exc}. Check the query parameters (catalogue and column names)"
        raise ServiceError(msg) from exc


def _remote_crossmatch(
    table,
    coords,
    query,
    *,
    service,
    radius,
    mode,
    prefix,
    batch_size,
    clean=None,
    http=None,
    store=None,
    progress=False,
):
    """The steps every remote cross-match shares.

    Query the service for each batch of candidate positions (through the archives' one HTTP
    layer; with a ``store``, finished batches are kept and skipped on a rerun), stack the
    answers, let ``clean`` check them and name their position columns, drop duplicate sources
    and match them to the candidates locally with `crossmatch`.

    Parameters
    ----------
    table : `~astropy.table.Table`
        The candidates.
    coords : `~astropy.coordinates.SkyCoord`
        Their positions.
    query : callable
        ``query(rows)`` asks the service about the candidates ``rows`` (an index array) and
        returns a table or None.
    service : str
        The service's name, for messages.
    radius : `~astropy.coordinates.Angle`
        Match radius.
    mode : {"nearest", "all"}
        As in `crossmatch`.
    prefix : str
        Put before the service's column names.
    batch_size : int
        Candidates per query.
    clean : callable, optional
        ``clean(found) -> (found, catalog_coord)`` on the stacked answer.
    http : `~anomalymatch_astro.archives.HTTPClient`, optional
        The HTTP layer whose session ``query`` uses (pyvo).  Default: a new one from
        ``anomalymatch_astro.archives.conf``, for queries sent through their own session
        (astroquery), each of which is then rate limited as a whole.
    store : `BatchStore`, optional
        Keeps each finished batch's answer; batches found there are not asked again.
    progress : bool, optional
        Show a progress bar over the batches.

    Returns
    -------
    `~astropy.table.QTable`
        As `crossmatch`.
    """
    _check_batch_size(batch_size)
    throttle = True if http is None else None
    http = HTTPClient() if http is None else http
    parts = run_batches(
        len(coords),
        batch_size,
        query,
        run=lambda attempt: _query(http, attempt, service, throttle=throttle),
        service=service,
        store=store,
        progress=progress,
    )
    found = vstack(parts, metadata_conflicts="silent") if parts else None
    catalog_coord = None
    if found is not None:
        if clean is not None:
            found, catalog_coord = clean(found)
        found = _unique_rows(found, catalog_coord)
    log.info("%s returned %d sources around %d candidates", service, 0 if found is None else len(found), len(coords))
    if found is None:
        found = QTable({"ra": np.zeros(0), "dec": np.zeros(0)})
    return crossmatch(table, found, radius=radius, mode=mode, prefix=prefix, catalog_coord=catalog_coord)


def crossmatch_simbad(table, *, radius, simbad=None, mode="nearest", prefix="simbad_", batch_size=200):
    """Cross-match candidates with SIMBAD (``astroquery.simbad``).

    Parameters
    ----------
    table : `~astropy.table.Table`
        Candidates with a SkyCoord column or ``ra``/``dec`` columns.
    radius : `~astropy.units.Quantity` or str
        Match radius, e.g. ``"2arcsec"``.
    simbad : `astroquery.simbad.SimbadClass`, optional
        A configured SIMBAD client (e.g. with ``add_votable_fields("otype")``); default a
        new ``Simbad()``.
    mode : {"nearest", "all"}, optional
        As in `crossmatch`.
    prefix : str, optional
        Put before the SIMBAD column names.
    batch_size : int, optional
        Positions per SIMBAD query.

    Returns
    -------
    `~astropy.table.QTable`
        As `crossmatch`: candidates joined with SIMBAD's ``main_id``, ``ra``, ``dec``... and ``sep``.

    Raises
    ------
    ArchiveError
        SIMBAD cannot be reached.
    ServiceError
        SIMBAD answered with an error.
    """
    require("astroquery", feature="cross-matching with SIMBAD")
    radius = parse_radius(radius)
    if simbad is None:
        from astroquery.simbad import Simbad

        simbad = Simbad()
    coords = table_coords(table, what="candidate table")

    def query(rows):
        result = simbad.query_region(coords[rows], radius=radius)
        return Table(result) if result is not None and len(result) else None

    return _remote_crossmatch(
        table, coords, query, service="SIMBAD", radius=radius, mode=mode, prefix=prefix, batch_size=batch_size
    )


def crossmatch_vizier(table, catalog, *, radius, vizier=None, mode="nearest", prefix=None, batch_size=200):
    """Cross-match candidates with a VizieR catalogue (``astroquery.vizier``).

    Parameters
    ----------
    table : `~astropy.table.Table`
        Candidates with a SkyCoord column or ``ra``/``dec`` columns.
    catalog : str
        The VizieR catalogue, e.g. ``"I/355/gaiadr3"``.
    radius : `~astropy.units.Quantity` or str
        Match radius.
    vizier : `astroquery.vizier.VizierClass`, optional
        A configured client; default ``Vizier(columns=["*", "_RAJ2000", "_DEJ2000"], row_limit=-1)``.
        The result needs positions (``_RAJ2000``/``_DEJ2000``, ``RAJ2000``/``DEJ2000`` or
        ``RA_ICRS``/``DE_ICRS``).
    mode : {"nearest", "all"}, optional
        As in `crossmatch`.
    prefix : str, optional
        Put before the catalogue's column names; default ``"vizier_"``.
    batch_size : int, optional
        Positions per VizieR query.

    Returns
    -------
    `~astropy.table.QTable`
        As `crossmatch`.

    Raises
    ------
    ArchiveError
        VizieR cannot be reached.
    ServiceError
        VizieR answered with an error.
    """
    require("astroquery", feature="cross-matching with VizieR")
    radius = parse_radius(radius)
    if not isinstance(catalog, str) or not catalog:
        msg = f"catalog must be a VizieR catalogue name such as 'I/355/gaiadr3', got {catalog!r}"
        raise InvalidInputError(msg)
    if vizier is None:
        from astroquery.vizier import Vizier

        vizier = Vizier(columns=["*", "_RAJ2000", "_DEJ2000"], row_limit=-1)
    coords = table_coords(table, what="candidate table")

    def query(rows):
        batch = coords[rows]
        result = vizier.query_region(batch if len(batch) > 1 else batch[0], radius=radius, catalog=catalog, cache=False)
        if result is None or len(result) == 0:
            return None
        keys = list(result.keys())
        part = Table(result[catalog if catalog in keys else keys[0]])
        if "_q" in part.colnames:
            part.remove_column("_q")
        return part

    def clean(found):
        if "_RAJ2000" in found.colnames and "_DEJ2000" in found.colnames:
            return found, ("_RAJ2000", "_DEJ2000")
        return found, None

    return _remote_crossmatch(
        table,
        coords,
        query,
        service=f"VizieR {catalog}",
        radius=radius,
        mode=mode,
        prefix="vizier_" if prefix is None else prefix,
        batch_size=batch_size,
        clean=clean,
    )


def _adql_name(name):
    if not name.replace("_", "").replace(".", "").isalnum():
        msg = f"{name!r} is not a plain ADQL table or column name"
        raise InvalidInputError(msg)
    return name


def crossmatch_tap(
    table,
    service_url,
    *,
    table_name,
    radius,
    ra_column="ra",
    dec_column="dec",
    columns="*",
    mode="nearest",
    prefix="tap_",
    session=None,
    batch_size=5000,
    workdir=None,
    progress=True,
):
    """Cross-match candidates with a table of any TAP service, uploading the candidates (pyvo).

    The candidates' ``id``, ``ra`` and ``dec`` are uploaded as ``TAP_UPLOAD.cands`` and
    joined in ADQL::

        SELECT c.cand_id, t.* FROM TAP_UPLOAD.cands AS c JOIN <table_name> AS t
        ON 1 = CONTAINS(POINT('ICRS', t.<ra_column>, t.<dec_column>), CIRCLE('ICRS', c.ra, c.dec, <radius>))

    Parameters
    ----------
    table : `~astropy.table.Table`
        Candidates with an ``id`` column and a SkyCoord column or ``ra``/``dec`` columns.
    service_url : str
        The TAP service's base URL.
    table_name : str
        The table to match against, e.g. ``"gaiadr3.gaia_source"``.
    radius : `~astropy.units.Quantity` or str
        Match radius.
    ra_column, dec_column : str, optional
        The position columns of ``table_name`` (deg, ICRS).
    columns : str, optional
        The ADQL select list of ``table_name`` (alias ``t``), e.g. ``"t.source_id, t.ra, t.dec"``;
        it must include the position columns.
    mode : {"nearest", "all"}, optional
        As in `crossmatch`.
    prefix : str, optional
        Put before the service's column names.
    session : `requests.Session`, optional
        The HTTP session (e.g. with authentication); default pyvo's.
    batch_size : int, optional
        Candidates per upload.
    workdir : str or os.PathLike, optional
        A folder where each finished batch's answer is written atomically (one ECSV file per
        batch, named by a digest of the query and of the batch's ids and positions).  A rerun
        with the same folder reads the finished batches instead of uploading them again, so an
        interrupted cross-match of a large region resumes where it stopped and a crash loses
        at most the batch in flight; a changed query, radius, batch size or candidate list
        makes new batches and never reuses another query's answers.
    progress : bool, optional
        Show a progress bar over the batches (default True).

    Returns
    -------
    `~astropy.table.QTable`
        As `crossmatch`.

    Raises
    ------
    ArchiveError
        The service cannot be reached (the message names the failed batch).
    ServiceError
        The service answered with an error (e.g. an unknown table or no upload support).
    WriteError
        The work folder cannot be written.
    """
    pyvo = require("pyvo", feature="cross-matching through TAP")
    radius = parse_radius(radius)
    table_name = _adql_name(table_name)
    ra_column, dec_column = _adql_name(ra_column), _adql_name(dec_column)
    if columns == "*":
        select = "t.*"
    else:
        select = ", ".join(
            c.strip() if c.strip().startswith("t.") else f"t.{_adql_name(c.strip())}" for c in columns.split(",")
        )
    if "id" not in table.colnames:
        msg = "the candidate table needs an 'id' column for a TAP cross-match"
        raise InvalidInputError(msg)
    coords = table_coords(table, what="candidate table").icrs
    ids = np.asarray(table["id"]).astype(str)
    r_deg = float(radius.deg)
    adql = (
        f"SELECT c.cand_id, {select} FROM TAP_UPLOAD.cands AS c JOIN {table_name} AS t "
        f"ON 1 = CONTAINS(POINT('ICRS', t.{ra_column}, t.{dec_column}), "
        f"CIRCLE('ICRS', c.ra, c.dec, {r_deg!r}))"
    )
    _check_batch_size(batch_size)
    store = None
    if workdir is not None:
        query_key = {"service": service_url, "adql": adql, "upload": "cand_id,ra,dec"}
        store = BatchStore(workdir, query=query_key, ids=ids, ra=coords.ra.deg, dec=coords.dec.deg)
    http = HTTPClient(session=session)
    service = pyvo.dal.TAPService(service_url, session=http.session)

    def query(rows):
        upload = Table(
            {
                "cand_id": np.char.encode(ids[rows], "utf-8"),  # VOTable 'char', not 'unicodeChar'
                "ra": coords.ra.deg[rows],
                "dec": coords.dec.deg[rows],
            }
        )
        return service.run_sync(adql, uploads={"cands": upload}).to_table()

    def clean(found):
        if ra_column not in found.colnames or dec_column not in found.colnames:
            msg = (
                f"the TAP result has no {ra_column!r}/{dec_column!r} columns (it has {found.colnames}); "
                "include them in columns="
            )
            raise ServiceError(msg)
        found.remove_column("cand_id")
        return found, (ra_column, dec_column)

    return _remote_crossmatch(
        table,
        coords,
        query,
        service=f"the TAP service {service_url}",
        radius=radius,
        mode=mode,
        prefix=prefix,
        batch_size=batch_size,
        clean=clean,
        http=http,
        store=store,
        progress=progress,
    )
