"""The catalogues of write_table open in STILTS (TOPCAT's engine): votlint is clean, tpipe reads the same values.

Runs when ``stilts`` is on PATH (Debian: ``apt-get install stilts starlink-ecsv-java``, the second being
STILTS' ECSV reader; ``.ci/run`` installs both), skips otherwise.
"""

import csv
import io
import shutil
import subprocess

import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.catalogs import scores_to_table, write_table

STILTS = shutil.which("stilts")
pytestmark = pytest.mark.skipif(STILTS is None, reason="stilts is not installed (apt-get install stilts)")

IDS = ["007", "NGC 4993", "x,1", "1e3"]
RA = [10.0, 150.5, 359.99, 0.000123456789]
DEC = [-1.0, 30.25, -89.0, 45.123456789012]
SCORES = [0.9, np.nan, 0.35, 0.123456789012345]


def _stilts(*args):
    result = subprocess.run([STILTS, *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"stilts {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _input_formats():
    text = _stilts("tpipe", "help=ifmt")
    return {line.strip().lower() for line in text.splitlines() if line.startswith("      ")}


@pytest.fixture(scope="module")
def catalogue():
    cs = CutoutSet.from_arrays(np.zeros((4, 1, 4, 4)), ids=IDS, bands=["g"], coords=SkyCoord(RA, DEC, unit="deg"))
    table = scores_to_table(cs, SCORES, labels={"007": "anomaly", "1e3": "normal"}, provenance={"model": {"h": "x"}})
    table.meta["a_tuple"] = (1, 2)  # meta that plain YAML cannot hold as it is
    table.meta["a_numpy_value"] = np.float64(0.5)
    return table


def _tpipe_rows(path, fmt):
    text = _stilts("tpipe", f"in={path}", f"ifmt={fmt}", "omode=out", "ofmt=csv", "out=-")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(("fmt", "ext"), [("fits", "fits"), ("votable", "xml"), ("ecsv", "ecsv")])
def test_tpipe_reads_the_same_values(tmp_path, catalogue, fmt, ext):
    if fmt not in _input_formats():
        pytest.skip(f"this STILTS has no {fmt} reader (on Debian: apt-get install starlink-ecsv-java)")
    path = tmp_path / f"cat.{ext}"
    write_table(catalogue, path)
    rows = _tpipe_rows(path, fmt)
    assert [r["id"] for r in rows] == IDS
    np.testing.assert_array_equal([float(r["ra"]) for r in rows], RA)
    np.testing.assert_array_equal([float(r["dec"]) for r in rows], DEC)
    score = [float(r["score"]) if r["score"] else np.nan for r in rows]
    np.testing.assert_array_equal(score, SCORES)  # NaN (not scored) comes back empty, i.e. null
    assert [r["label"] for r in rows] == ["anomaly", "", "", "normal"]
    assert [int(r["rank"]) for r in rows] == [1, 4, 2, 3]
    lon = next(k for k in rows[0] if k in ("coord_lon", "coord.ra"))  # FITS keeps the SkyCoord natively
    np.testing.assert_array_equal([float(r[lon]) for r in rows], RA)


def test_votlint_finds_no_errors(tmp_path, catalogue):
    path = tmp_path / "cat.xml"
    write_table(catalogue, path)
    report = _stilts("votlint", f"{path}")
    errors = [line for line in report.splitlines() if line.startswith(("ERROR", "FATAL"))]
    assert not errors, report


def test_tpipe_sees_the_ucds_of_positions(tmp_path, catalogue):
    path = tmp_path / "cat.xml"
    write_table(catalogue, path)
    text = _stilts("tpipe", f"in={path}", "ifmt=votable", "cmd=meta name ucd", "omode=out", "ofmt=csv", "out=-")
    ucds = {row["Name"]: row["UCD"] for row in csv.DictReader(io.StringIO(text))}
    assert ucds["coord_lon"] == "pos.eq.ra" and ucds["coord_lat"] == "pos.eq.dec"
