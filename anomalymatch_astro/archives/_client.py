"""`ArchiveClient`: VO image searches, a download cache and server-side cutouts, on the one HTTP layer."""

import hashlib
import logging
import os
import tempfile
import time
from urllib.parse import urlsplit

import numpy as np
from astropy import units as u

from ..utils import filters_changed, progress_bar, replace_atomic, require, write_bytes_atomic, write_json_atomic
from ..utils.exceptions import InvalidInputError, ServiceError
from ._config import conf
from ._http import HTTPClient, _full_url, _looks_like_votable, _Retryable
from ._results import filter_rows, results_table, stack_rows
from ._votable import parse_votable, soda_request

__all__ = ["ArchiveClient"]

log = logging.getLogger(__name__)

PROTOCOLS = ("sia2", "sia1", "tap")
_KNOWN_SUFFIXES = (".fits.gz", ".fits.fz", ".fits", ".fit", ".fts", ".fz", ".xml", ".vot", ".jpg", ".png")


def _default_cache_dir():
    if conf.cache_dir:
        return os.path.expanduser(conf.cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "anomalymatch_astro", "archives")


def _validate_fits(path):
    """Raise `_Retryable` when ``path`` is not a complete, readable FITS file."""
    from astropy.io import fits

    try:
        # the warnings astropy raises while reading (e.g. "File may have been truncated") are
        # recorded, not turned into errors: an "error" filter would be process-wide for the
        # time of the block and hit other threads' warnings
        with filters_changed(("always", Warning), record=True) as caught:
            with fits.open(path, memmap=False) as hdul:
                for hdu in hdul:
                    _ = hdu.data
    except Exception as exc:  # noqa: BLE001 -- any failure means the file is unusable
        raise _Retryable(f"the downloaded FITS file is truncated or corrupt ({exc})") from exc
    from_fits = [w for w in caught if "astropy/io/fits" in str(w.filename).replace("\\", "/")]
    if from_fits:
        msg = f"the downloaded FITS file is truncated or corrupt ({from_fits[0].message})"
        raise _Retryable(msg)


class ArchiveClient(HTTPClient):
    """Access to VO image services: search, cached downloads, SODA and HiPS cutouts.

    One `requests.Session` carries every request (pass your own, e.g. with
    authentication); pyvo services are given the same session.  Operations are retried
    with exponential backoff after timeouts, connection errors and 5xx/429 answers, and
    rate limited: each HTTP request with the client's own session, each operation (a
    search, which for an asynchronous TAP job is several requests, or a download) with
    a session you pass.

    Parameters
    ----------
    session : `requests.Session`, optional
        The HTTP session (default: a new one whose requests time out after ``timeout``).
        pyvo sends its requests without a timeout, so a session of your own should set one.
    cache_dir : str or os.PathLike, optional
        Folder of downloaded files (default ``conf.cache_dir``).
    timeout : float, optional
        Seconds per request (default ``conf.sia_timeout``).
    retries : int, optional
        Retries after a failed attempt (default ``conf.max_retries``).
    rate_limit : float, optional
        Most requests per second, 0 for no limit (default ``conf.rate_limit``).
    backoff : float, optional
        Seconds before the first retry, doubled for each further one (default ``conf.backoff``).

    Examples
    --------
    >>> from anomalymatch_astro.archives import ArchiveClient
    >>> client = ArchiveClient(cache_dir="archive-cache", retries=2, rate_limit=1)  # doctest: +SKIP
    >>> path = client.download("http://127.0.0.1:8099/getproduct/amtest/data/m13.fits")  # doctest: +SKIP
    """

    def __init__(self, *, session=None, cache_dir=None, timeout=None, retries=None, rate_limit=None, backoff=None):
        require("requests", feature="Archive access (ArchiveClient, anomalymatch-astro query)")
        super().__init__(session=session, timeout=timeout, retries=retries, rate_limit=rate_limit, backoff=backoff)
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else _default_cache_dir()
        self._soda_requests = {}  # DataLink URL -> (SODA access URL, params): asked once per client

    def __repr__(self):
        return (
            f"<ArchiveClient cache_dir={self.cache_dir!r} timeout={self.timeout} retries={self.retries} "
            f"rate_limit={self.rate_limit}>"
        )

    # ------------------------------------------------------------------ downloads
    def cache_path(self, url, *, params=None):
        """Path in the cache of the file at ``url`` (keyed by a hash of the full URL)."""
        full = _full_url(url, params)
        path = urlsplit(full).path.lower()
        suffix = next((s for s in _KNOWN_SUFFIXES if path.endswith(s)), ".fits")
        key = hashlib.sha256(full.encode("utf-8")).hexdigest()[:32]
        return os.path.join(self.cache_dir, key + suffix)

    def download(self, url, *, params=None, validate=True):
        """Download ``url`` into the cache once and return the local path.

        The file is written to a temporary file in the cache folder and moved into place
        with an atomic rename only after its length (Content-Length) and, for FITS files,
        its contents were checked, so an interrupted download is never taken as complete;
        a file already in the cache is never downloaded again.

        Parameters
        ----------
        url : str
            The file's URL.
        params : dict, optional
            Query parameters (part of the cache key).
        validate : bool, optional
            Check that a FITS file opens and its data read completely (default True).

        Returns
        -------
        str
            The cached file.

        Raises
        ------
        ArchiveError
            When every attempt failed (timeouts, 5xx, truncated or corrupt files).
        ServiceError
            When the server answered an error document (4xx, error VOTable).
        """
        full = _full_url(url, params)
        path = self.cache_path(full)
        if os.path.exists(path):
            log.debug("cache hit for %s: %s", full, path)
            return path
        os.makedirs(self.cache_dir, exist_ok=True)

        def attempt():
            response = self.session.get(full, stream=True, timeout=self.timeout)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".part-", suffix=".tmp")
            try:
                self.check_response(response, full)
                n = 0
                head = b""
                with os.fdopen(fd, "wb") as f:
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        if len(head) < 2880:
                            head += chunk[:2880]
                        f.write(chunk)
                        n += len(chunk)
                expected = response.headers.get("Content-Length")
                encoded = response.headers.get("Content-Encoding", "identity") not in ("", "identity")
                if expected is not None and not encoded and int(expected) != n:
                    raise _Retryable(f"incomplete download of {full}: got {n} of {expected} bytes")
                if n == 0:
                    raise _Retryable(f"empty download from {full}")
                if _looks_like_votable(head):
                    with open(tmp, "rb") as f:
                        parse_votable(f.read(), source=full)  # error VOTable -> ServiceError
                    msg = f"{full} answered a VOTable, not an image; is it a search URL rather than a file?"
                    raise ServiceError(msg)
                gz_fits = head.startswith(b"\x1f\x8b") and ".fit" in urlsplit(full).path.lower()
                if validate and (head.startswith(b"SIMPLE") or gz_fits):
                    _validate_fits(tmp)
                replace_atomic(tmp, path)
                meta = {
                    "url": full,
                    "bytes": n,
                    "content_type": response.headers.get("Content-Type", ""),
                    "downloaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                write_json_atomic(path + ".json", meta, indent=None, sort_keys=False)
            finally:
                response.close()
                if os.path.exists(tmp):
                    os.remove(tmp)
            log.info("downloaded %s (%d bytes) to %s", full, n, path)
            return path

        return self.call(attempt, what=f"download of {full}")

    # ------------------------------------------------------------------ searches
    def _pyvo_search(self, service_url, protocol, ra, dec, radius, *, tap_table, tap_async, maxrec):
        pyvo = require("pyvo", feature=f"A {protocol.upper()} search")

        if protocol == "sia1":
            service = pyvo.dal.SIAService(service_url, session=self.session)
            return service.search(pos=(ra, dec), size=2 * radius, maxrec=maxrec)
        if protocol == "sia2":
            service = pyvo.dal.SIA2Service(service_url, session=self.session, check_baseurl=False)
            return service.search(pos=(ra * u.deg, dec * u.deg, radius * u.deg), maxrec=maxrec)
        service = pyvo.dal.TAPService(service_url, session=self.session)
        query = (
            f"SELECT * FROM {tap_table} WHERE dataproduct_type = 'image' AND "
            f"INTERSECTS(s_region, CIRCLE('ICRS', {ra!r}, {dec!r}, {radius!r})) = 1"
        )
        if tap_async:
            return service.run_async(query, maxrec=maxrec)
        return service.run_sync(query, maxrec=maxrec)

    def search(
        self,
        service_url,
        ra,
        dec,
        *,
        protocol="sia2",
        radius=1 * u.arcsec,
        tap_table="ivoa.obscore",
        tap_async=False,
        maxrec=None,
    ):
        """Query one position; return the rows as a `~astropy.table.Table` of `find_images` columns.

        See `find_images` for the parameters.
        """
        from astropy.io.votable.exceptions import VOWarning

        if protocol not in PROTOCOLS:
            msg = f"protocol must be one of {PROTOCOLS}, got {protocol!r} (use cutouts_from_service for HiPS)"
            raise InvalidInputError(msg)
        radius = float(u.Quantity(radius, u.deg).to_value(u.deg))

        def attempt():
            with filters_changed(("ignore", VOWarning)):
                return self._pyvo_search(
                    service_url,
                    protocol,
                    float(ra),
                    float(dec),
                    radius,
                    tap_table=tap_table,
                    tap_async=tap_async,
                    maxrec=maxrec,
                )

        results = self.call(attempt, what=f"{protocol.upper()} query of {service_url}")
        return results_table(results, protocol=protocol, service_url=service_url)

    def find_images(
        self,
        service_url,
        positions,
        *,
        protocol="sia2",
        band=None,
        radius=1 * u.arcsec,
        image_format="fits",
        tap_table="ivoa.obscore",
        tap_async=False,
        maxrec=None,
        progress=True,
    ):
        """Find the images that cover each position.

        Parameters
        ----------
        service_url : str
            The query endpoint: an SIA 2 query URL (used as is), an SIA 1 base URL, or a
            TAP base URL with an ObsCore table.
        positions : `~astropy.coordinates.SkyCoord` or `~astropy.table.Table`
            Positions (a table needs ``ra``/``dec``; its ``id`` column names them).
        protocol : {"sia2", "sia1", "tap"}, optional
            How to query (TAP searches ``tap_table`` for images whose ``s_region``
            intersects the search circle).
        band : str or sequence of str, optional
            Keep only these bands: matched against a band/filter column (SIA 1
            ``bandpassId``) when the service has one, else against the words of the
            title, ``obs_id`` and file name (case-insensitive).
        radius : `~astropy.units.Quantity`, optional
            Search radius (default 1 arcsec: images containing the position).
        image_format : str or None, optional
            Keep rows whose format contains this word (default ``"fits"``; None keeps all).
        tap_table : str, optional
            The ObsCore table for ``protocol="tap"``.
        tap_async : bool, optional
            Run TAP queries as asynchronous jobs.
        maxrec : int, optional
            Most rows per query.
        progress : bool, optional
            Show a progress bar over the positions (default True).

        Returns
        -------
        `~astropy.table.Table`
            One row per (position, image): ``pos_index``, ``id``, ``ra``, ``dec`` (the
            position), ``band``, ``title``, ``dataset_id``, ``access_url``, ``format``,
            ``datalink_url`` (empty when the service declares no DataLink), ``s_ra``,
            ``s_dec`` (image centre, NaN if unknown), ``service`` and ``protocol``.

        Raises
        ------
        ServiceError
            For error VOTables (with the server's message) and malformed answers.
        ArchiveError
            When the service cannot be reached after the retries.
        """
        from ..cutouts import parse_positions

        coords, ids, _ = parse_positions(positions)
        coords = coords.icrs
        if ids is None:
            ids = np.array([f"obj{i}" for i in range(len(coords))])
        wanted = None if band is None else ([band] if isinstance(band, str) else list(band))
        tables = []
        bar = progress_bar(range(len(coords)), desc=f"{protocol} search", progress=progress)
        for i in bar:
            rows = self.search(
                service_url,
                coords.ra.deg[i],
                coords.dec.deg[i],
                protocol=protocol,
                radius=radius,
                tap_table=tap_table,
                tap_async=tap_async,
                maxrec=maxrec,
            )
            rows = filter_rows(rows, wanted=wanted, image_format=image_format)
            rows["pos_index"] = np.full(len(rows), i, dtype=np.int64)
            rows["id"] = np.full(len(rows), ids[i], dtype=object).astype(str) if len(rows) else np.zeros(0, dtype=str)
            rows["ra"] = np.full(len(rows), coords.ra.deg[i])
            rows["dec"] = np.full(len(rows), coords.dec.deg[i])
            tables.append(rows)
        return stack_rows(tables)

    # ------------------------------------------------------------------ cutouts
    def soda_cutout(self, datalink_url, position, radius):
        """Cut a circle out of a data set on the server (DataLink + SODA) and return the cached FITS path.

        Parameters
        ----------
        datalink_url : str
            The data set's DataLink document URL (the ``datalink_url`` column of
            `find_images`).
        position : `~astropy.coordinates.SkyCoord`
            Centre of the cutout.
        radius : `~astropy.units.Quantity`
            Radius of the circle the cutout must cover.

        Returns
        -------
        str

        Raises
        ------
        ServiceError
            When the DataLink document offers no SODA service, or the server fails.
        """
        position = position.icrs
        key_url = _full_url(datalink_url, {"CIRCLE": _circle(position, radius)})
        marker = self.cache_path(key_url) + ".soda"
        if os.path.exists(marker):
            with open(marker) as f:
                cached = f.read().strip()
            if os.path.exists(cached):
                return cached
        # a data set's DataLink document is the same for every circle: ask for it once per client
        known = self._soda_requests
        if datalink_url not in known:
            response = self.get(datalink_url)
            votable = parse_votable(response.content, source=datalink_url)
            known[datalink_url] = soda_request(votable, source=datalink_url)
        access_url, params = known[datalink_url][0], dict(known[datalink_url][1])
        params["CIRCLE"] = _circle(position, radius)
        path = self.download(access_url, params=params)
        write_bytes_atomic(marker, path)
        return path

    def hips_cutout(self, hips, position, *, size, pixel_scale, projection="TAN", server=None):
        """A FITS cutout of an all-sky HiPS survey from a hips2fits service (astroquery), cached.

        Parameters
        ----------
        hips : str
            The HiPS ID (e.g. ``"CDS/P/DSS2/red"``).
        position : `~astropy.coordinates.SkyCoord`
            Centre.
        size : int or (int, int)
            Pixels (ny, nx).
        pixel_scale : `~astropy.units.Quantity`
            Angle per pixel.
        projection : str, optional
            WCS projection code (default ``"TAN"``).
        server : str, optional
            hips2fits endpoint (default astroquery's ``hips2fits.conf.server``).

        Returns
        -------
        str
            The cached FITS file.
        """
        from astropy.coordinates import Angle, Latitude, Longitude

        hips2fits = require("astroquery.hips2fits", feature="HiPS cutouts (protocol='hips')")

        ny, nx = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
        scale = u.Quantity(pixel_scale, u.deg)
        position = position.icrs
        query = hips2fits.hips2fitsClass()
        payload = query.query(
            hips=hips,
            width=nx,
            height=ny,
            projection=projection,
            ra=Longitude(position.ra),
            dec=Latitude(position.dec),
            fov=Angle(scale * max(nx, ny)),
            format="fits",
            get_query_payload=True,
        )
        return self.download(server or hips2fits.conf.server, params=payload)


def _circle(position, radius):
    r = u.Quantity(radius, u.deg).to_value(u.deg)
    return f"{float(position.ra.deg)!r} {float(position.dec.deg)!r} {float(r)!r}"
