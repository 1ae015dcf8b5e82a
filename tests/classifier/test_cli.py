import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.cli import main


def test_train_then_score(rings, make_labels, tmp_path, capsys):
    cs, truth = rings
    coords = SkyCoord(np.linspace(10, 11, len(cs)) * u.deg, np.linspace(-5, -4, len(cs)) * u.deg)
    cs = CutoutSet.from_arrays(cs.data, ids=cs.ids, bands=cs.bands, coords=coords)
    h5 = tmp_path / "c.h5"
    cs.to_hdf5(h5)
    labels = make_labels(cs, truth, 2, 3)
    lab = tmp_path / "labels.csv"
    lab.write_text("id,label\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    model = tmp_path / "model"
    rc = main(
        [
            "train",
            "--cutouts",
            str(h5),
            "--labels",
            str(lab),
            "-o",
            str(model),
            "--iterations",
            "1",
            "--image-size",
            "16",
            "--no-pretrained",
            "--seed",
            "3",
            "--no-progress",
        ]
    )
    assert rc == 0
    assert (model / "model.safetensors").exists() and (model / "config.json").exists()
    out = tmp_path / "scores.ecsv"
    rc = main(["score", "--model", str(model), "--cutouts", str(h5), "-o", str(out), "--no-progress"])
    assert rc == 0
    table = QTable.read(out)
    assert table.colnames == ["id", "ra", "dec", "score"]
    assert list(table["id"]) == list(cs.ids)
    assert table["ra"].unit == u.deg
    assert np.all((table["score"] >= 0) & (table["score"] <= 1))
    assert "model_hash" in table.meta
    assert "wrote" in capsys.readouterr().out
    # a trained model is never replaced without --overwrite: refused before training, files untouched
    saved = {name: (model / name).read_bytes() for name in ("model.safetensors", "config.json")}
    base = ["train", "--cutouts", str(h5), "--labels", str(lab), "--iterations", "1", "--image-size", "16"]
    base += ["--no-pretrained", "--no-progress", "--seed", "4"]
    rc = main([*base, "-o", str(model)])
    assert rc == 1
    err = capsys.readouterr().err
    assert str(model) in err and "--overwrite" in err
    assert {name: (model / name).read_bytes() for name in saved} == saved
    rc = main([*base, "-o", str(model), "--overwrite"])
    assert rc == 0
    assert (model / "model.safetensors").read_bytes() != saved["model.safetensors"]
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]  # nothing left beside
    # an error is printed, not raised: unknown ids in the label file; no output is left behind
    lab.write_text("id,label\nnope,anomaly\n" + f"{cs.ids[0]},normal\n")
    model2 = tmp_path / "model2"
    rc = main(
        ["train", "--cutouts", str(h5), "--labels", str(lab), "-o", str(model2), "--no-pretrained", "--no-progress"]
    )
    assert rc == 1
    assert "nope" in capsys.readouterr().err
    assert not model2.exists()


def test_train_refuses_nonsense_counts(tmp_path, capsys):
    for flag, value in (("--iterations", "0"), ("--iterations", "-3"), ("--image-size", "0"), ("--iterations", "x")):
        argv = ["train", "--cutouts", "c.h5", "--labels", "l.csv", "-o", str(tmp_path / "m"), flag, value]
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert flag in err and "at least 1" in err
    assert not (tmp_path / "m").exists()
