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
* the page is sent with a strict Content-Security-Policy and no referrer, so the
  token does not leak through the links out to sky viewers.
"""

import hmac
import html
import http.server
import ipaddress
import json
import logging
import os
import secrets
import threading
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

from ..utils.exceptions import InvalidInputError
from ._gallery import Gallery

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

    # --------------------------------------------------------------- plumbing
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        text = (format % args).replace(self.server.app.token, "<token>")
        log.debug("%s %s", self.address_string(), text)

    def _send(self, status, body=b"", *, ctype="text/plain; charset=utf-8", headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
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
        self.close_connection = True
        self._send(status, f"{int(status)} {text}\n", headers={"Connection": "close"})

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

    # --------------------------------------------------------------- routes
    def do_HEAD(self):  # noqa: N802 - the stdlib's name
        self.do_GET()

    def do_GET(self):  # noqa: N802
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

    def do_POST(self):  # noqa: N802
        checked = self._check()
        if checked is None:
            return
        path, _ = checked
        length = self.headers.get("Content-Length")
        if length is None or self.headers.get("Transfer-Encoding"):
            self._error(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required")
            return
        try:
            n = int(length)
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "bad Content-Length")
            return
        if n < 0 or n > self.server.app.max_body:
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body too large (limit {self.server.app.max_body} bytes)"
            )
            return
        body = self.rfile.read(n)
        if path != "/api/action":
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        try:
            request = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._error(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
            return
        self._json(self.server.app.gallery.dispatch(request))

    def _json(self, obj):
        try:
            text = json.dumps(obj, allow_nan=False)
        except (TypeError, ValueError) as exc:
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


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


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
        self, session, *, host="127.0.0.1", port=0, token=None, max_body=64 * 1024, allow_remote=False, **gallery_kwargs
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
        self.static_dir = os.path.realpath(STATIC_DIR)
        self.httpd = _HTTPServer((host, int(port)), _Handler)
        self.httpd.app = self
        self.host = host
        self.port = self.httpd.server_address[1]
        names = {host.lower(), "127.0.0.1", "localhost", "[::1]"}
        self.allowed_hosts = {f"{n}:{self.port}" for n in names}
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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __repr__(self):
        return f"<LabelServer {self.base_url} ({self.workdir})>"
