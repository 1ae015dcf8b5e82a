"""Fixtures of the labelling-UI tests: a tiny session workdir and, for browser tests, headless Chromium."""

import os
import shutil

import numpy as np
import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

N_OBJECTS = 96
ANOMALY_ROWS = (3, 17, 29, 41, 58, 77)


class FlatEmbedder:
    """A stand-in backbone for the fast mode: every 5th pixel (no torch needed)."""

    model_hash = "flat-test-embedder"

    def embed(self, cutouts, *, batch_size=256):
        return cutouts.data.reshape(len(cutouts), -1)[:, ::5].astype(np.float32)


def make_cutouts(n=N_OBJECTS, size=32, seed=0):
    """Two-band (g, r) noise cutouts with a bright red blob in ANOMALY_ROWS, with sky positions."""
    from astropy.coordinates import SkyCoord

    from anomalymatch_astro import CutoutSet

    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 1.0, size=(n, 2, size, size)).astype(np.float32)
    yy, xx = np.mgrid[:size, :size]
    blob = np.exp(-((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * 3.0**2)).astype(np.float32)
    for i in range(n):
        data[i] += 4 * blob * np.array([0.5, 1.0])[:, None, None]  # an ordinary source
    for i in ANOMALY_ROWS:
        if i < n:
            data[i, 1] += 30 * blob
    coords = SkyCoord(150 + rng.uniform(-0.5, 0.5, n), 2.2 + rng.uniform(-0.5, 0.5, n), unit="deg")
    ids = [f"src{i:03d}" for i in range(n)]
    return CutoutSet.from_arrays(data, ids=ids, bands=["g", "r"], coords=coords)


START_LABELS = {"src003": "anomaly", "src017": "anomaly", "src000": "normal", "src001": "normal", "src002": "normal"}


def build_workdir(path):
    """A trained (fast mode) session workdir whose cutouts live in path/cutouts.h5."""
    from anomalymatch_astro import CutoutSet
    from anomalymatch_astro.active_learning import ActiveLearningSession

    os.makedirs(path, exist_ok=True)
    h5 = os.path.join(path, "cutouts.h5")
    make_cutouts().to_hdf5(h5)
    session = ActiveLearningSession(
        CutoutSet.from_hdf5(h5),
        classifier=FlatEmbedder(),
        workdir=os.path.join(path, "session"),
        user="tester",
        default_mode="fast",
        labels=START_LABELS,
    )
    session.train(mode="fast", progress=False)
    session.close()
    return os.path.join(path, "session")


@pytest.fixture(scope="session")
def _workdir_template(tmp_path_factory):
    return build_workdir(str(tmp_path_factory.mktemp("amui_template")))


@pytest.fixture
def workdir(_workdir_template, tmp_path):
    """A fresh copy of a trained session workdir (reopen with ActiveLearningSession.open)."""
    target = tmp_path / "work"
    shutil.copytree(os.path.dirname(_workdir_template), target)
    session_dir = target / "session"
    # the session records the absolute path of its cutouts: point it at the copy
    import json

    state = json.loads((session_dir / "session.json").read_text())
    state["cutouts_path"] = str(target / "cutouts.h5")
    (session_dir / "session.json").write_text(json.dumps(state))
    return str(session_dir)


@pytest.fixture
def session(workdir):
    from anomalymatch_astro.active_learning import ActiveLearningSession

    s = ActiveLearningSession.open(workdir, user="tester")
    yield s
    s.close()


# ---------------------------------------------------------------------- browser
def _chromium_path():
    path = os.environ.get("AMUI_CHROMIUM") or "/usr/bin/chromium"
    if os.path.exists(path):
        return path
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _no_browser(reason):
    if os.environ.get("CI"):
        pytest.fail(
            f"browser tests need Chromium and Playwright in CI: {reason} (run: bash .ci/browser_setup.sh .venv)"
        )
    pytest.skip(f"no browser: {reason} (run: bash .ci/browser_setup.sh <venv>)")


@pytest.fixture(scope="session")
def chromium():
    """A headless Debian Chromium driven by Playwright (fails in CI when missing, skips locally)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _no_browser(f"playwright is not installed ({exc})")
    exe = _chromium_path()
    if exe is None:
        _no_browser("no chromium executable (apt-get install -y chromium)")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
    except Exception as exc:
        pw.stop()
        _no_browser(f"chromium did not start: {exc}")
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture
def ui_page(chromium):
    """A fresh browser context and page (1280x900)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    context.close()


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """For tests that use pytest-playwright's own fixtures: Debian's Chromium, no download."""
    return {"executable_path": _chromium_path(), "args": CHROMIUM_ARGS}
