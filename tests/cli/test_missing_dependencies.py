"""On the base install (no ``vo`` extra), every VO entry point says what to install, never ModuleNotFoundError."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    for name in {missing!r}:
        sys.modules[name] = None  # as if not installed: importing it raises ImportError
    {body}
    """
)


def _run(tmp_path, missing, body):
    script = SCRIPT.format(missing=missing, body=textwrap.dedent(body))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    return result


@pytest.mark.parametrize("missing", [["requests"], ["requests", "pyvo", "astroquery"]])
def test_query_without_requests(tmp_path, missing):
    (tmp_path / "cat.csv").write_text("id,ra,dec\na,10.0,20.0\n")
    body = """
    from anomalymatch_astro.cli import main
    sys.exit(main(["query", "--catalog", "cat.csv", "--band", "g", "--service", "http://127.0.0.1:9/sia",
                   "-o", "out.h5", "--no-progress"]))
    """
    result = _run(tmp_path, missing, body)
    assert result.returncode == 1, result.stderr
    assert "ModuleNotFound" not in result.stderr and "Traceback" not in result.stderr
    assert "needs the optional package 'requests'" in result.stderr
    assert "pip install 'anomalymatch_astro[vo]'" in result.stderr
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize(
    ("missing", "call", "package"),
    [
        (["pyvo"], "client.search('http://127.0.0.1:9/sia', 1.0, 2.0, protocol='sia2')", "pyvo"),
        (["pyvo"], "client.search('http://127.0.0.1:9/tap', 1.0, 2.0, protocol='tap')", "pyvo"),
        (
            ["astroquery", "astroquery.hips2fits"],
            "client.hips_cutout('CDS/P/DSS2/red', SkyCoord(1, 2, unit='deg'), size=8, pixel_scale=1 * u.arcsec)",
            "astroquery.hips2fits",
        ),
    ],
)
def test_archive_client_without_pyvo_or_astroquery(tmp_path, missing, call, package):
    body = f"""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from anomalymatch_astro.archives import ArchiveClient
    from anomalymatch_astro.utils.exceptions import MissingDependencyError
    client = ArchiveClient(cache_dir="cache")
    try:
        {call}
    except MissingDependencyError as exc:
        print(exc)
        sys.exit(3)
    """
    result = _run(tmp_path, missing, body)
    assert result.returncode == 3, result.stderr
    assert f"needs the optional package {package!r}" in result.stdout
    assert "pip install 'anomalymatch_astro[vo]'" in result.stdout
