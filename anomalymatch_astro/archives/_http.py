"""The one HTTP layer of the package: a requests session, retries with backoff, a rate limit, error mapping.

`HTTPClient` carries every request sent to an archive or a catalogue service, directly
(`HTTPClient.get`) or through pyvo and astroquery (`HTTPClient.call` runs any attempt
with the same retries).  Failures are sorted by exception type, never by message text:

* timeouts, connection errors, broken transfers and HTTP 429/5xx answers (from requests
  or wrapped by pyvo) are retried, then end in `~anomalymatch_astro.utils.exceptions.ArchiveError`;
* error documents (HTTP 4xx, error VOTables, malformed answers) end at once in
  `~anomalymatch_astro.utils.exceptions.ServiceError`.
"""

import logging
import threading
import time
from urllib.parse import urlencode

from ..utils import require
from ..utils.exceptions import ArchiveError, InvalidInputError, ServiceError
from ._config import conf
from ._votable import parse_votable

__all__ = ["HTTPClient", "RETRY_STATUS", "network_errors"]

log = logging.getLogger(__name__)

#: HTTP status codes worth retrying: too many requests and server-side failures.
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class _Retryable(Exception):
    """Internal: an attempt failed in a way worth retrying."""


def network_errors():
    """The exception types that mean "the service could not be reached" (retried by `HTTPClient`).

    Returns
    -------
    tuple of type
        requests' timeout, connection and broken-transfer errors and the built-in
        ``ConnectionError`` and ``TimeoutError``.
    """
    requests = require("requests", feature="talking to archives and VO services")

    return (
        requests.Timeout,
        requests.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        ConnectionError,
        TimeoutError,
    )


def _full_url(url, params):
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _looks_like_votable(head):
    head = head.lstrip()[:600].lower()
    return head.startswith(b"<?xml") or b"<votable" in head


def _cause_chain(exc):
    """``exc`` and the exceptions it wraps (pyvo's ``cause``, ``__cause__``, ``__context__``)."""
    seen = set()
    while isinstance(exc, BaseException) and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        cause = getattr(exc, "cause", None)  # pyvo keeps the wrapped error (or a text) here
        exc = cause if isinstance(cause, BaseException) else (exc.__cause__ or exc.__context__)


def _status_code(exc):
    code = getattr(exc, "code", None)
    if code is None:
        response = getattr(exc, "response", None)
        code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def map_error(exc, *, what):
    """Sort an exception raised by requests, pyvo or astroquery by its type.

    Parameters
    ----------
    exc : Exception
        The exception of a failed attempt.
    what : str
        What was attempted, for messages.

    Returns
    -------
    `_Retryable`, `~anomalymatch_astro.utils.exceptions.ServiceError` or None
        Retry, report the service's error, or None for an exception that is not a
        network or service failure (raised unchanged).
    """
    import requests

    try:
        from pyvo.dal import DALFormatError, DALQueryError, DALServiceError
    except ImportError:  # pragma: no cover - pyvo comes with the vo extra
        DALFormatError = DALQueryError = DALServiceError = ()  # noqa: N806

    chain = list(_cause_chain(exc))
    network = next((e for e in chain if isinstance(e, network_errors())), None)
    if network is not None:
        return _Retryable(f"{type(network).__name__}: {network}")
    if isinstance(exc, DALQueryError):
        return ServiceError(f"{what}: the service reported an error: {exc}")
    if isinstance(exc, DALFormatError):
        return ServiceError(f"{what}: the service answered a malformed VOTable ({exc}); check the URL and the protocol")
    if isinstance(exc, DALServiceError) or isinstance(exc, requests.HTTPError):
        code = _status_code(exc)
        cause = chain[1] if len(chain) > 1 else None
        if (code is not None and code in RETRY_STATUS) or (code is None and cause is None):
            # no code and no cause: pyvo could not connect to any endpoint
            return _Retryable(str(exc))
        return ServiceError(f"{what}: the service failed (HTTP {code}): {exc}")
    return None


class HTTPClient:
    """One `requests.Session` with retries, exponential backoff, a rate limit and error mapping.

    Every request to an archive or catalogue service goes through such an object: the
    requests it sends itself (`get`), those pyvo sends with its ``session``, and any other
    attempt run with `call` (e.g. an astroquery query).  Retries follow timeouts,
    connection errors and HTTP 429/5xx answers; error documents are not retried.

    Parameters
    ----------
    session : `requests.Session`, optional
        The HTTP session (default: a new one that rate limits each request and gives it a
        timeout of ``timeout`` seconds).  pyvo sends its requests without a timeout, so a
        session of your own should set one.
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
    >>> from anomalymatch_astro.archives import HTTPClient
    >>> http = HTTPClient(retries=2, backoff=0, rate_limit=0)
    >>> http.call(lambda: 42, what="a query that cannot fail")
    42
    """

    def __init__(self, *, session=None, timeout=None, retries=None, rate_limit=None, backoff=None):
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
        self._own_session = session is None
        self.session = session if session is not None else _make_session(self.timeout, self._throttle)
        self._lock = threading.Lock()
        self._last_request = 0.0
        self.n_requests = 0

    def __repr__(self):
        return (
            f"<{type(self).__name__} timeout={self.timeout} retries={self.retries} rate_limit={self.rate_limit} "
            f"backoff={self.backoff}>"
        )

    def _throttle(self):
        with self._lock:
            if self.rate_limit > 0:
                wait = self._last_request + 1.0 / self.rate_limit - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            self._last_request = time.monotonic()
            self.n_requests += 1

    def call(self, attempt, *, what, throttle=None, hint=None):
        """Run ``attempt()`` with rate limiting and retries; map its failures to the package's errors.

        Parameters
        ----------
        attempt : callable
            Does the whole operation once (it may send several requests) and returns its result.
        what : str
            What is attempted, for log lines and messages (e.g. ``"SIMBAD query"``).
        throttle : bool, optional
            Count and space each attempt by the rate limit.  Default: only when the session is
            not the client's own (its own session throttles each request instead); pass True
            for attempts that send their requests through another session (astroquery).
        hint : str, optional
            What the user can do, appended to the message of the final
            `~anomalymatch_astro.utils.exceptions.ArchiveError`.

        Returns
        -------
        object
            What ``attempt()`` returned.

        Raises
        ------
        ServiceError
            At once, when the service answered an error document (HTTP 4xx, error VOTable,
            malformed answer).
        ArchiveError
            When every attempt timed out, failed to connect or got an HTTP 429/5xx answer.
        """
        throttle = (not self._own_session) if throttle is None else throttle
        last = None
        for k in range(self.retries + 1):
            if k:
                delay = self.backoff * 2 ** (k - 1)
                log.info("retrying %s in %.2f s (attempt %d of %d): %s", what, delay, k + 1, self.retries + 1, last)
                time.sleep(delay)
            if throttle:
                self._throttle()
            try:
                return attempt()
            except _Retryable as exc:
                last = exc
            except ArchiveError:
                raise
            except Exception as exc:  # noqa: BLE001 -- sort the errors of requests, pyvo and astroquery
                mapped = map_error(exc, what=what)
                if mapped is None:
                    raise
                if isinstance(mapped, _Retryable):
                    last = mapped
                    continue
                raise mapped from exc
        if hint is None:
            hint = (
                "The service may be down or slow: try again later, or raise the timeout/retries "
                "(ArchiveClient(timeout=..., retries=...))."
            )
        msg = f"{what} failed after {self.retries + 1} attempt(s): {last}. {hint}"
        raise ArchiveError(msg) from last

    def check_response(self, response, url):
        """Raise for an HTTP error answer: retry 429/5xx, a ServiceError for 4xx and error VOTables.

        Parameters
        ----------
        response : `requests.Response`
            The answer.
        url : str
            The URL asked, for messages.
        """
        if response.status_code in RETRY_STATUS:
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

        Parameters
        ----------
        url : str
            The URL.
        params : dict, optional
            Query parameters.

        Returns
        -------
        `requests.Response`

        Raises
        ------
        ServiceError
            For a 4xx answer or an error VOTable.
        ArchiveError
            When every attempt timed out, failed to connect or got a 5xx answer.
        """

        def attempt():
            response = self.session.get(url, params=params, timeout=self.timeout)
            self.check_response(response, url)
            return response

        return self.call(attempt, what=f"GET {url}")


def _make_session(timeout, before_request):
    requests = require("requests", feature="talking to archives and VO services")

    class _ClientSession(requests.Session):
        """A session that rate limits every request and gives it a default timeout (pyvo passes none)."""

        def request(self, method, url, **kwargs):
            before_request()
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, **kwargs)

    session = _ClientSession()
    session.headers["User-Agent"] = "anomalymatch_astro-archives (python-requests)"
    return session
