"""``anomalymatch-astro mine``: a local survey with a checkpoint, resumed, then ``--status`` with its sky plot."""

import glob
import importlib.util
import os
import re
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


def test_mine_command_then_status(files, tmp_path, capsys, monkeypatch):
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
    import anomalymatch_astro.visualization as visualization

    drawn = []
    original = visualization.plot_coverage

    def spy(mocs, **kwargs):
        drawn.append((mocs, kwargs))
        return original(mocs, **kwargs)

    monkeypatch.setattr(visualization, "plot_coverage", spy)
    assert main(["mine", "--workdir", str(wd), "--status", "--plot", str(tmp_path / "sky.png")]) == 0
    out = capsys.readouterr().out
    assert "15 cells: 12 done, 0 failed, 3 without data, 0 to do" in out
    assert (tmp_path / "sky.png").stat().st_size > 1000
    # the states, the cells still to do (none) and the requested region as an outline
    ((mocs, kwargs),) = drawn
    assert list(mocs) == ["done", "failed", "no data", "to do"] and mocs["to do"].empty()
    region = kwargs["outline"]  # the box asked for; the cells done cover it and straddle its edges
    assert not region.empty() and region.difference(mocs["done"].union(mocs["no data"])).empty()


def test_mine_command_needs_one_region_and_one_model(files, tmp_path, capsys):
    folder, model = files
    base = ["mine", "--workdir", str(tmp_path / "wd"), f"--images=g={folder}/ammosaic_g_*.fits", "--synchronous"]
    assert main(base + ["--model", str(model)]) == 1
    assert "give one region" in capsys.readouterr().err
    assert main(base + ["--cone", "150.1", "2.2", "0.1"]) == 1
    assert "--model CHECKPOINT or --session WORKDIR" in capsys.readouterr().err


def test_mine_with_a_search_of_the_search_command(files, tmp_path, capsys):
    """The documented route: 'search init' + 'search train' (fast mode, no model/ saved), then 'mine --session'.

    The search's classifier is not pretrained: 'mine' must rebuild it from search.json, or
    the session's embeddings and the new cutouts' would come from different networks.
    """
    folder, _ = files
    from astropy.io import fits
    from astropy.table import Table
    from astropy.wcs import WCS

    from anomalymatch_astro import make_cutouts

    tiles = {b: str(folder / f"ammosaic_{b}_00.fits") for b in "gri"}
    sources = Table.read(folder / "sources.ecsv")
    x, y = WCS(fits.getheader(tiles["g"])).world_to_pixel_values(sources["ra"], sources["dec"])
    inside = (x > 20) & (x < 580) & (y > 20) & (y < 580)
    cs = make_cutouts(tiles, sources[inside][:16], 32, ids="source_id", progress=False)
    cs.to_hdf5(tmp_path / "cutouts.h5")
    (tmp_path / "seed.csv").write_text(f"id,label\n{cs.ids[0]},anomaly\n{cs.ids[1]},normal\n{cs.ids[2]},normal\n")
    search = str(tmp_path / "search")
    init = ["search", "init", "--workdir", search, "--cutouts", str(tmp_path / "cutouts.h5")]
    init += ["--labels", str(tmp_path / "seed.csv"), "--no-pretrained", "--image-size", "32", "--no-rotation-average"]
    assert main(init) == 0
    assert main(["search", "train", "--workdir", search]) == 0
    assert not os.path.exists(os.path.join(search, "model"))
    capsys.readouterr()
    wd = tmp_path / "wd"
    argv = ["mine", "--workdir", str(wd), "--catalog", str(folder / "sources.ecsv"), "--id-column", "source_id"]
    argv += [f"--images={b}={folder}/ammosaic_{b}_*.fits" for b in "gri"]
    argv += ["--cone", "150.05", "2.15", "0.03", "--session", search, "--size", "32", "--synchronous", "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "0 failed" in out and "cutouts scored" in out
    from astropy.table import QTable

    top = QTable.read(wd / "top_candidates.ecsv")
    assert len(top) > 0 and ((top["score"] >= 0) & (top["score"] <= 1)).all()


def test_mine_command_reports_failures_resumes_and_explains_status(files, tmp_path, capsys):
    folder, model = files
    wd = tmp_path / "wd"
    argv = ["mine", "--workdir", str(wd), "--catalog", str(folder / "sources.ecsv"), "--id-column", "nosuch"]
    argv += [f"--images={b}={folder}/ammosaic_{b}_*.fits" for b in "gri"]
    argv += ["--cone", "150.05", "2.15", "0.03", "--model", str(model), "--size", "32"]
    argv += ["--synchronous", "--no-progress"]
    assert main(argv) == 3
    out = capsys.readouterr().out
    # the reason is printed once with its count of cells, and how to retry
    assert "no id column 'nosuch'" in out and "more cell(s)" in out
    assert "run the same command again to retry them" in out
    # a rerun says what was done before
    assert main(argv) == 3
    assert f"resuming {wd}:" in capsys.readouterr().out
    assert main(["mine", "--workdir", str(wd), "--status", "--plot", str(tmp_path / "sky.png")]) == 0
    # every failed cell is still to do (retried): the count says so, as the plot shows them red
    status = re.search(
        r"(\d+) failed, \d+ without data, (\d+) to do \((\d+) failed, to retry\)", capsys.readouterr().out
    )
    assert status and int(status.group(1)) > 0 and status.group(1) == status.group(3)
    assert main(["mine", "--workdir", str(tmp_path / "nowhere"), "--status"]) == 1
    assert "start one with 'anomalymatch-astro mine --workdir" in capsys.readouterr().err
