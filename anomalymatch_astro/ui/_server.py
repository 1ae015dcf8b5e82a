"""`LabelServer`: the labelling gallery as a small standalone web app (stdlib only).

The page is the same ES module as the Jupyter widget (``static/gallery.js``),
talking JSON to a `Gallery` over ``POST /api/action``.  Security model:

* listens on 127.0.0.1 unless told otherwise;
* every request needs the secret token (``?token=``, the ``X-AnomalyMatch-Token``
  header, or the cookie set by the first page load), else 403;
* the ``Host`` header must name the server's own address (no DNS rebinding);
* only the package's own static files are served, never anything outside that
  folder (path traversal is refused with 403);
* request bodies over ``max_body`` bytes are refused (413) unread;
* a ``POST`` must be ``Content-Type: application/json``, carry the token header
  (or ``X-Requested-With``), and come from no other origin (``Origin`` and
  ``Sec-Fetch-Site`` are checked), so another site's page -- a form on another
  local port, say -- cannot label through the user's cookie (CSRF);
* a malformed, deeply nested or over-long JSON body gets a 400 with a JSON error;
* connections are served by a fixed pool of threads (`BoundedHTTPServer`),
  one request each, and closed when a request is slower than ``timeout``;
* the token is removed from every log line, raw or percent-encoded;
* the page is sent with a strict Content-Security-Policy and no referrer, so the
  token does not leak through the links out to sky viewers.
"""

import hmac
import html
import http.server
import io
import ipaddress
import json
import logging
import os
import secrets
import threading
import time
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

from ..utils.exceptions import InvalidInputError
from ._gallery import Gallery
from ._httpd import BoundedHTTPServer, DeadlineReader
from ._redact import RedactFilter, redact

__all__ = ["LabelServer", "STATIC_DIR", "TOKEN_HEADER"]

log = logging.getLogger(__name__)

#: The folder of the UI's static files (JS, CSS, HTML).
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

#: The request header that may carry the token.
TOKEN_HEADER = "X-AnomalyMatch-Token"

_COOKIE = "amui_token"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "anomalymatch-astro-label"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def __init__(self, request, client_address, server, *, prefix=b"", deadline=None):
        self._prefix = prefix
        self._deadline = deadline if deadline is not None else time.monotonic() + server.request_timeout
        self._responded = False
        super().__init__(request, client_address, server)

    # --------------------------------------------------------------- plumbing
    def setup(self):
        super().setup()
        self.rfile.close()
        self.rfile = io.BufferedReader(DeadlineReader(self.connection, self._prefix, self._deadline))

    def handle(self):
        # one request per connection: an idle keep-alive connection would hold a worker
        self.close_connection = True
        self.handle_one_request()

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        log.debug("%s %s", self.address_string(), redact(format % args))

    def send_response(self, code, message=None):
        self._responded = True
        self.connection.settimeout(self.server.request_timeout)  # the write deadline
        super().send_response(code, message)

    def _send(self, status, body=b"", *, ctype="text/plain; charset=utf-8", headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", _CSP)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status, text):
        if urlsplit(self.path).path.startswith("/api/"):
            self._send(status, json.dumps({"error": text, "status": int(status)}), ctype="application/json")
        else:
            self._send(status, f"{int(status)} {text}\n")

    def _token_ok(self, query):
        expected = self.server.app.token.encode()
        given = []
        given += query.get("token", [])
        if self.headers.get(TOKEN_HEADER):
            given.append(self.headers[TOKEN_HEADER])
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == _COOKIE:
                given.append(value)
        return any(hmac.compare_digest(g.encode("utf-8", "replace"), expected) for g in given)

    def _host_ok(self):
        host = (self.headers.get("Host") or "").strip().lower()
        return host in self.server.app.allowed_hosts

    def _check(self):
        """Common checks; returns (path, query) or None when a response was sent."""
        if not self._host_ok():
            self._error(HTTPStatus.FORBIDDEN, "forbidden: unexpected Host header")
            return None
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        if not self._token_ok(query):
            self._error(
                HTTPStatus.FORBIDDEN, "forbidden: this URL needs the token printed by 'anomalymatch-astro label'"
            )
            return None
        return parts.path, query

    def _csrf_refusal(self):
        """Why a state-changing request may come from another site's page (None when it cannot).

        A form or a "simple" cross-origin fetch cannot send a custom header nor a
        JSON content type without a CORS preflight, which this server never grants.
        """
        origin = (self.headers.get("Origin") or "").strip().lower()
        if origin and origin != "null" and origin not in self.server.app.allowed_origins:
            return HTTPStatus.FORBIDDEN, f"forbidden: cross-origin request from {origin!r}"
        site = (self.headers.get("Sec-Fetch-Site") or "").strip().lower()
        if site and site not in ("same-origin", "none"):
            return HTTPStatus.FORBIDDEN, f"forbidden: {site} request"
        if not (self.headers.get(TOKEN_HEADER) or self.headers.get("X-Requested-With")):
            return HTTPStatus.FORBIDDEN, f"forbidden: a POST needs the {TOKEN_HEADER} (or X-Requested-With) header"
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the body must be sent as Content-Type: application/json"
        return None

    def _guarded(self, route):
        try:
            route()
        except TimeoutError:
            if not self._responded:
                self._error(HTTPStatus.REQUEST_TIMEOUT, "the request did not arrive in time")
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception:  # never drop a request without an answer
            log.exception("request %s failed", redact(self.requestline))
            if not self._responded:
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (see the server's log)")

    # --------------------------------------------------------------- routes
    def do_HEAD(self):  # noqa: N802 - the stdlib's name
        self._guarded(self._get)

    def do_GET(self):  # noqa: N802
        self._guarded(self._get)

    def do_POST(self):  # noqa: N802
        self._guarded(self._post)

    def _get(self):
        checked = self._check()
        if checked is None:
            return
        path, _ = checked
        app = self.server.app
        if path in ("/", "/index.html"):
            page = app.index_html()
            cookie = f"{_COOKIE}={app.token}; Path=/; HttpOnly; SameSite=Strict"
            self._send(HTTPStatus.OK, page, ctype=_TYPES[".html"], headers={"Set-Cookie": cookie})
        elif path == "/api/state":
            self._json(app.gallery.state())
        elif path.startswith("/static/"):
            self._static(path[len("/static/") :])
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    def _post(self):
        # every check that needs no body comes first: a refused request costs no read
        checked = self._check()
        if checked is None:
            return
        path, _ = checked
        if path != "/api/action":
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        refusal = self._csrf_refusal()
        if refusal is not None:
            self._error(*refusal)
            return
        length = self.headers.get("Content-Length")
        if length is None or self.headers.get("Transfer-Encoding"):
            self._error(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required")
            return
        text = length.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 12:
            self._error(HTTPStatus.BAD_REQUEST, "bad Content-Length")
            return
        n = int(text)
        if n > self.server.app.max_body:
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body too large (limit {self.server.app.max_body} bytes)"
            )
            return
        body = self.rfile.read(n)
        if len(body) < n:
            self._error(HTTPStatus.BAD_REQUEST, "the body is shorter than its Content-Length")
            return
        try:
            request = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            # ValueError: not JSON, or a number over Python's digit limit; RecursionError: nested too deep
            reason = "nested too deeply" if isinstance(exc, RecursionError) else type(exc).__name__
            self._error(HTTPStatus.BAD_REQUEST, f"the body must be a JSON object ({reason})")
            return
        self._json(self.server.app.gallery.dispatch(request))

    def _json(self, obj):
        try:
            text = json.dumps(obj, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            log.error("could not encode the state as JSON: %s", exc)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "the state could not be encoded (see the log)")
            return
        self._send(HTTPStatus.OK, text, ctype="application/json")

    def _static(self, rel):
        root = self.server.app.static_dir
        rel = unquote(rel)
        parts = rel.replace("\\", "/").split("/")
        if "\x00" in rel or not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or ":" in rel:
            self._error(HTTPStatus.FORBIDDEN, "forbidden path")
            return
        full = os.path.realpath(os.path.join(root, *parts))
        if os.path.commonpath([full, root]) != root:
            self._error(HTTPStatus.FORBIDDEN, "forbidden path")
            return
        ext = os.path.splitext(full)[1].lower()
        if ext not in _TYPES or not os.path.isfile(full):
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        with open(full, "rb") as f:
            data = f.read()
        self._send(HTTPStatus.OK, data, ctype=_TYPES[ext])


class LabelServer:
    """Serve the labelling gallery of a session as a web page on 127.0.0.1, behind a token.

    Parameters
    ----------
    session : `~anomalymatch_astro.active_learning.ActiveLearningSession` or `Gallery`
        What to label.  A session is wrapped in a `Gallery` built from
        ``gallery_kwargs`` (trainings run in a background thread).
    host : str, optional
        Address to listen on; anything but a loopback address is refused unless
        ``allow_remote=True`` (the token is then the only protection and travels
        unencrypted).
    port : int, optional
        TCP port; 0 picks a free one.
    token : str, optional
        The secret; default ``secrets.token_urlsafe(24)``.
    max_body : int, optional
        Largest accepted request body in bytes.
    allow_remote : bool, optional
        Allow a non-loopback ``host``.
    timeout : float, optional
        Seconds a client has to send a request's header, and again its body;
        slower connections are closed.
    workers : int, optional
        Threads that answer requests (a fixed pool).
    max_connections : int, optional
        Connections open at a time; more wait in the listen backlog.
    **gallery_kwargs
        Passed to `Gallery` (``strategy``, ``page_size``, ``mode`` ...).

    Examples
    --------
    .. code-block:: python

        from anomalymatch_astro.active_learning import ActiveLearningSession
        from anomalymatch_astro.ui import LabelServer

        session = ActiveLearningSession.open("my_session")
        with LabelServer(session, page_size=24) as server:
            print(server.url)          # open it in a browser
            server.serve_forever()     # until Ctrl+C
    """

    def __init__(
        self,
        session,
        *,
        host="127.0.0.1",
        port=0,
        token=None,
        max_body=64 * 1024,
        allow_remote=False,
        timeout=15.0,
        workers=16,
        max_connections=128,
        **gallery_kwargs,
    ):
        if not _is_loopback(host) and not allow_remote:
            msg = (
                f"refusing to listen on {host!r}: the labelling server listens on 127.0.0.1 only "
                "unless allow_remote=True (then use an SSH tunnel or a trusted network)"
            )
            raise InvalidInputError(msg)
        if isinstance(session, Gallery):
            self.gallery = session
        else:
            gallery_kwargs.setdefault("background_training", True)
            self.gallery = Gallery(session, **gallery_kwargs)
        self.token = token if token is not None else secrets.token_urlsafe(24)
        if len(self.token) < 16:
            msg = "the token must be at least 16 characters long"
            raise InvalidInputError(msg)
        self.max_body = int(max_body)
        if not (timeout > 0 and int(workers) >= 1 and int(max_connections) >= 1):
            msg = f"timeout, workers and max_connections must be positive, got {timeout}, {workers}, {max_connections}"
            raise InvalidInputError(msg)
        self.static_dir = os.path.realpath(STATIC_DIR)
        self.httpd = BoundedHTTPServer(
            (host, int(port)), _Handler, workers=workers, max_connections=max_connections, timeout=timeout
        )
        self.httpd.app = self
        self.host = host
        self.port = self.httpd.server_address[1]
        names = {host.lower(), "127.0.0.1", "localhost", "[::1]"}
        self.allowed_hosts = {f"{n}:{self.port}" for n in names}
        self.allowed_origins = {f"http://{h}" for h in self.allowed_hosts}
        RedactFilter.add(self.token)
        self._closed = False
        self._thread = None
        session_obj = self.gallery.session
        self.workdir = getattr(session_obj, "workdir", None) or "(in memory)"

    @property
    def base_url(self):
        """The server's address without the token."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def url(self):
        """The address to open, with the token."""
        return f"{self.base_url}?token={self.token}"

    def index_html(self):
        """The page (the token is put into the asset URLs)."""
        with open(os.path.join(self.static_dir, "index.html"), encoding="utf-8") as f:
            text = f.read()
        return text.replace("{{TOKEN}}", html.escape(self.token, quote=True)).replace(
            "{{WORKDIR}}", html.escape(str(self.workdir))
        )

    def start(self):
        """Serve in a background (daemon) thread and return self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="amui-server", daemon=True
            )
            self._thread.start()
            log.info("labelling UI at %s", self.base_url)
        return self

    def serve_forever(self):
        """Serve in this thread until `shutdown` (or Ctrl+C)."""
        log.info("labelling UI at %s", self.base_url)
        self.httpd.serve_forever(poll_interval=0.2)

    def shutdown(self):
        """Stop serving and close the socket (waits for a running training to finish for up to 60 s)."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(10)
            self._thread = None
        self.httpd.server_close()
        self.gallery.wait(timeout=60)
        if not self._closed:
            self._closed = True
            RedactFilter.remove(self.token)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __repr__(self):
        return f"<LabelServer {self.base_url} ({self.workdir})>"
