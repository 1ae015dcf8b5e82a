"""The throughput and training-step benchmarks, on tiny settings (no timings asserted beyond > 0)."""

import json
import os

from anomalymatch_astro.benchmarking import run_throughput_benchmark, run_training_benchmark


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


def test_training_benchmark_tiny():
    result = run_training_benchmark(
        image_size=32, cutout_size=32, batch_size=2, mu=1, steps=1, n_score=64, score_batch=32, bands=1
    )
    assert result["images_per_step"] == 2 * (1 + 2 * 1)
    for key in ("step_images_per_s", "bare_train_images_per_s", "score_images_per_s", "bare_forward_images_per_s"):
        assert result[key] > 0, key
    assert result["step_vs_bare"] == result["step_images_per_s"] / result["bare_train_images_per_s"]
    json.dumps(result)
