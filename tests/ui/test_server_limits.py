"""The standalone server under abuse: idle and slow connections, CSRF, hostile JSON, token in logs, slow work.

Every test talks to 127.0.0.1 only, with bounded loops and short timeouts, and ends in seconds.
"""

import concurrent.futures
import http.client
import json
import logging
import socket
import threading
import time
from urllib.parse import quote

import pytest

from anomalymatch_astro.ui import Gallery, LabelServer
from anomalymatch_astro.ui._redact import token_pattern
from anomalymatch_astro.ui._server import TOKEN_HEADER

TOKEN = "limits-token-0123456789abcdef"
JSON_HEADERS = {TOKEN_HEADER: TOKEN, "Content-Type": "application/json"}


@pytest.fixture
def make_server(session):
    servers = []

    def make(**kwargs):
        kwargs.setdefault("token", TOKEN)
        kwargs.setdefault("page_size", 6)
        srv = LabelServer(session, **kwargs).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.shutdown()


def request(srv, method, path, *, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{srv.port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def label(srv, obj_id, word="anomaly", *, timeout=10, headers=None):
    body = json.dumps({"action": "label", "id": obj_id, "label": word}).encode()
    return request(srv, "POST", "/api/action", body=body, headers=headers or JSON_HEADERS, timeout=timeout)


def unlabelled(session, n=1):
    labelled = session.labels
    return [str(i) for i in session.cutouts.ids if str(i) not in labelled][:n]


def closed_by_server(sock, within):
    """True when the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# ------------------------------------------------------------------ item 6: connections
def test_idle_connections_hold_no_threads_and_do_not_block(make_server, session):
    srv = make_server(workers=4, timeout=20)
    assert srv.httpd.request_queue_size >= 128
    threads_before = threading.active_count()
    idle = []
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"G")  # one byte of a request, then nothing
            idle.append(s)
        (obj,) = unlabelled(session)
        t0 = time.monotonic()
        status, _, _ = label(srv, obj, timeout=2)
        assert status == 200 and time.monotonic() - t0 < 2
        assert session.labels[obj] == "anomaly"
        # at most the 4 workers were added, not one thread per connection
        assert threading.active_count() <= threads_before + 4
    finally:
        for s in idle:
            s.close()


def test_slowloris_and_silent_connections_are_closed(make_server):
    srv = make_server(timeout=0.6)
    silent = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    slow = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        slow.sendall(b"GET /api/state HTTP/1.1\r\n")
        t0 = time.monotonic()
        closed = False
        for i in range(40):  # one header byte every 0.1 s: never a whole header
            try:
                slow.sendall(b"Xa"[i % 2 : i % 2 + 1])
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - t0 > 1.2:
                break
        assert closed or closed_by_server(slow, 1.0)
        assert time.monotonic() - t0 < 3
        assert closed_by_server(silent, 1.0)
    finally:
        silent.close()
        slow.close()
    deadline = time.monotonic() + 3
    while srv.httpd.open_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.httpd.open_connections == 0
    assert request(srv, "GET", "/api/state", headers={TOKEN_HEADER: TOKEN})[0] == 200


def test_slow_body_gets_408_and_frees_the_worker(make_server):
    srv = make_server(timeout=0.5, workers=1)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        head = (
            f"POST /api/action HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n{TOKEN_HEADER}: {TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        s.sendall(head.encode())
        s.settimeout(3)
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408")
    finally:
        s.close()
    # the one worker is free again
    assert request(srv, "GET", "/api/state", headers={TOKEN_HEADER: TOKEN}, timeout=3)[0] == 200


def test_token_checked_before_the_body_is_read(make_server, session):
    srv = make_server(timeout=20)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        head = (
            f"POST /api/action HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
        )
        s.sendall(head.encode())  # no token and no body: refused at once, not after 20 s
        s.settimeout(2)
        assert s.recv(4096).startswith(b"HTTP/1.1 403")
    finally:
        s.close()


def test_connection_cap_queues_in_the_backlog(make_server, session):
    srv = make_server(workers=2, max_connections=3, timeout=0.5)
    idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(3)]
    try:
        (obj,) = unlabelled(session)
        # the request waits in the backlog until the idle connections time out, then is served
        status, _, _ = label(srv, obj, timeout=5)
        assert status == 200 and session.labels[obj] == "anomaly"
        assert srv.httpd.open_connections <= 3
    finally:
        for s in idle:
            s.close()


def test_many_concurrent_label_posts_all_answered(make_server, session):
    srv = make_server(workers=8)
    ids = unlabelled(session, 60)
    with concurrent.futures.ThreadPoolExecutor(60) as pool:
        statuses = list(pool.map(lambda i: label(srv, i, "normal", timeout=30)[0], ids))
    assert statuses == [200] * len(ids)
    assert all(session.labels[i] == "normal" for i in ids)


# ------------------------------------------------------------------ item 7: CSRF
def test_cross_origin_form_post_is_refused(make_server, session):
    srv = make_server()
    cookie = request(srv, "GET", f"/?token={TOKEN}")[1]["Set-Cookie"].split(";")[0]
    (obj,) = unlabelled(session)
    body = json.dumps({"action": "label", "id": obj, "label": "anomaly"}).encode()
    form = {"Cookie": cookie, "Content-Type": "text/plain", "Origin": "http://127.0.0.1:8888"}
    status, headers, answer = request(srv, "POST", "/api/action", body=body, headers=form)
    assert status == 403 and headers["Content-Type"] == "application/json"
    assert "cross-origin" in json.loads(answer)["error"]
    own = f"http://127.0.0.1:{srv.port}"
    refused = [
        # the cookie alone, JSON, no Origin: a custom header is still needed
        ({"Cookie": cookie, "Content-Type": "application/json"}, 403),
        # the cookie and a form's content type from our own origin
        ({"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded", "Origin": own}, 403),
        # right header, wrong origin or site
        (dict(JSON_HEADERS, Origin="http://localhost:8888"), 403),
        (dict(JSON_HEADERS, Origin="http://evil.example"), 403),
        ({**JSON_HEADERS, "Sec-Fetch-Site": "same-site"}, 403),
        # right header, not JSON
        ({TOKEN_HEADER: TOKEN, "Content-Type": "text/plain"}, 415),
    ]
    for headers, expected in refused:
        assert request(srv, "POST", "/api/action", body=body, headers=headers)[0] == expected, headers
    assert obj not in session.labels
    # what the page's fetch sends is accepted (same origin, or "null" under Referrer-Policy: no-referrer)
    for extra in ({"Origin": own, "Sec-Fetch-Site": "same-origin"}, {"Origin": "null"}, {}):
        headers = {"Cookie": cookie, "Content-Type": "application/json; charset=utf-8", TOKEN_HEADER: TOKEN, **extra}
        assert request(srv, "POST", "/api/action", body=body, headers=headers)[0] == 200
    assert session.labels[obj] == "anomaly"


def test_page_script_sends_json_and_the_custom_header():
    import os

    from anomalymatch_astro.ui import STATIC_DIR

    with open(os.path.join(STATIC_DIR, "gallery.js"), encoding="utf-8") as f:
        js = f.read()
    transport = js[js.index("export function httpTransport") :]
    assert '"Content-Type": "application/json"' in transport
    assert '"X-AnomalyMatch-Token": token' in transport and '"X-Requested-With"' in transport


# ------------------------------------------------------------------ item 8: hostile JSON, logs, slow work
@pytest.mark.parametrize(
    "body",
    [b"1" * 5000, b"[" * 20000, b'{"action": "label", "id": ' + b"9" * 5000 + b"}", b"{" * 30000, b"\xff\xfe"],
    ids=["digits", "brackets", "digits-inside", "braces", "not-utf8"],
)
def test_hostile_json_gets_a_400_with_a_json_error(make_server, session, body):
    srv = make_server()
    labels = session.labels
    status, headers, answer = request(srv, "POST", "/api/action", body=body, headers=JSON_HEADERS)
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert "JSON" in json.loads(answer)["error"]
    assert session.labels == labels
    assert request(srv, "GET", "/api/state", headers={TOKEN_HEADER: TOKEN})[0] == 200


def test_unexpected_error_is_answered_500(make_server, monkeypatch, caplog):
    srv = make_server()

    def broken(request):
        msg = f"boom {quote(TOKEN)}"
        raise RuntimeError(msg)

    monkeypatch.setattr(srv.gallery, "dispatch", broken)
    status, _, answer = request(srv, "POST", "/api/action", body=b"{}", headers=JSON_HEADERS)
    assert status == 500 and "internal error" in json.loads(answer)["error"]
    # the traceback is logged, without the token
    assert "RuntimeError: boom <token>" in caplog.text and TOKEN not in caplog.text


def test_token_is_redacted_in_every_log_line(make_server, caplog):
    srv = make_server()
    encoded_upper = "".join(f"%{ord(c):02X}" for c in TOKEN)
    encoded_lower = encoded_upper.lower()
    partly = TOKEN[:5] + "".join(f"%{ord(c):02x}" for c in TOKEN[5:9]) + TOKEN[9:]
    twice = "".join(f"%25{ord(c):02X}" for c in TOKEN)
    forms = [TOKEN, encoded_upper, encoded_lower, partly, twice, quote(TOKEN, safe="")]
    with caplog.at_level(logging.DEBUG, logger="anomalymatch_astro.ui"):
        for form in forms:
            request(srv, "GET", f"/nothing?token={form}")
            request(srv, "GET", f"/{form}", headers={"Referer": f"http://x/?token={form}", "Cookie": f"a={form}"})
        # a malformed request line (400 from the stdlib) and an action that fails on the token as an id
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(f"BAD /?token={encoded_upper}\r\n\r\n".encode())
        s.recv(4096)
        s.close()
        label(srv, TOKEN)
        label(srv, encoded_lower)
    text = caplog.text
    assert "<token>" in text and "failed" in text
    for form in forms:
        assert form not in text, form
    assert token_pattern(TOKEN).search(text) is None


def test_more_like_this_does_not_block_labelling(make_server, session, monkeypatch):
    srv = make_server(workers=4)
    started = threading.Event()
    real = session.candidates

    def slow_candidates(n, *, strategy="top", like=None, pool=None, **kwargs):
        if strategy == "similar":
            started.set()
            time.sleep(3)
        return real(n, strategy=strategy, like=like, pool=pool, **kwargs)

    monkeypatch.setattr(session, "candidates", slow_candidates)
    first, second = unlabelled(session, 2)
    body = json.dumps({"action": "strategy", "strategy": "similar", "like": first}).encode()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        similar = pool.submit(request, srv, "POST", "/api/action", body=body, headers=JSON_HEADERS, timeout=30)
        assert started.wait(10)
        t0 = time.monotonic()
        status, _, answer = label(srv, second, "normal", timeout=2)
        assert status == 200 and time.monotonic() - t0 < 1.5
        assert json.loads(answer)["counts"]["labelled"] == len(session.labels)
        status, _, answer = similar.result(30)
    assert status == 200
    state = json.loads(answer)
    assert state["strategy"] == "similar" and state["like"] == [first] and state["tiles"]
    assert session.labels[second] == "normal"


def test_newer_refresh_wins_over_a_slower_older_one(session, monkeypatch):
    gallery = Gallery(session, page_size=4)
    real = session.candidates
    release = threading.Event()

    def slow_candidates(n, *, strategy="top", like=None, pool=None, **kwargs):
        if strategy == "similar":
            release.wait(10)
        return real(n, strategy=strategy, like=like, pool=pool, **kwargs)

    monkeypatch.setattr(session, "candidates", slow_candidates)
    (first,) = unlabelled(session)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(gallery.set_strategy, "similar", like=first)
        time.sleep(0.2)
        top = gallery.set_strategy("top")  # while the similar search runs
        release.set()
        slow.result(10)
    assert gallery.strategy == "top" and [t["id"] for t in gallery.state()["tiles"]] == [t["id"] for t in top["tiles"]]


def test_error_is_cleared_by_the_next_action(session):
    gallery = Gallery(session, page_size=4)
    assert "unknown action" in gallery.dispatch({"action": "nope"})["error"]
    assert gallery.dispatch({"action": "status"})["error"]  # a poll keeps it on screen
    assert gallery.dispatch({"action": "view", "view": "lupton"})["error"] == ""
    assert "label must be one of" in gallery.dispatch({"action": "label", "id": "src050", "label": "x"})["error"]
    assert gallery.dispatch({"action": "page", "page": 0})["error"] == ""
