"""End to end in a real browser: headless Debian Chromium driven by Playwright.

The standalone server (``LabelServer``, what ``anomalymatch-astro label`` serves)
and the Jupyter widget under Voila are opened, candidates are labelled by click
and by keyboard, one label is undone, the model is retrained, and the label store
on disk and the new order are checked.  Screenshots are taken every run; they replace
the user guide's pictures in docs/_static/ui/ only when ``ANOMALYMATCH_ASTRO_SCREENSHOTS=docs``
is set (so a test run leaves the source tree clean).  In CI (``CI`` set) a missing browser
fails these tests.
"""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from anomalymatch_astro.ui import LabelServer, write_label_notebook

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "_static" / "ui"


def disk_labels(workdir):
    con = sqlite3.connect(os.path.join(workdir, "labels.sqlite"))
    try:
        rows = con.execute("SELECT id, label, source FROM events ORDER BY seq").fetchall()
    finally:
        con.close()
    current = {}
    for obj_id, value, _ in rows:
        current[obj_id] = "anomaly" if value == 1 else "normal"
    return current, rows


def tile_ids(page):
    return page.eval_on_selector_all("[data-testid=tile]", "els => els.map(e => e.dataset.id)")


def wait_label(page, obj_id, label):
    page.wait_for_selector(f'[data-testid=tile][data-id="{obj_id}"][data-label="{label}"]')


def shot(page, name):
    import tempfile

    folder = (
        SHOTS
        if os.environ.get("ANOMALYMATCH_ASTRO_SCREENSHOTS") == "docs"
        else Path(tempfile.gettempdir()) / "anomalymatch_astro_ui_shots"
    )
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=False)
    assert (folder / name).stat().st_size > 0


def drive(page, workdir, n_tiles, shot_prefix):
    """The common scenario; returns the ids labelled and the tile order after retraining."""
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=tile]').length === {n_tiles}")
    page.wait_for_selector("[data-testid=tile] img.amui-img")
    before = tile_ids(page)
    start, _ = disk_labels(workdir)
    assert not set(before) & set(start)
    # handled keys must not reach the page (JupyterLab shortcuts): count what leaks to document
    page.evaluate("window.__leaked = 0; document.addEventListener('keydown', () => { window.__leaked++; })")

    # two labels by click
    page.click(f'[data-testid="anomaly-{before[0]}"]')
    wait_label(page, before[0], "anomaly")
    page.click(f'[data-testid="normal-{before[1]}"]')
    wait_label(page, before[1], "normal")
    # one by keyboard: focus tile 3 with a click on its id, move right with the arrow, press "a"
    page.click(f'[data-testid=tile][data-id="{before[2]}"] .amui-id')
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(f'[data-testid=tile][data-id="{before[3]}"].amui-focus')
    page.keyboard.press("a")
    wait_label(page, before[3], "anomaly")
    # and a skip by keyboard (UI only)
    page.click(f'[data-testid=tile][data-id="{before[4]}"] .amui-id')
    page.keyboard.press("s")
    wait_label(page, before[4], "skip")
    if shot_prefix == "standalone":  # the user guide shows this one, and the retrained page of both
        shot(page, f"{shot_prefix}_labelled.png")
    current, _ = disk_labels(workdir)
    assert current[before[0]] == "anomaly" and current[before[1]] == "normal"
    assert current[before[3]] == "anomaly" and before[4] not in current

    # undo twice with "u": the skip, then the keyboard anomaly
    page.keyboard.press("u")
    wait_label(page, before[4], "")
    page.keyboard.press("u")
    wait_label(page, before[3], "")
    assert page.evaluate("window.__leaked") == 0
    current, rows = disk_labels(workdir)
    assert before[3] not in current
    assert current[before[0]] == "anomaly" and current[before[1]] == "normal"
    assert [r[2] for r in rows[-2:]] == ["human", "human"]

    # per-band view: the images change
    src0 = page.get_attribute(f'[data-testid=tile][data-id="{before[5]}"] img', "src")
    page.select_option("[data-testid=view]", "band:r")
    img = f"""document.querySelector('[data-testid=tile][data-id="{before[5]}"] img')"""
    page.wait_for_function(f"() => {img}.src !== {json.dumps(src0)}")

    # retrain (fast) and wait for the report
    page.select_option("[data-testid=mode]", "fast")
    page.click("[data-testid=retrain]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=message]').textContent.includes('retrained (fast)')", timeout=60_000
    )
    page.wait_for_selector("[data-testid=progress]", state="hidden")
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=tile]').length === {n_tiles}")
    after = tile_ids(page)
    assert "cycle 2" in page.text_content("[data-testid=counts]")
    assert page.text_content("[data-testid=error]") == ""
    shot(page, f"{shot_prefix}_retrained.png")
    return before, after


def test_standalone_server(ui_page, session, workdir):
    page = ui_page
    with LabelServer(session, page_size=12) as server:
        server.workdir = "my_search"  # shown in the page header (and the screenshots)
        server.start()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.url)
        before, after = drive(page, workdir, 12, "standalone")
        assert set(after).isdisjoint({before[0], before[1]})
        assert after != before
        assert session.cycle == 2
        # nothing was fetched from anywhere but the server (tiles are data URLs)
        assert requests and all(u.startswith(server.base_url) for u in requests)
        # the cookie set by the first load stands in for the token; without it, refused
        assert page.goto(server.base_url).status == 200
        page.context.clear_cookies()
        resp = page.goto(server.base_url)
        assert resp.status == 403


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_widget_under_voila(ui_page, workdir, tmp_path):
    page = ui_page
    for name in ("voila", "anywidget", "ipykernel"):
        try:
            __import__(name)
        except ImportError:
            if os.environ.get("CI"):
                pytest.fail(f"the Voila browser test needs {name} in CI (the jupyter extra)")
            pytest.skip(f"{name} is not installed (pip install 'anomalymatch_astro[jupyter]')")
    nb = write_label_notebook(workdir, tmp_path / "label.ipynb", page_size=8)
    port, token = _free_port(), "voila-test-token-0123456789"
    log = open(tmp_path / "voila.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voila",
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
            f"--token={token}",
            os.path.basename(nb),
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:  # any HTTP answer means the server is up (single-notebook Voila has no /api/status)
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/static/", timeout=5):
                    break
            except urllib.error.HTTPError as exc:
                exc.close()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"voila did not start: {(tmp_path / 'voila.log').read_text()[-3000:]}")
                time.sleep(0.5)
        page.set_default_timeout(90_000)
        page.goto(f"http://127.0.0.1:{port}/?token={token}")
        before, after = drive(page, workdir, 8, "voila")
        assert set(after).isdisjoint({before[0], before[1]})
        assert after != before
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
