"""The README demo on a reduced size, and the benchmark command (and its merge script) on tiny inputs."""

import os

import numpy as np
from astropy.table import Table

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.catalogs import read_table
from anomalymatch_astro.cli import main


def test_demo_reduced(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "-o", str(out), "--n-objects", "400", "--cycles", "1", "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "elapsed:" in text and "AUROC" in text
    for name in (
        "cutouts.h5",
        "gallery_cutouts.png",
        "gallery_candidates.png",
        "score_histogram.png",
        "roc_pr.png",
        "catalog.ecsv",
        "catalog.fits",
        "metrics.ecsv",
        "start_labels.csv",
    ):
        assert (out / name).stat().st_size > 0, name
    metrics = Table.read(out / "metrics.ecsv")
    assert list(metrics["cycle"]) == [0, 1]
    assert metrics["auroc"][0] > 0.6  # far from chance on the mock survey, even at this size
    catalog = read_table(out / "catalog.fits")
    assert {"id", "coord", "ra", "dec", "score", "rank", "label"} <= set(catalog.colnames)
    assert len(catalog) == len(CutoutSet.from_hdf5(out / "cutouts.h5"))
    assert np.all(np.diff(np.asarray(catalog["score"])[np.argsort(catalog["rank"])]) <= 0)


def test_benchmark_cli_classes_and_merge(tmp_path, capsys):
    import subprocess
    import sys

    runs = []
    for digit in ("3", "8"):
        out = tmp_path / f"run{digit}"
        rc = main(
            [
                "benchmark",
                "--sets",
                "digits",
                "--classes",
                digit,
                "--quick",
                "--seeds",
                "0",
                "--cycles",
                "0",
                "--methods",
                "probe",
                "--no-progress",
                "-o",
                str(out),
            ]
        )
        assert rc == 0
        printed = capsys.readouterr().out
        assert "AUROC" in printed and "digits" in printed and "protocol_summary.ecsv" in printed
        runs.append(out)
        assert set(Table.read(out / "protocol.ecsv")["anomaly_class"]) == {digit}
    script = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "merge_protocol.py")
    merged = tmp_path / "merged"
    done = subprocess.run(
        [sys.executable, script, str(merged), *map(str, runs), str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "AUROC" in done.stdout and "no results in" in done.stdout
    table = Table.read(merged / "protocol.ecsv")
    assert sorted(set(table["anomaly_class"])) == ["3", "8"]
    summary = Table.read(merged / "protocol_summary.ecsv")
    assert summary["n_runs"][0] == 2
