"""The package imports light, exposes its stable names, and its CLI entry point exists."""

import pathlib
import subprocess
import sys

import pytest

import anomalymatch_astro

_PACKAGE_DIR = pathlib.Path(anomalymatch_astro.__file__).parent
#: Subpackages that are the torch layer itself; every other one must import without torch.
_TORCH_SUBPACKAGES = {"classifier"}
_SUBPACKAGES = sorted(p.parent.name for p in _PACKAGE_DIR.glob("*/__init__.py"))


def test_import_does_not_import_torch():
    code = (
        "import sys, anomalymatch_astro, anomalymatch_astro.cutouts, anomalymatch_astro.normalization; "
        "anomalymatch_astro.CutoutSet; anomalymatch_astro.make_cutouts; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("subpackage", [s for s in _SUBPACKAGES if s not in _TORCH_SUBPACKAGES])
def test_light_subpackage_does_not_import_torch(subpackage):
    """Importing a light subpackage (and the package itself) must not import torch, dask or pyvo."""
    code = (
        f"import sys, anomalymatch_astro, anomalymatch_astro.{subpackage}; "
        "print(sorted(m for m in ('torch', 'dask', 'distributed', 'pyvo', 'astroquery', 'timm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"anomalymatch_astro.{subpackage} imports {out.stdout.strip()} at import time"


def test_subpackages_found():
    assert {"utils", "cutouts", "classifier", "active_learning", "cli"} <= set(_SUBPACKAGES)


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
