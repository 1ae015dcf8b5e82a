"""``anomalymatch-astro query`` on recorded answers (offline) and against the live DaCHS server."""

import pytest
from astropy.table import Table

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.cli import main

from .conftest import CANDELS, SIA1_URL, SIA2_URL


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "cat.ecsv"
    Table({"id": ["a", "b"], "ra": [CANDELS[0], CANDELS[0] + 1e-4], "dec": [CANDELS[1]] * 2}).write(path)
    return path


def test_query_cli_offline(mock_dachs, tmp_path, catalog, capsys):
    out = tmp_path / "cut.h5"
    rc = main(
        [
            "query",
            "--service",
            SIA2_URL,
            "--catalog",
            str(catalog),
            "--band",
            "v=F606W",
            "--band",
            "i=F814W",
            "--size",
            "16",
            "-o",
            str(out),
            "--workdir",
            str(tmp_path / "w"),
            "--cache-dir",
            str(tmp_path / "c"),
            "--rate-limit",
            "0",
            "--no-progress",
        ]
    )
    assert rc == 0
    assert "wrote 2 cutouts (16, 16) in bands ['v', 'i']" in capsys.readouterr().out
    cs = CutoutSet.from_hdf5(out, lazy=False)
    assert cs.shape == (2, 2, 16, 16) and cs.table["method_v"][0] == "soda"


def test_query_cli_errors(tmp_path, catalog, capsys):
    rc = main(["query", "--catalog", str(catalog), "--band", "g", "-o", str(tmp_path / "x.h5")])
    assert rc == 1 and "--service is required" in capsys.readouterr().err
    rc = main(
        [
            "query",
            "--protocol",
            "hips",
            "--hips",
            "CDS/P/DSS2/red",
            "--catalog",
            str(catalog),
            "--band",
            "g",
            "--band",
            "r",
            "-o",
            str(tmp_path / "x.h5"),
            "--pixel-scale",
            "1arcsec",
        ]
    )
    assert rc == 1 and "{band}" in capsys.readouterr().err


@pytest.mark.vo_server
def test_query_cli_live(dachs, tmp_path, catalog):
    out = tmp_path / "cut.h5"
    rc = main(
        [
            "query",
            "--service",
            SIA1_URL,
            "--protocol",
            "sia1",
            "--catalog",
            str(catalog),
            "--band",
            "F606W",
            "--band",
            "F850LP",
            "--size",
            "20",
            "-o",
            str(out),
            "--cache-dir",
            str(tmp_path / "c"),
            "--no-progress",
        ]
    )
    assert rc == 0
    assert CutoutSet.from_hdf5(out).shape == (2, 2, 20, 20)
