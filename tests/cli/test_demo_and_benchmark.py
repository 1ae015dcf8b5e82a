"""The README demo on a reduced size, and the benchmark command's two suites on tiny inputs."""

import json
import os

import numpy as np
from astropy.table import Table

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.catalogs import read_table
from anomalymatch_astro.cli import main
from anomalymatch_astro.evaluation._protocol import run_protocol
from anomalymatch_astro.scoring._throughput import run_throughput_benchmark


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


def test_protocol_quick(tmp_path):
    table = run_protocol(sets=["digits"], seeds=[0], cycles=1, methods=["probe", "knn"], quick=True, output=tmp_path)
    assert set(table["method"]) == {"probe", "knn"}
    assert (tmp_path / "protocol_summary.ecsv").exists()
    initial = table[(table["cycle"] == 0)]
    assert np.all(initial["auroc"] > 0.9)  # digit 0 among the others: easy for both heads


def test_throughput_small(tmp_path):
    result = run_throughput_benchmark(n=64, image_size=32, batch_size=32, rss=False, dask=False, workdir=str(tmp_path))
    for key in (
        "full_path_images_per_s",
        "bare_forward_images_per_s",
        "full_path_vs_forward",
        "device",
        "image_size",
        "batch_size",
    ):
        assert key in result
    assert result["full_path_images_per_s"] > 0 and result["bare_forward_images_per_s"] > 0
    json.dumps(result)
    assert os.path.exists(tmp_path / "cutouts_64.h5")


def test_compare_strategies_quick(tmp_path):
    from anomalymatch_astro.evaluation._protocol import compare_strategies

    table = compare_strategies(
        sets=["digits"],
        strategies=["top", "diversity"],
        seeds=[0],
        cycles=2,
        n_per_cycle=10,
        quick=True,
        output=tmp_path,
    )
    assert set(table["strategy"]) == {"top", "diversity"}
    top = table[(table["strategy"] == "top") & (table["cycle"] == 2)]
    assert top["n_shown"][0] == 20 and top["anomalies_found"][0] >= 5
    assert (tmp_path / "strategies.ecsv").exists()


def _fake_galaxy_mnist(folder, n_per_class=30, seed=0):
    """A tiny GalaxyMNIST-layout copy: class k is a Gaussian blob of width 3 + 4 k pixels, plus noise."""
    import h5py

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), n_per_class).astype(np.uint8)
    yy, xx = np.mgrid[:64, :64] - 31.5
    widths = 3.0 + 4.0 * labels
    blobs = np.exp(-(yy**2 + xx**2)[None] / (2 * widths[:, None, None] ** 2))
    images = 200 * blobs[..., None] + rng.normal(20, 5, (len(labels), 64, 64, 3))
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "train_dataset.hdf5", "w") as f:
        f.create_dataset("images", data=np.clip(images, 0, 255).astype(np.uint8))
        f.create_dataset("labels", data=labels)


def test_protocol_on_local_galaxy_mnist(tmp_path):
    _fake_galaxy_mnist(tmp_path / "data" / "GalaxyMNIST")
    table = run_protocol(
        sets=["galaxy_mnist"],
        seeds=[0],
        cycles=1,
        methods=["probe"],
        anomaly_classes=["unbarred_spiral"],
        local_data=tmp_path / "data",
        output=tmp_path / "out",
    )
    assert set(table["set"]) == {"galaxy_mnist"} and set(table["anomaly_class"]) == {"unbarred_spiral"}
    assert list(table["cycle"]) == [0, 1]
    assert table["anomaly_fraction"][0] == 0.25
    assert table["auroc"][0] > 0.9  # the widest blobs are easy to tell apart
    assert (tmp_path / "out" / "protocol.ecsv").exists()


def test_protocol_local_data_errors(tmp_path):
    import pytest

    from anomalymatch_astro.utils.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match="--local-data"):
        run_protocol(sets=["galaxy_mnist"], methods=["probe"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no GalaxyMNIST or miniImageNet copy"):
        run_protocol(sets=["digits"], methods=["probe"], local_data=tmp_path / "empty")


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
    table = Table.read(merged / "protocol.ecsv")
    assert sorted(set(table["anomaly_class"])) == ["3", "8"]
    summary = Table.read(merged / "protocol_summary.ecsv")
    assert summary["n_runs"][0] == 2


def test_protocol_held_out_split(tmp_path):
    import pytest

    from anomalymatch_astro.utils.exceptions import InvalidInputError

    table = run_protocol(sets=["digits"], seeds=[0], cycles=3, methods=["probe"], quick=True, held_out=0.5)
    assert list(table["cycle"]) == [0, 1, 2, 3]
    assert np.all(np.isfinite(table["auroc"]))  # digits' ~30 anomalies no longer run out by cycle 3
    assert np.all(table["held_out"] == 0.5)
    # each cycle labels 10 false positives at least (anomalies while the pool has them)
    assert np.all(np.diff(table["n_labelled"]) >= 10) and table["n_labelled"][0] == 105
    with pytest.raises(InvalidInputError, match="held_out"):
        run_protocol(sets=["digits"], methods=["probe"], held_out=1.5)
