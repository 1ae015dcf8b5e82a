"""The package imports light, exposes its stable names, and its CLI entry point exists."""

import subprocess
import sys

import anomalymatch_astro


def test_import_does_not_import_torch():
    code = (
        "import sys, anomalymatch_astro, anomalymatch_astro.cutouts, anomalymatch_astro.normalization; "
        "anomalymatch_astro.CutoutSet; anomalymatch_astro.make_cutouts; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_stable_public_names():
    for name in (
        "CutoutSet",
        "make_cutouts",
        "AnomalyClassifier",
        "ActiveLearningSession",
        "evaluate",
        "export_astronomaly",
    ):
        assert name in dir(anomalymatch_astro)
        assert getattr(anomalymatch_astro, name) is not None
    assert anomalymatch_astro.__version__


def test_cli_module_runs():
    out = subprocess.run([sys.executable, "-m", "anomalymatch_astro"], capture_output=True, text=True)
    assert out.returncode == 2 and "demo" in out.stdout
