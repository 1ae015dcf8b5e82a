import numpy as np
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
    # an error is printed, not raised: unknown ids in the label file
    lab.write_text("id,label\nnope,anomaly\n" + f"{cs.ids[0]},normal\n")
    rc = main(
        ["train", "--cutouts", str(h5), "--labels", str(lab), "-o", str(model), "--no-pretrained", "--no-progress"]
    )
    assert rc == 1
    assert "nope" in capsys.readouterr().err
