"""``anomalymatch-astro mine``: a local survey with a checkpoint, resumed, then ``--status`` with its sky plot."""

import glob
import importlib.util
import os
from pathlib import Path

import pytest

pytest.importorskip("mocpy")
pytest.importorskip("hats")

from anomalymatch_astro.cli import main  # noqa: E402

MOSAIC = Path(__file__).parents[1] / "archives" / "dachs" / "mosaic.py"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("ammosaic_cli", MOSAIC)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = tmp_path_factory.mktemp("mosaic")
    module.make_mosaic(folder)
    import numpy as np

    from anomalymatch_astro import AnomalyClassifier, CutoutSet

    rng = np.random.default_rng(0)
    cs = CutoutSet.from_arrays(rng.normal(size=(8, 3, 32, 32)).astype(np.float32), bands=["g", "r", "i"])
    clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=2, mu=1, seed=0, head_init="small")
    clf.fit(cs, {"obj0": "anomaly", "obj1": "normal", "obj2": "normal"}, iterations=1, progress=False)
    model = tmp_path_factory.mktemp("model") / "clf"
    clf.save(model)
    return folder, model


def test_mine_command_then_status(files, tmp_path, capsys):
    folder, model = files
    wd = tmp_path / "wd"
    argv = ["mine", "--workdir", str(wd), "--catalog", str(folder / "sources.ecsv"), "--id-column", "source_id"]
    argv += [f"--images={b}={folder}/ammosaic_{b}_*.fits" for b in "gri"]
    argv += ["--box", "150.2", "2.2", "0.35", "0.25", "--model", str(model), "--size", "32", "--synchronous"]
    assert main(argv + ["--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "15 cell(s)" in out and "12 done, 0 failed, 3 without data, 0 to do of 15" in out
    assert os.path.isdir(wd / "catalog") and os.path.exists(wd / "top_candidates.ecsv")
    assert len(glob.glob(f"{wd}/coverage/*.moc.fits")) == 3
    # a rerun has nothing left to do
    assert main(argv + ["--no-progress"]) == 0
    assert "mined 0 cell(s)" in capsys.readouterr().out
    # another cutout size in the same workdir is refused, with the option named
    assert main(argv[:-3] + ["--size", "48", "--synchronous"]) == 1
    assert "size" in capsys.readouterr().err
    assert main(["mine", "--workdir", str(wd), "--status", "--plot", str(tmp_path / "sky.png")]) == 0
    out = capsys.readouterr().out
    assert "15 cells: 12 done, 0 failed, 3 without data, 0 to do" in out
    assert (tmp_path / "sky.png").stat().st_size > 1000


def test_mine_command_needs_one_region_and_one_model(files, tmp_path, capsys):
    folder, model = files
    base = ["mine", "--workdir", str(tmp_path / "wd"), f"--images=g={folder}/ammosaic_g_*.fits", "--synchronous"]
    assert main(base + ["--model", str(model)]) == 1
    assert "give one region" in capsys.readouterr().err
    assert main(base + ["--cone", "150.1", "2.2", "0.1"]) == 1
    assert "--model CHECKPOINT or --session WORKDIR" in capsys.readouterr().err
