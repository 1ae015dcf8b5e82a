"""``anomalymatch-astro export`` and ``anomalymatch-astro crossmatch``."""

import sys
import types

import h5py
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from anomalymatch_astro.catalogs import (
    TABLE_FORMATS,
    import_astronomaly_labels,
    read_table,
    scores_to_table,
    write_table,
)
from anomalymatch_astro.cli import main

EXT = {"fits": "fits", "votable": "xml", "ecsv": "ecsv", "parquet": "parquet", "hdf5": "h5"}


@pytest.fixture
def files(tmp_path, cutouts, scores):
    table = scores_to_table(cutouts, scores, labels={"007": "anomaly", "x1": "normal"})
    write_table(table, tmp_path / "scores.ecsv")
    cutouts.to_hdf5(tmp_path / "c.h5")
    return tmp_path


@pytest.mark.parametrize("fmt", sorted(TABLE_FORMATS))
def test_export_tables(files, fmt, capsys):
    out = files / f"out.{EXT[fmt]}"
    assert main(["export", "--scores", str(files / "scores.ecsv"), "--format", fmt, "-o", str(out)]) == 0
    back = read_table(out)
    assert back["id"].tolist() == ["007", "1e3", "1.5", "x1", "NGC 4993"]
    assert isinstance(back["coord"], SkyCoord)
    assert "wrote 5 rows" in capsys.readouterr().out


def test_export_top(files):
    out = files / "top.ecsv"
    assert (
        main(
            [
                "export",
                "--scores",
                str(files / "scores.ecsv"),
                "--format",
                "ecsv",
                "-o",
                str(out),
                "--top",
                "2",
            ]
        )
        == 0
    )
    assert read_table(out)["id"].tolist() == ["007", "1e3"]


@pytest.mark.parametrize("fmt", ["ds9", "crtf"])
def test_export_regions(files, fmt):
    pytest.importorskip("regions")
    out = files / f"c.{fmt}"
    assert (
        main(
            [
                "export",
                "--scores",
                str(files / "scores.ecsv"),
                "--format",
                fmt,
                "-o",
                str(out),
                "--radius",
                "2arcsec",
            ]
        )
        == 0
    )
    assert out.read_text().count("circle") == 5


def test_export_astronomaly_with_features(files, cutouts, capsys):
    feats = np.arange(15.0).reshape(5, 3)
    np.save(files / "f.npy", feats)
    out = files / "bundle"
    assert (
        main(
            [
                "export",
                "--scores",
                str(files / "scores.ecsv"),
                "--format",
                "astronomaly",
                "-o",
                str(out),
                "--cutouts",
                str(files / "c.h5"),
                "--features",
                str(files / "f.npy"),
                "--top",
                "3",
            ]
        )
        == 0
    )
    assert "run_server.py" in capsys.readouterr().out
    assert len(list((out / "images").iterdir())) == 3
    assert import_astronomaly_labels(out) == {"007": "anomaly"}  # x1 is not in the top 3
    # features of .h5 with ids, in another order
    with h5py.File(files / "f.h5", "w") as f:
        f["features"] = feats[::-1]
        f["ids"] = np.array(list(cutouts.ids)[::-1], dtype="S")
    assert (
        main(
            [
                "export",
                "--scores",
                str(files / "scores.ecsv"),
                "--format",
                "astronomaly",
                "-o",
                str(out),
                "--cutouts",
                str(files / "c.h5"),
                "--features",
                str(files / "f.h5"),
                "--overwrite",
            ]
        )
        == 0
    )
    import pyarrow.parquet as pq

    col0 = pq.read_table(out / "features.parquet").column("0").to_pylist()
    assert col0 == feats[:, 0].tolist()


def test_export_astronomaly_embedding(files, monkeypatch):
    calls = []

    class FakeClassifier:
        def __init__(self, *args, **kwargs):
            pass

        def embed(self, cutouts):
            calls.append(len(cutouts))
            return np.ones((len(cutouts), 4)) * np.arange(len(cutouts))[:, None]

    fake = types.ModuleType("anomalymatch_astro.classifier")
    fake.AnomalyClassifier = FakeClassifier
    monkeypatch.setitem(sys.modules, "anomalymatch_astro.classifier", fake)
    out = files / "bundle"
    assert (
        main(
            [
                "export",
                "--scores",
                str(files / "scores.ecsv"),
                "--format",
                "astronomaly",
                "-o",
                str(out),
                "--cutouts",
                str(files / "c.h5"),
            ]
        )
        == 0
    )
    assert calls == [5]
    assert (out / "features.parquet").exists()


def test_export_errors(files, capsys):
    assert (
        main(
            [
                "export",
                "--scores",
                str(files / "scores.ecsv"),
                "--format",
                "astronomaly",
                "-o",
                str(files / "b"),
            ]
        )
        == 1
    )
    assert "--cutouts" in capsys.readouterr().err
    assert main(["export", "--scores", str(files / "nope.ecsv"), "--format", "ecsv", "-o", str(files / "x.ecsv")]) == 1
    write_table(QTable({"id": ["a"]}), files / "noscore.ecsv")
    assert (
        main(
            [
                "export",
                "--scores",
                str(files / "noscore.ecsv"),
                "--format",
                "ecsv",
                "-o",
                str(files / "y.ecsv"),
            ]
        )
        == 1
    )
    assert "score" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["nearest", "all"])
def test_crossmatch_cli(files, mode, capsys):
    cat = QTable({"name": ["S1", "S2"], "ra": [10.0001, 150.5], "dec": [-1.0, 30.2501]})
    cat.write(files / "cat.ecsv")
    out = files / "m.ecsv"
    assert (
        main(
            [
                "crossmatch",
                "--candidates",
                str(files / "scores.ecsv"),
                "--catalog",
                str(files / "cat.ecsv"),
                "--radius",
                "1arcsec",
                "-o",
                str(out),
                "--mode",
                mode,
            ]
        )
        == 0
    )
    back = read_table(out)
    if mode == "nearest":
        assert back["cat_name"].tolist() == ["S1", None, None, "S2", None]
    else:
        assert back["id"].tolist() == ["007", "1e3"]
    assert "2 of 5 candidates matched" in capsys.readouterr().out


def test_crossmatch_cli_errors(files, capsys):
    assert (
        main(
            [
                "crossmatch",
                "--candidates",
                str(files / "scores.ecsv"),
                "--catalog",
                str(files / "no.ecsv"),
                "--radius",
                "1arcsec",
                "-o",
                str(files / "m.ecsv"),
            ]
        )
        == 1
    )
    QTable({"a": [1.0], "b": [2.0]}).write(files / "cat.fits")
    assert (
        main(
            [
                "crossmatch",
                "--candidates",
                str(files / "scores.ecsv"),
                "--catalog",
                str(files / "cat.fits"),
                "--radius",
                "1",
                "-o",
                str(files / "m.ecsv"),
            ]
        )
        == 1
    )
    assert "unit" in capsys.readouterr().err
    assert (
        main(
            [
                "crossmatch",
                "--candidates",
                str(files / "scores.ecsv"),
                "--catalog",
                str(files / "cat.fits"),
                "--radius",
                "1arcsec",
                "-o",
                str(files / "m.ecsv"),
                "--ra-column",
                "a",
                "--dec-column",
                "b",
            ]
        )
        == 0
    )
