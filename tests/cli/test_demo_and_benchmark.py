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
    for name in ("cutouts.h5", "gallery_cutouts.png", "gallery_candidates.png", "score_histogram.png",
                 "roc_pr.png", "catalog.ecsv", "catalog.fits", "metrics.ecsv", "start_labels.csv"):
        assert (out / name).stat().st_size > 0, name
    metrics = Table.read(out / "metrics.ecsv")
    assert list(metrics["cycle"]) == [0, 1]
    assert metrics["auroc"][0] > 0.6  # far from chance on the mock survey, even at this size
    catalog = read_table(out / "catalog.fits")
    assert {"id", "coord", "ra", "dec", "score", "rank", "label"} <= set(catalog.colnames)
    assert len(catalog) == len(CutoutSet.from_hdf5(out / "cutouts.h5"))
    assert np.all(np.diff(np.asarray(catalog["score"])[np.argsort(catalog["rank"])]) <= 0)


def test_protocol_quick(tmp_path):
    table = run_protocol(sets=["digits"], seeds=[0], cycles=1, methods=["probe", "knn"], quick=True,
                         output=tmp_path)
    assert set(table["method"]) == {"probe", "knn"}
    assert (tmp_path / "protocol_summary.ecsv").exists()
    initial = table[(table["cycle"] == 0)]
    assert np.all(initial["auroc"] > 0.9)  # digit 0 among the others: easy for both heads


def test_throughput_small(tmp_path):
    result = run_throughput_benchmark(n=64, image_size=32, batch_size=32, rss=False, dask=False,
                                      workdir=str(tmp_path))
    for key in ("full_path_images_per_s", "bare_forward_images_per_s", "full_path_vs_forward", "device",
                "image_size", "batch_size"):
        assert key in result
    assert result["full_path_images_per_s"] > 0 and result["bare_forward_images_per_s"] > 0
    json.dumps(result)
    assert os.path.exists(tmp_path / "cutouts_64.h5")


def test_compare_strategies_quick(tmp_path):
    from anomalymatch_astro.evaluation._protocol import compare_strategies

    table = compare_strategies(sets=["digits"], strategies=["top", "diversity"], seeds=[0], cycles=2,
                               n_per_cycle=10, quick=True, output=tmp_path)
    assert set(table["strategy"]) == {"top", "diversity"}
    top = table[(table["strategy"] == "top") & (table["cycle"] == 2)]
    assert top["n_shown"][0] == 20 and top["anomalies_found"][0] >= 5
    assert (tmp_path / "strategies.ecsv").exists()
