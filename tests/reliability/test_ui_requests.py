"""Fuzzed HTTP requests against the standalone labelling server (tests/ui covers the fixed cases)."""

import http.client
import json
import os
import socket
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomalymatch_astro.ui import LabelServer
from anomalymatch_astro.ui._gallery import ACTIONS
from anomalymatch_astro.ui._server import TOKEN_HEADER

from .conftest import COUNTS, FUZZ

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "reliability-token-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    sys.path.insert(0, TESTS)
    try:
        from ui.conftest import build_workdir
    finally:
        sys.path.remove(TESTS)
    from anomalymatch_astro.active_learning import ActiveLearningSession

    workdir = build_workdir(str(tmp_path_factory.mktemp("ui")))
    session = ActiveLearningSession.open(workdir, user="fuzz")
    srv = LabelServer(session, token=TOKEN, page_size=4, max_body=4096).start()
    yield srv, session
    srv.shutdown()
    session.close()


def _request(srv, method, path, *, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{srv.port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.sampled_from(["src003", "anomaly", "normal", "top"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
SAFE_ACTIONS = sorted(set(ACTIONS) - {"retrain", "mode"})  # no training inside a fuzz loop


@st.composite
def actions(draw):
    if draw(st.integers(0, 4)) == 0:
        return draw(JSON)
    action = draw(st.sampled_from(SAFE_ACTIONS + ["nope"]))
    params = ACTIONS.get(action, ())
    request = {"action": action}
    for name in params:
        if draw(st.booleans()):
            request[name] = draw(JSON)
    if draw(st.integers(0, 5)) == 0:
        request[draw(st.text(max_size=5))] = draw(JSON)
    return request


@settings(FUZZ, max_examples=60)
@given(request=actions())
def test_api_actions(server, request):
    srv, session = server
    status, body = _request(
        srv,
        "POST",
        "/api/action",
        body=json.dumps(request).encode(),
        headers={TOKEN_HEADER: TOKEN, "Content-Type": "application/json"},
    )
    COUNTS["UI /api/action JSON"][str(status)] += 1
    assert status in (200, 413)  # errors are reported in the state, never a 500 or a dropped connection
    if status == 200:
        state = json.loads(body)
        assert isinstance(state, dict) and "error" in state
    assert set(session.labels.values()) <= {"anomaly", "normal"}


@settings(FUZZ, max_examples=60)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda c, n: c * n, st.sampled_from([b"[", b"{", b"1", b'{"a":', b"-", b'"\\u']), st.integers(1, 4000)
        ),
    ),
    ctype=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
)
def test_raw_bodies_always_answered(server, body, ctype):
    srv, session = server
    labels = session.labels
    headers = {TOKEN_HEADER: TOKEN, "Content-Type": ctype} if ctype else {TOKEN_HEADER: TOKEN}
    status, answer = _request(srv, "POST", "/api/action", body=body, headers=headers)
    COUNTS["UI /api/action raw bodies"][str(status)] += 1
    assert status in (200, 400, 413, 415)  # always an answer, never a dropped connection or a 500
    if status != 200:
        assert "error" in json.loads(answer)
        assert session.labels == labels


@settings(FUZZ, max_examples=60)
@given(
    path=st.one_of(
        st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
        st.builds(lambda p: "/static/" + p, st.text(st.sampled_from(list("./\\%2e5cf0abx:")), max_size=30)),
    ),
    with_token=st.booleans(),
)
def test_request_paths(server, path, with_token):
    srv, _ = server
    path = "/" + path.lstrip("/")
    sep = "&" if "?" in path else "?"
    target = f"{path}{sep}token={TOKEN}" if with_token else path
    try:
        status, body = _request(srv, "GET", target)
    except http.client.InvalidURL:
        return
    COUNTS["UI GET paths"][str(status)] += 1
    assert status in (200, 400, 403, 404)
    if not with_token and "token=" not in path:
        assert status in (400, 403)
    if status == 200:  # only the page, the state and the shipped static files
        assert not any(marker in body for marker in (b"import os", b"root:", b"[tool.", b"def "))


def test_oversized_headers_refused(server):
    srv, _ = server
    status, _ = _request(srv, "GET", f"/?token={TOKEN}", headers={"X-Big": "x" * 70000})
    assert status in (400, 431)
    status, _ = _request(srv, "GET", f"/?token={TOKEN}", headers={f"X-H{i}": "1" for i in range(120)})
    assert status in (400, 431)
    assert _request(srv, "GET", f"/api/state?token={TOKEN}")[0] == 200  # still serving


def test_stalled_client_does_not_block_others(server):
    srv, _ = server
    stalled = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        stalled.sendall(b"POST /api/action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        assert _request(srv, "GET", f"/api/state?token={TOKEN}")[0] == 200
    finally:
        stalled.close()
    assert srv.host == "127.0.0.1"
