"""Fixtures of the archive tests: recorded DaCHS answers replayed with requests-mock, and the live server."""

import importlib.util
import io
import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent
DATA = HERE.parent / "data" / "archives"
BASE = "http://127.0.0.1:8099"
#: the DaCHS test server started by .ci/dachs_setup.sh (fixed port, documented there)
SIA1_URL = f"{BASE}/amtest/q/i/siap.xml"
SIA2_URL = f"{BASE}/__system__/siap2/sitewide/siap2.xml"
TAP_URL = f"{BASE}/tap"
PRODUCT = f"{BASE}/getproduct/amtest/data/"
CANDELS = (189.49206, 62.20615)
M13 = (250.4569, 36.4326)


def _load_make_images():
    spec = importlib.util.spec_from_file_location("amtest_make_images", HERE / "dachs" / "make_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fits_bytes():
    """{file name: bytes} of the four images the DaCHS server publishes (built from installed packages)."""
    pytest.importorskip("astroquery")
    out = {}
    for name, hdu in _load_make_images().build_images().items():
        buf = io.BytesIO()
        hdu.writeto(buf)
        out[name] = buf.getvalue()
    return out


def recorded(name):
    return (DATA / name).read_bytes()


@pytest.fixture
def client(tmp_path):
    from anomalymatch_astro.archives import ArchiveClient

    return ArchiveClient(cache_dir=tmp_path / "cache", rate_limit=0, backoff=0, retries=2, timeout=5)


@pytest.fixture
def mock_dachs(fits_bytes):
    """requests-mock replaying the recorded answers of the DaCHS test server (no network)."""
    requests_mock = pytest.importorskip("requests_mock")
    xml = {"Content-Type": "application/x-votable+xml"}
    with requests_mock.Mocker() as m:
        m.get(SIA1_URL, content=recorded("sia1_candels.xml"), headers=xml)
        m.get(SIA2_URL, content=recorded("sia2_candels.xml"), headers=xml)
        m.post(f"{TAP_URL}/sync", content=recorded("tap_candels.xml"), headers=xml)
        for path in ("/amtest/q/dl/dlmeta", "/__system__/obscore/dl/dlmeta"):
            m.get(BASE + path, content=recorded("datalink_candels_f606w.xml"), headers=xml)
        m.get(
            f"{BASE}/amtest/q/dl/dlget",
            content=fits_bytes["candels_f606w.fits"],
            headers={"Content-Type": "image/fits"},
        )
        for name, data in fits_bytes.items():
            m.get(
                PRODUCT + name,
                content=data,
                headers={"Content-Type": "image/fits", "Content-Length": str(len(data))},
            )
        yield m


@pytest.fixture(scope="session")
def dachs():
    """The live DaCHS server on 127.0.0.1:8099.

    When it does not answer, FAILS in CI (env CI set) and skips locally.
    """
    import requests

    try:
        r = requests.get(f"{SIA1_URL}?POS=0,0&SIZE=0", timeout=5)
        r.raise_for_status()
    except Exception as exc:  # noqa: BLE001
        reason = (
            f"the DaCHS test server does not answer on {BASE} ({exc}); start it with "
            "`bash .ci/dachs_setup.sh` (as root)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return BASE
