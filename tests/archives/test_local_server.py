"""Faults from a real HTTP server thread on 127.0.0.1: a connection cut mid-file, then a good answer."""

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from anomalymatch_astro.utils.exceptions import ArchiveError


class _Handler(BaseHTTPRequestHandler):
    plan = []  # per request: "cut", "ok"
    body = b""

    def do_GET(self):
        mode = _Handler.plan.pop(0) if _Handler.plan else "ok"
        self.send_response(200)
        self.send_header("Content-Type", "application/fits")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body if mode == "ok" else self.body[:3000])
        self.wfile.flush()
        if mode == "cut":
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server(fits_bytes):
    _Handler.body = fits_bytes["candels_f606w.fits"]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/candels_f606w.fits"
    httpd.shutdown()
    httpd.server_close()


def test_cut_connection_is_retried(client, server, fits_bytes):
    _Handler.plan = ["cut", "ok"]
    path = client.download(server)
    assert open(path, "rb").read() == fits_bytes["candels_f606w.fits"]


def test_cut_connection_every_time(client, server):
    _Handler.plan = ["cut"] * 3
    with pytest.raises(ArchiveError, match="3 attempt"):
        client.download(server)
    assert not os.path.exists(client.cache_path(server))
    assert os.listdir(client.cache_dir) == []
