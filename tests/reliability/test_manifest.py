"""Run manifests: write_manifest, and one next to every output of the CLI commands."""

import argparse
import hashlib
import json
import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from anomalymatch_astro.cli import main
from anomalymatch_astro.utils import _manifest, write_manifest
from anomalymatch_astro.utils.exceptions import WriteError


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_write_manifest(tmp_path):
    inp = tmp_path / "in.bin"
    inp.write_bytes(os.urandom(3000))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    out = tmp_path / "out.ecsv"
    out.write_text("x")
    ns = argparse.Namespace(batch_size=8, path=tmp_path, func=print, arr=np.arange(2))
    path = write_manifest(
        out,
        config=ns,
        inputs=[inp, folder, "https://example.org/sia"],
        seeds=[0, 1],
        extra={"model_hash": "abc"},
        command=["anomalymatch-astro", "score"],
    )
    assert path == f"{out}.manifest.json" and not [p for p in os.listdir(tmp_path) if ".tmp" in p]
    info = json.loads(open(path).read())
    assert info["format"] == "anomalymatch_astro.manifest" and info["output"] == str(out)
    assert info["inputs"][0] == {"path": str(inp), "sha256": _sha(inp), "size": 3000, "hashed": "all"}
    assert info["inputs"][1]["files"]["a.json"]["sha256"] == _sha(folder / "a.json")
    assert info["inputs"][2] == {"path": "https://example.org/sia", "exists": False}
    assert info["config"] == {"batch_size": 8, "path": str(tmp_path), "func": None, "arr": [0, 1]}
    assert info["seeds"] == [0, 1] and info["extra"] == {"model_hash": "abc"}
    assert info["command"] == ["anomalymatch-astro", "score"]
    assert {"anomalymatch_astro", "numpy", "astropy", "torch", "timm"} <= set(info["versions"])
    assert info["python"] and info["platform"] and info["time"].endswith("+00:00")
    # a folder output gets a sibling manifest
    assert write_manifest(folder) == f"{folder}.manifest.json"


def test_large_files_hashed_by_head_and_tail(tmp_path, monkeypatch):
    monkeypatch.setattr(_manifest, "_FULL_HASH_LIMIT", 100)
    monkeypatch.setattr(_manifest, "_HEAD_TAIL", 10)
    path = tmp_path / "big"
    content = bytes(range(256)) * 2
    path.write_bytes(content)
    info = _manifest.file_sha256(path)
    expected = hashlib.sha256(content[:10] + content[-10:] + str(len(content)).encode()).hexdigest()
    assert info == {"sha256": expected, "size": 512, "hashed": "first and last 16 MiB + size"}


def test_unwritable_manifest_is_a_write_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_manifest.os, "replace", refuse)
    with pytest.raises(WriteError, match="manifest"):
        write_manifest(tmp_path / "out")
    assert os.listdir(tmp_path) == []


def test_cli_chain_writes_manifests(tmp_path, capsys):
    pytest.importorskip("timm")
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [30.5, 30.5]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    rng = np.random.default_rng(0)
    fits.writeto(tmp_path / "r.fits", rng.normal(size=(60, 60)).astype(np.float32), header=wcs.to_header())
    coords = wcs.pixel_to_world([15, 25, 35, 45, 20, 40], [20, 30, 40, 20, 40, 30])
    ids = [f"o{i}" for i in range(6)]
    Table({"id": ids, "ra": coords.ra.deg, "dec": coords.dec.deg}).write(tmp_path / "cat.ecsv")
    Table({"id": ids[:3], "label": ["anomaly", "normal", "normal"]}).write(tmp_path / "labels.csv")
    c, m, s, e = (str(tmp_path / n) for n in ("c.h5", "model", "scores.ecsv", "top.fits"))
    assert (
        main(
            [
                "cutouts",
                "--catalog",
                str(tmp_path / "cat.ecsv"),
                "--image",
                f"r={tmp_path / 'r.fits'}",
                "--size",
                "16",
                "-o",
                c,
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "--cutouts",
                c,
                "--labels",
                str(tmp_path / "labels.csv"),
                "-o",
                m,
                "--no-pretrained",
                "--image-size",
                "16",
                "--iterations",
                "1",
                "--seed",
                "3",
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(["score", "--model", m, "--cutouts", c, "-o", s, "--batch-size", "4", "--device", "cpu", "--no-progress"])
        == 0
    )
    assert main(["export", "--scores", s, "--format", "fits", "-o", e, "--top", "2"]) == 0
    capsys.readouterr()
    man = {
        name: json.load(open(f"{path}.manifest.json"))
        for name, path in (("cutouts", c), ("train", m), ("score", s), ("export", e))
    }
    assert man["cutouts"]["command"][:2] == ["anomalymatch-astro", "cutouts"]
    assert man["cutouts"]["inputs"][1]["sha256"] == _sha(tmp_path / "r.fits")
    # each step records the exact output of the one before
    assert man["train"]["inputs"][0]["sha256"] == _sha(c)
    assert man["train"]["seeds"] == 3 and man["train"]["config"]["image_size"] == 16
    assert man["score"]["inputs"][0]["files"]["model.safetensors"]["sha256"] == _sha(f"{m}/model.safetensors")
    assert man["score"]["extra"]["model_hash"] == man["train"]["extra"]["model_hash"]
    assert man["export"]["inputs"][0]["sha256"] == _sha(s)
