"""The standalone server's security and API, over real HTTP on 127.0.0.1 (no browser)."""

import http.client
import json
import os

import pytest

from anomalymatch_astro.ui import LabelServer
from anomalymatch_astro.ui._server import TOKEN_HEADER
from anomalymatch_astro.utils.exceptions import InvalidInputError

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def server(session):
    srv = LabelServer(session, token=TOKEN, page_size=6, max_body=4096).start()
    yield srv
    srv.shutdown()


def request(srv, method, path, *, body=None, headers=None, host=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{srv.port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def action(srv, obj):
    status, _, body = request(
        srv,
        "POST",
        "/api/action",
        body=json.dumps(obj).encode(),
        headers={TOKEN_HEADER: TOKEN, "Content-Type": "application/json"},
    )
    assert status == 200
    return json.loads(body)


def test_listens_on_loopback_with_random_token(session):
    srv = LabelServer(session)
    try:
        assert srv.httpd.server_address[0] == "127.0.0.1"
        assert len(srv.token) >= 24 and srv.url == f"http://127.0.0.1:{srv.port}/?token={srv.token}"
        other = LabelServer(session)
        assert other.token != srv.token
        other.shutdown()
    finally:
        srv.shutdown()
    with pytest.raises(InvalidInputError, match="127.0.0.1"):
        LabelServer(session, host="0.0.0.0")
    with pytest.raises(InvalidInputError, match="16 characters"):
        LabelServer(session, token="short")


@pytest.mark.parametrize(
    "path", ["/", "/api/state", "/static/gallery.js", "/?token=wrong", "/?token=", "/?token=" + TOKEN[:-1]]
)
def test_token_required(server, path):
    status, _, body = request(server, "GET", path)
    assert status == 403
    assert b"token" in body and b"amui" not in body


def test_token_routes(server, session):
    status, headers, body = request(server, "GET", f"/?token={TOKEN}")
    assert status == 200 and b"static/app.js?token=" + TOKEN.encode() in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # the cookie alone is accepted (static files loaded by the page), and the header
    status, headers, body = request(server, "GET", "/static/gallery.js", headers={"Cookie": cookie.split(";")[0]})
    assert status == 200 and headers["Content-Type"].startswith("text/javascript") and b"export" in body
    status, _, body = request(server, "GET", "/api/state", headers={TOKEN_HEADER: TOKEN})
    assert status == 200 and len(json.loads(body)["tiles"]) == 6
    status, _, _ = request(server, "GET", f"/nothing?token={TOKEN}")
    assert status == 404


def test_host_header_checked(server):
    status, _, _ = request(server, "GET", f"/?token={TOKEN}", host="evil.example:80")
    assert status == 403
    status, _, _ = request(server, "GET", f"/?token={TOKEN}", host=f"localhost:{server.port}")
    assert status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/../_server.py",
        "/static/..%2f_server.py",
        "/static/%2e%2e/%2e%2e/cli/_label.py",
        "/static/..\\_server.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/./gallery.js",
        "/static/gallery.js%00.png",
        "/static/..%5c..%5cpyproject.toml",
    ],
)
def test_path_traversal_refused(server, path):
    sep = "&" if "?" in path else "?"
    status, _, body = request(server, "GET", f"{path}{sep}token={TOKEN}")
    assert status in (403, 404)
    assert b"import " not in body and b"root:" not in body and b"def " not in body


def test_symlink_out_of_static_dir_refused(session, tmp_path):
    # a static folder holding a link that points outside it: the link is not followed
    static = tmp_path / "static"
    static.mkdir()
    (static / "ok.js").write_text("export const ok = 1;")
    secret = tmp_path / "secret.js"
    secret.write_text("secret")
    try:
        os.symlink(secret, static / "link.js")
    except OSError:
        pytest.skip("cannot create a symlink here")
    srv = LabelServer(session, token=TOKEN).start()
    srv.static_dir = os.path.realpath(static)
    try:
        status, _, body = request(srv, "GET", f"/static/ok.js?token={TOKEN}")
        assert status == 200 and b"ok" in body
        status, _, body = request(srv, "GET", f"/static/link.js?token={TOKEN}")
        assert status == 403 and b"secret" not in body
    finally:
        srv.shutdown()


def test_oversize_and_malformed_bodies(server, session):
    labels = session.labels
    big = json.dumps({"action": "label", "id": "src050", "label": "anomaly", "pad": "x" * 5000}).encode()
    json_headers = {TOKEN_HEADER: TOKEN, "Content-Type": "application/json"}
    status, _, _ = request(server, "POST", "/api/action", body=big, headers=json_headers)
    assert status == 413
    # no Content-Length
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/api/action", skip_host=True)
    conn.putheader("Host", f"127.0.0.1:{server.port}")
    conn.putheader(TOKEN_HEADER, TOKEN)
    conn.putheader("Content-Type", "application/json")
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()
    status, _, _ = request(server, "POST", "/api/action", body=b"\xff{not json", headers=json_headers)
    assert status == 400
    status, _, _ = request(server, "POST", "/api/action", body=b"{}", headers={"Content-Type": "application/json"})
    assert status == 403  # no token
    assert session.labels == labels


def test_api_label_undo_retrain(server, session):
    st = action(server, {"action": "state"})
    ids = [t["id"] for t in st["tiles"]]
    action(server, {"action": "label", "id": ids[0], "label": "anomaly"})
    st = action(server, {"action": "label", "id": ids[1], "label": "normal"})
    assert st["counts"]["labelled"] == 7
    st = action(server, {"action": "undo"})
    assert st["counts"]["labelled"] == 6 and session.labels[ids[0]] == "anomaly"
    st = action(server, {"action": "retrain", "mode": "fast"})
    assert st["training"] is not None or st["last_train"] is not None
    assert server.gallery.wait(timeout=60)
    st = action(server, {"action": "status"})
    assert st["training"] is None and st["last_train"]["mode"] == "fast" and st["cycle"] == 2
    assert not st["images"]
    st = action(server, {"action": "state"})
    assert st["images"] and ids[0] not in [t["id"] for t in st["tiles"]]
