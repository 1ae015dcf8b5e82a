"""Nothing a user owns is destroyed (issue 15, items 1-2).

Every public writer refuses an existing output unless ``overwrite=True`` (the CLI: ``--overwrite``),
replaces atomically, and a failed run leaves neither a half-made output nor a new, empty workdir.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable, Table
from astropy.wcs import WCS

from anomalymatch_astro import ActiveLearningSession, AnomalyClassifier, CutoutSet, export_astronomaly
from anomalymatch_astro.catalogs import write_regions, write_table
from anomalymatch_astro.cli import main
from anomalymatch_astro.utils.exceptions import InvalidInputError, OutputExistsError, UnknownIDError


def _set(n, *, prefix="obj", bands=("g", "r"), size=10, seed=0):
    data = np.random.default_rng(seed).normal(size=(n, len(bands), size, size)).astype(np.float32)
    return CutoutSet.from_arrays(data, ids=[f"{prefix}{i:04d}" for i in range(n)], bands=list(bands))


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------ CutoutSet.to_hdf5
def test_to_hdf5_never_replaces_without_overwrite(tmp_path):
    path = tmp_path / "c.h5"
    _set(600).to_hdf5(path)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match=r"c\.h5.*exists; pass overwrite=True"):
        _set(5, prefix="new").to_hdf5(path)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["c.h5"]
    _set(5, prefix="new").to_hdf5(path, mode="a")  # appending stays as it was
    assert len(CutoutSet.from_hdf5(path)) == 605
    _set(5, prefix="new").to_hdf5(path, overwrite=True)
    assert CutoutSet.from_hdf5(path).ids.tolist() == [f"new{i:04d}" for i in range(5)]


_KILL_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from anomalymatch_astro import CutoutSet
    data = np.random.default_rng(1).normal(size=(8000, 1, 32, 32)).astype(np.float32)
    cs = CutoutSet.from_arrays(data, ids=[f"new{i}" for i in range(len(data))], bands=["g"])
    print("ready", flush=True)
    cs.to_hdf5(sys.argv[1], overwrite=True, compression="gzip", shard_size=100)
""")


def test_sigkill_during_an_overwrite_keeps_the_old_file(tmp_path):
    path = tmp_path / "c.h5"
    old = _set(600, bands=("g",), size=32)
    old.to_hdf5(path)
    before = path.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", _KILL_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until the new file is being written beside the old one
            partial = [p for p in tmp_path.iterdir() if p.name != "c.h5" and p.stat().st_size > 0]
            if partial or proc.poll() is not None:
                break
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert partial, "the writer finished before it could be killed mid-write"
    assert path.read_bytes() == before  # the old file was never touched ...
    back = CutoutSet.from_hdf5(path)  # ... and reads back whole
    assert back.ids.tolist() == old.ids.tolist()
    np.testing.assert_array_equal(back.data, old.data)


# ------------------------------------------------------------------ AnomalyClassifier.save
@pytest.fixture(scope="module")
def tiny_model():
    cs = _set(12, bands=("r",), size=16)
    clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=2, mu=1, seed=0, head_init="small")
    clf.fit(cs, {cs.ids[0]: "anomaly", cs.ids[1]: "normal", cs.ids[2]: "normal"}, iterations=1, progress=False)
    return clf


def test_save_never_replaces_a_model_without_overwrite(tiny_model, tmp_path):
    path = tmp_path / "model"
    tiny_model.save(path)
    before = {name: (path / name).read_bytes() for name in ("config.json", "model.safetensors")}
    with pytest.raises(OutputExistsError, match="already holds a saved model.*overwrite=True"):
        tiny_model.save(path)
    assert {name: (path / name).read_bytes() for name in before} == before
    tiny_model.save(path, overwrite=True)
    assert AnomalyClassifier.load(path).model_hash == tiny_model.model_hash
    with pytest.raises(InvalidInputError, match="not a folder"):
        tiny_model.save(tmp_path / "model" / "config.json", overwrite=True)


def test_a_failed_save_leaves_no_half_made_model(tiny_model, tmp_path, monkeypatch):
    import safetensors.torch

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        tiny_model.save(tmp_path / "model")
    assert _listing(tmp_path) == []


def test_fit_refuses_negative_iterations(tiny_model):
    cs = _set(12, bands=("r",), size=16)
    with pytest.raises(InvalidInputError, match="iterations"):
        tiny_model.fit(cs, {cs.ids[0]: "anomaly", cs.ids[1]: "normal"}, iterations=-1, progress=False)


# ------------------------------------------------------------------ catalogue writers
def test_catalogue_writers_refuse_existing_files(tmp_path):
    table = QTable({"id": ["a", "b"], "ra": [1.0, 2.0], "dec": [3.0, 4.0], "score": [0.1, 0.9]})
    for name in ("t.ecsv", "t.fits"):
        write_table(table, tmp_path / name)
        before = (tmp_path / name).read_bytes()
        with pytest.raises(OutputExistsError, match="exists; pass overwrite=True"):
            write_table(table[:1], tmp_path / name)
        assert (tmp_path / name).read_bytes() == before
    pytest.importorskip("regions")
    write_regions(table, tmp_path / "r.reg")
    before = (tmp_path / "r.reg").read_bytes()
    with pytest.raises(OutputExistsError, match="exists; pass overwrite=True"):
        write_regions(table[:1], tmp_path / "r.reg")
    assert (tmp_path / "r.reg").read_bytes() == before


def _bundle_bytes(folder):
    return {
        os.path.relpath(os.path.join(d, n), folder): open(os.path.join(d, n), "rb").read()
        for d, _, names in os.walk(folder)
        for n in names
    }


def test_astronomaly_overwrite_is_swapped_in_only_when_complete(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    cs = _set(6)
    scores = np.linspace(0.1, 0.9, 6)
    out = tmp_path / "bundle"
    export_astronomaly(out, cs, scores, features=np.eye(6), image_format="fits", progress=False)
    (out / "notes.txt").write_text("mine")  # not part of the bundle: never touched
    before = _bundle_bytes(out)
    with pytest.raises(InvalidInputError, match="already holds an Astronomaly bundle"):
        export_astronomaly(out, cs, scores, features=np.eye(6), image_format="fits", progress=False)
    assert _bundle_bytes(out) == before

    from anomalymatch_astro.catalogs import _astronomaly

    calls = []

    def failing(path, cutout, image_format, band_scales=None):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        fits.PrimaryHDU(np.asarray(cutout, dtype=np.float32)).writeto(path)

    monkeypatch.setattr(_astronomaly, "_save_image", failing)
    with pytest.raises(OSError, match="disk full"):
        export_astronomaly(out, cs, 1 - scores, features=np.eye(6), image_format="fits", overwrite=True, progress=False)
    assert _bundle_bytes(out) == before  # the old bundle as it was, nothing half-made left
    monkeypatch.undo()
    export_astronomaly(out, cs, 1 - scores, features=np.eye(6), image_format="fits", overwrite=True, progress=False)
    assert (out / "notes.txt").read_text() == "mine"
    assert _bundle_bytes(out)["ml_scores.csv"] != before["ml_scores.csv"]
    assert not [name for name in os.listdir(out) if name.startswith(".")]
    with pytest.raises(InvalidInputError):
        export_astronomaly(tmp_path / "new", cs, scores, features=np.eye(5), progress=False)
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------ sessions
class _Flat:
    model_hash = "flat"

    def embed(self, cutouts, *, batch_size=256, **kwargs):
        return cutouts.data.reshape(len(cutouts), -1)


def test_a_label_typo_leaves_no_workdir(tmp_path):
    cs = _set(20)
    workdir = tmp_path / "session"
    with pytest.raises(UnknownIDError, match="obj9999"):
        ActiveLearningSession(cs, labels={"obj9999": "anomaly"}, classifier=_Flat(), workdir=workdir)
    assert not workdir.exists()
    # an existing, empty folder is left as it was (not removed, nothing added)
    workdir.mkdir()
    (workdir / "keep.txt").write_text("mine")
    with pytest.raises(UnknownIDError):
        ActiveLearningSession(cs, labels={"obj9999": "anomaly"}, classifier=_Flat(), workdir=workdir)
    assert _listing(workdir) == ["keep.txt"]


def test_a_failed_start_removes_only_what_it_made(tmp_path, monkeypatch):
    from anomalymatch_astro.active_learning import LabelStore

    cs = _set(20)
    workdir = tmp_path / "session"

    def broken(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(LabelStore, "add", broken)
    with pytest.raises(RuntimeError, match="boom"):
        ActiveLearningSession(cs, labels={"obj0001": "anomaly"}, classifier=_Flat(), workdir=workdir)
    assert not workdir.exists()
    monkeypatch.undo()
    # an existing session is never damaged by a failed reopening
    s = ActiveLearningSession(cs, labels={"obj0001": "anomaly"}, classifier=_Flat(), workdir=workdir)
    s.close()
    before = _listing(workdir)
    with pytest.raises(UnknownIDError):
        ActiveLearningSession(cs, labels={"typo": "normal"}, classifier=_Flat(), workdir=workdir)
    assert _listing(workdir) == before
    s = ActiveLearningSession(cs, classifier=_Flat(), workdir=workdir)
    assert s.labels == {"obj0001": "anomaly"}
    s.close()


# ------------------------------------------------------------------ the CLI, the scenarios
def _survey(tmp_path, n=5):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [30.5, 30.5]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    for band, value in (("g", 1.0), ("r", 2.0)):
        fits.writeto(tmp_path / f"{band}.fits", np.full((60, 60), value, np.float32), header=wcs.to_header())
    coords = wcs.pixel_to_world(np.linspace(20, 40, n), np.full(n, 30.0))
    Table({"id": [f"new{i}" for i in range(n)], "ra": coords.ra.deg, "dec": coords.dec.deg}).write(
        tmp_path / "cat.ecsv"
    )
    return ["--catalog", str(tmp_path / "cat.ecsv"), "--image", f"g={tmp_path / 'g.fits'}"] + [
        "--image",
        f"r={tmp_path / 'r.fits'}",
        "--no-progress",
    ]


def test_cli_cutouts_never_replaces_a_set(tmp_path, capsys):
    """The issue: a 600-cutout set became 5 cutouts, exit 0."""
    args = _survey(tmp_path)
    path = tmp_path / "existing.h5"
    _set(600).to_hdf5(path)
    before = path.read_bytes()
    assert main(["cutouts", *args, "--size", "10", "-o", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "--overwrite" in err and "--append" in err
    assert path.read_bytes() == before
    assert not (tmp_path / "existing.h5.manifest.json").exists()
    assert main(["cutouts", *args, "--size", "10", "-o", str(path), "--append"]) == 0
    assert len(CutoutSet.from_hdf5(path)) == 605
    assert main(["cutouts", *args, "--size", "10", "-o", str(path), "--overwrite"]) == 0
    assert len(CutoutSet.from_hdf5(path)) == 5
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_cli_cutouts_with_an_angle_size(tmp_path, capsys):
    """The issue: ``--size 8arcsec`` wrote the HDF5, then crashed writing the manifest."""
    args = _survey(tmp_path)
    out = tmp_path / "c.h5"
    assert main(["cutouts", *args, "--size", "2arcsec", "-o", str(out)]) == 0
    assert CutoutSet.from_hdf5(out).image_shape[-2:] == (10, 10)  # 2 arcsec at 0.2 arcsec/pixel
    manifest = json.loads((tmp_path / "c.h5.manifest.json").read_text())
    assert manifest["config"]["size"] == "2.0 arcsec"


@pytest.mark.parametrize("size", ["0", "-4", "0arcsec", "-2arcsec", "3kg", "many"])
def test_cli_cutouts_refuses_a_nonsense_size(tmp_path, capsys, size):
    args = _survey(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["cutouts", *args, "--size", size, "-o", str(tmp_path / "c.h5")])
    assert info.value.code == 2
    assert "--size" in capsys.readouterr().err
    assert not (tmp_path / "c.h5").exists()


def test_demo_never_replaces_an_earlier_run(tmp_path, monkeypatch):
    from anomalymatch_astro import _demo

    out = tmp_path / "demo"
    out.mkdir()
    (out / "cutouts.h5").write_bytes(b"an earlier run")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="already holds a demo run"):
        _demo.run_demo(out, n_objects=30, stages=("survey",), progress=False)
    assert _listing(out) == ["cutouts.h5", "notes.txt"]

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("anomalymatch_astro.datasets.make_mock_survey", broken)
    with pytest.raises(RuntimeError, match="boom"):
        _demo.run_demo(out, n_objects=30, stages=("survey",), overwrite=True, progress=False)
    assert _listing(out) == ["cutouts.h5", "notes.txt"]  # the earlier run is back
    assert (out / "cutouts.h5").read_bytes() == b"an earlier run"
    with pytest.raises(RuntimeError, match="boom"):
        _demo.run_demo(tmp_path / "new", n_objects=30, stages=("survey",), progress=False)
    assert not (tmp_path / "new").exists()
