"""`ArchiveClient`: one HTTP session with retries, rate limiting and a download cache."""

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import warnings
from urllib.parse import quote, urlencode, urlsplit

import numpy as np
from astropy import units as u
from astropy.table import Table

from ..utils import progress_bar
from ..utils.exceptions import ArchiveError, InvalidInputError, ServiceError
from ._config import conf
from ._votable import datalink_url_column, parse_votable, soda_request

__all__ = ["ArchiveClient"]

log = logging.getLogger(__name__)

PROTOCOLS = ("sia2", "sia1", "tap")
_KNOWN_SUFFIXES = (".fits.gz", ".fits.fz", ".fits", ".fit", ".fts", ".fz", ".xml", ".vot", ".jpg", ".png")
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
IMAGE_COLUMNS = (
    "pos_index",
    "id",
    "ra",
    "dec",
    "band",
    "title",
    "dataset_id",
    "access_url",
    "format",
    "datalink_url",
    "s_ra",
    "s_dec",
    "pixel_scale",
    "service",
    "protocol",
)


class _Retryable(Exception):
    """Internal: an attempt failed in a way worth retrying."""


def _default_cache_dir():
    if conf.cache_dir:
        return os.path.expanduser(conf.cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "anomalymatch_astro", "archives")


def _make_session(timeout, before_request):
    import requests

    class _ClientSession(requests.Session):
        """A session that rate limits every request and gives it a default timeout (pyvo passes none)."""

        def request(self, method, url, **kwargs):
            before_request()
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, **kwargs)

    session = _ClientSession()
    session.headers["User-Agent"] = "anomalymatch_astro-archives (python-requests)"
    return session


def _full_url(url, params):
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _looks_like_votable(head):
    head = head.lstrip()[:600].lower()
    return head.startswith(b"<?xml") or b"<votable" in head


def _validate_fits(path):
    """Raise `_Retryable` when ``path`` is not a complete, readable FITS file."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with fits.open(path, memmap=False) as hdul:
                for hdu in hdul:
                    _ = hdu.data
    except Exception as exc:  # noqa: BLE001 -- any failure means the file is unusable
        raise _Retryable(f"the downloaded FITS file is truncated or corrupt ({exc})") from exc


class ArchiveClient:
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
        self.timeout = float(conf.sia_timeout if timeout is None else timeout)
        self.retries = int(conf.max_retries if retries is None else retries)
        self.rate_limit = float(conf.rate_limit if rate_limit is None else rate_limit)
        self.backoff = float(conf.backoff if backoff is None else backoff)
        if self.timeout <= 0 or self.retries < 0 or self.rate_limit < 0 or self.backoff < 0:
            msg = (
                "timeout must be > 0 and retries, rate_limit and backoff >= 0; got "
                f"timeout={self.timeout}, retries={self.retries}, rate_limit={self.rate_limit}, "
                f"backoff={self.backoff}"
            )
            raise InvalidInputError(msg)
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else _default_cache_dir()
        self._own_session = session is None
        self.session = session if session is not None else _make_session(self.timeout, self._throttle)
        self._lock = threading.Lock()
        self._last_request = 0.0
        self.n_requests = 0

    def __repr__(self):
        return (
            f"<ArchiveClient cache_dir={self.cache_dir!r} timeout={self.timeout} retries={self.retries} "
            f"rate_limit={self.rate_limit}>"
        )

    # ------------------------------------------------------------------ plumbing
    def _throttle(self):
        with self._lock:
            if self.rate_limit > 0:
                wait = self._last_request + 1.0 / self.rate_limit - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            self._last_request = time.monotonic()
            self.n_requests += 1

    def _call(self, attempt, *, what):
        """Run ``attempt()`` with rate limiting and retries; map failures to ArchiveError/ServiceError."""
        import requests

        last = None
        for k in range(self.retries + 1):
            if k:
                delay = self.backoff * 2 ** (k - 1)
                log.info("retrying %s in %.2f s (attempt %d of %d): %s", what, delay, k + 1, self.retries + 1, last)
                time.sleep(delay)
            if not self._own_session:  # our own session throttles each request itself
                self._throttle()
            try:
                return attempt()
            except _Retryable as exc:
                last = exc
            except (
                requests.Timeout,
                requests.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                last = exc
            except ServiceError:
                raise
            except Exception as exc:  # noqa: BLE001 -- sort pyvo's errors
                mapped = self._map_pyvo_error(exc, what=what)
                if mapped is None:
                    raise
                if isinstance(mapped, _Retryable):
                    last = mapped
                    continue
                raise mapped from exc
        msg = (
            f"{what} failed after {self.retries + 1} attempt(s): {last}. The service may be down or "
            "slow: try again later, or raise the timeout/retries (ArchiveClient(timeout=..., retries=...))."
        )
        raise ArchiveError(msg) from last

    @staticmethod
    def _map_pyvo_error(exc, *, what):
        try:
            from pyvo.dal import DALFormatError, DALQueryError, DALServiceError
        except ImportError:  # pragma: no cover
            return None
        import requests

        cause = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
        if isinstance(cause, (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
            return _Retryable(f"{type(cause).__name__}: {cause}")
        if isinstance(exc, DALQueryError):
            return ServiceError(f"{what}: the service reported an error: {exc}")
        if isinstance(exc, DALFormatError):
            return ServiceError(
                f"{what}: the service answered a malformed VOTable ({exc}); check the URL and the protocol"
            )
        if isinstance(exc, DALServiceError):
            code = getattr(exc, "code", None)
            if (
                (code is not None and code in _RETRY_STATUS)
                or isinstance(cause, (requests.Timeout, requests.ConnectionError))
                or (code is None and cause is None)
            ):
                return _Retryable(str(exc))
            return ServiceError(f"{what}: the service failed (HTTP {code}): {exc}")
        return None

    def _check_response(self, response, url):
        if response.status_code in _RETRY_STATUS:
            raise _Retryable(f"HTTP {response.status_code} from {url}")
        if response.status_code >= 400:
            content = response.content
            detail = content[:300].decode("utf-8", "replace")
            if _looks_like_votable(content):
                parse_votable(content, source=url)  # raises with the server's message
            msg = f"{url} answered HTTP {response.status_code}: {detail}"
            raise ServiceError(msg)

    def get(self, url, *, params=None):
        """GET ``url`` with retries and rate limiting; return the `requests.Response`.

        Raises
        ------
        ServiceError
            For a 4xx answer or an error VOTable.
        ArchiveError
            When every attempt timed out, failed to connect or got a 5xx answer.
        """

        def attempt():
            response = self.session.get(url, params=params, timeout=self.timeout)
            self._check_response(response, url)
            return response

        return self._call(attempt, what=f"GET {url}")

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
        with `os.replace` only after its length (Content-Length) and, for FITS files,
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
                self._check_response(response, full)
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
                os.replace(tmp, path)
                meta = {
                    "url": full,
                    "bytes": n,
                    "content_type": response.headers.get("Content-Type", ""),
                    "downloaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                with open(path + ".json.tmp", "w") as f:
                    json.dump(meta, f)
                os.replace(path + ".json.tmp", path + ".json")
            finally:
                response.close()
                if os.path.exists(tmp):
                    os.remove(tmp)
            log.info("downloaded %s (%d bytes) to %s", full, n, path)
            return path

        return self._call(attempt, what=f"download of {full}")

    # ------------------------------------------------------------------ searches
    def _pyvo_search(self, service_url, protocol, ra, dec, radius, *, tap_table, tap_async, maxrec):
        import pyvo

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
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", VOWarning)
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

        results = self._call(attempt, what=f"{protocol.upper()} query of {service_url}")
        return _results_table(results, protocol=protocol, service_url=service_url)

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
        progress=False,
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
            Show a progress bar over the positions.

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
            rows = _filter_rows(rows, wanted=wanted, image_format=image_format)
            rows["pos_index"] = np.full(len(rows), i, dtype=np.int64)
            rows["id"] = np.full(len(rows), ids[i], dtype=object).astype(str) if len(rows) else np.zeros(0, dtype=str)
            rows["ra"] = np.full(len(rows), coords.ra.deg[i])
            rows["dec"] = np.full(len(rows), coords.dec.deg[i])
            tables.append(rows)
        return _stack(tables)

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
        response = self.get(datalink_url)
        votable = parse_votable(response.content, source=datalink_url)
        access_url, params = soda_request(votable, source=datalink_url)
        params["CIRCLE"] = _circle(position, radius)
        path = self.download(access_url, params=params)
        with open(marker + ".tmp", "w") as f:
            f.write(path)
        os.replace(marker + ".tmp", marker)
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
        from astroquery.hips2fits import conf as hips_conf
        from astroquery.hips2fits import hips2fitsClass

        ny, nx = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
        scale = u.Quantity(pixel_scale, u.deg)
        position = position.icrs
        query = hips2fitsClass()
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
        return self.download(server or hips_conf.server, params=payload)


def _circle(position, radius):
    r = u.Quantity(radius, u.deg).to_value(u.deg)
    return f"{float(position.ra.deg)!r} {float(position.dec.deg)!r} {float(r)!r}"


# ---------------------------------------------------------------------- result tables
_BAND_COLUMNS = (
    "band",
    "filter",
    "bandpassid",
    "bandpass_id",
    "energy_bandpassname",
    "em_filter",
    "filter_name",
)


def _col(table, *names):
    lower = {c.lower(): c for c in table.colnames}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def _ucd_col(votable_table, *ucds):
    for field in votable_table.fields:
        if field.ucd and field.ucd.lower() in ucds:
            return field.name
    return None


def _text(value):
    if value is None or value is np.ma.masked:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _empty():
    t = Table()
    for name in IMAGE_COLUMNS:
        if name in ("pos_index",):
            t[name] = np.zeros(0, dtype=np.int64)
        elif name in ("ra", "dec", "s_ra", "s_dec", "pixel_scale"):
            t[name] = np.zeros(0, dtype=float)
        else:
            t[name] = np.zeros(0, dtype="U1")
    return t


def _results_table(results, *, protocol, service_url):
    """Normalise a pyvo result (SIA 1 or ObsCore) to the `find_images` columns."""
    table = results.to_table()
    vot = results.votable
    n = len(table)
    out = _empty()
    if n == 0:
        return out
    first = vot.get_first_table()
    if protocol == "sia1":
        url_col = _ucd_col(first, "vox:image_accessreference") or _col(table, "accref", "access_url")
        fmt_col = _ucd_col(first, "vox:image_format") or _col(table, "mime", "format")
        title_col = _ucd_col(first, "vox:image_title") or _col(table, "imagetitle", "title")
        band_col = _ucd_col(first, "vox:bandpass_id") or _col(table, *_BAND_COLUMNS)
        ra_col = _ucd_col(first, "pos_eq_ra_main", "pos.eq.ra;meta.main") or _col(table, "centeralpha")
        dec_col = _ucd_col(first, "pos_eq_dec_main", "pos.eq.dec;meta.main") or _col(table, "centerdelta")
        did_col = _col(table, "pub_did", "pubdid", "obs_publisher_did", "dataset_id")
        scale_col, scale_unit = _ucd_col(first, "vox:image_scale") or _col(table, "pixelscale"), 3600.0
    else:
        url_col = _col(table, "access_url")
        fmt_col = _col(table, "access_format")
        title_col = _col(table, "obs_title", "obs_id")
        band_col = _col(table, *_BAND_COLUMNS)
        ra_col, dec_col = _col(table, "s_ra"), _col(table, "s_dec")
        did_col = _col(table, "obs_publisher_did", "obs_id")
        scale_col, scale_unit = _col(table, "s_pixel_scale"), 1.0
    if url_col is None:
        msg = (
            f"the {protocol.upper()} answer of {service_url} has no access URL column (columns: "
            f"{table.colnames}); is this the right protocol?"
        )
        raise ServiceError(msg)
    datalink = datalink_url_column(vot)
    obs_id_col = _col(table, "obs_id")
    rows = {name: [] for name in IMAGE_COLUMNS}
    for row in table:
        url = _text(row[url_col])
        title = _text(row[title_col]) if title_col else ""
        rows["access_url"].append(url)
        rows["format"].append(_text(row[fmt_col]) if fmt_col else "")
        rows["title"].append(title)
        rows["band"].append(_text(row[band_col]) if band_col else "")
        rows["dataset_id"].append(_text(row[did_col]) if did_col else url)
        rows["s_ra"].append(float(row[ra_col]) if ra_col and row[ra_col] is not np.ma.masked else np.nan)
        rows["s_dec"].append(float(row[dec_col]) if dec_col and row[dec_col] is not np.ma.masked else np.nan)
        rows["pixel_scale"].append(_scale(row[scale_col], scale_unit) if scale_col else np.nan)
        words = " ".join([title, _text(row[obs_id_col]) if obs_id_col else "", os.path.basename(urlsplit(url).path)])
        rows["_words"] = rows.get("_words", []) + [words]
        if datalink is not None:
            base, column, fixed = datalink
            params = dict(fixed)
            params["ID"] = _text(row[column])
            rows["datalink_url"].append(
                base
                + ("&" if "?" in base else "?")
                + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
            )
        else:
            rows["datalink_url"].append("")
    words = rows.pop("_words")
    for name in ("pos_index", "id", "ra", "dec", "service", "protocol"):
        rows.pop(name)
    out = Table({name: rows[name] for name in rows})
    out["service"] = [service_url] * n
    out["protocol"] = [protocol] * n
    out["_words"] = words
    return out


def _scale(value, factor):
    """Pixel scale in arcsec from a scalar or per-axis value (NaN when unknown)."""
    try:
        values = np.abs(np.ma.filled(np.ma.asarray(value, dtype=float).ravel(), np.nan))
    except (TypeError, ValueError):
        return np.nan
    return float(values[0]) * factor if values.size and np.isfinite(values[0]) else np.nan


def _tokens(text):
    return {t for t in re.split(r"[^0-9a-z]+", text.lower()) if t}


def _filter_rows(rows, *, wanted, image_format):
    if len(rows) == 0:
        return _empty()
    keep = np.ones(len(rows), dtype=bool)
    if image_format:
        fmt = np.array([f.lower() for f in rows["format"]])
        keep &= np.array([(image_format.lower() in f) or f == "" for f in fmt])
    if wanted is not None:
        matched = []
        for i, row in enumerate(rows):
            band = str(row["band"])
            hit = ""
            for w in wanted:
                if band:
                    if band.lower() == w.lower():
                        hit = w
                        break
                elif w.lower() in _tokens(row["_words"]):
                    hit = w
                    break
            matched.append(hit)
            keep[i] &= bool(hit)
        rows["band"] = matched
    rows = rows[keep]
    rows.remove_column("_words")
    return rows


def _stack(tables):
    from astropy.table import vstack

    tables = [t for t in tables if len(t)]
    if not tables:
        return _empty()
    out = vstack(tables, metadata_conflicts="silent")
    return out[list(IMAGE_COLUMNS)]
