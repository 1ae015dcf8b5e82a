"""``anomalymatch-astro search``: the whole search on one's own FITS, offline, on a small mock survey."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
from astropy.table import Table

from anomalymatch_astro import cli
from anomalymatch_astro.cli import _search

N_OBJECTS = 60


@pytest.fixture(scope="module", autouse=True)
def _search_command():
    """Make ``search`` a subcommand of ``main`` (a no-op once cli.SUBCOMMANDS lists it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(cli.SUBCOMMANDS, "search", ("_search", _search.HELP))
        yield


def run(*argv):
    return cli.main([str(a) for a in argv])


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def labels_of(workdir):
    from anomalymatch_astro.active_learning import ActiveLearningSession

    session = ActiveLearningSession.open(workdir)
    try:
        return session.labels, len(session.history())
    finally:
        session.close()


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """FITS images + an ECSV catalogue (id, ra, dec ...), cut into 32-pixel cutouts with the CLI."""
    from anomalymatch_astro.datasets import make_mock_survey

    base = tmp_path_factory.mktemp("search_survey")
    s = make_mock_survey(base / "survey", n_objects=N_OBJECTS, anomaly_fraction=0.1, spacing=40, progress=False)
    images = [f"--image={band}={path}" for band, path in s.images.items()]
    rc = cli.main(
        ["cutouts", "--catalog", str(s.catalog_path), *images, "--size", "32", "-o", str(base / "cutouts.h5")]
        + ["--no-progress"]
    )
    assert rc == 0
    truth = np.asarray(s.catalog["is_anomaly"], dtype=bool)
    ids = np.asarray(s.catalog["id"]).astype(str)
    seed = list(ids[truth][:2]) + list(ids[~truth][:8])
    words = ["anomaly"] * 2 + ["normal"] * 8
    Table({"id": seed, "label": words}).write(base / "seed_labels.csv", format="ascii.csv")
    return {"base": base, "cutouts": base / "cutouts.h5", "catalog": s.catalog_path, "ids": ids, "truth": truth}


@pytest.fixture(scope="module")
def trained(survey, tmp_path_factory):
    """A search workdir after init and one fast training (copied by the tests that change it)."""
    workdir = tmp_path_factory.mktemp("search_trained") / "W"
    init = ["search", "init", "--workdir", workdir, "--cutouts", survey["cutouts"], "--image-size", "32"]
    assert run(*init, "--labels", survey["base"] / "seed_labels.csv") == 0
    assert run("search", "train", "--workdir", workdir, "-n", "12", "--no-progress") == 0
    return workdir


@pytest.fixture
def workdir(trained, tmp_path):
    path = tmp_path / "W"
    shutil.copytree(trained, path)
    return path


def test_full_loop(survey, workdir, tmp_path, capsys):
    capsys.readouterr()
    cycle1 = workdir / "cycle-1"
    png, ecsv = cycle1 / "candidates.png", cycle1 / "candidates.ecsv"
    assert png.stat().st_size > 10_000 and ecsv.exists()
    first = Table.read(ecsv)
    assert first.colnames == ["id", "ra", "dec", "score", "rank", "system", "n_members", "members"]
    assert len(first) == 12 and np.all(np.diff(first["score"]) <= 0)
    assert len(set(first["system"])) == 12  # one entry per system (here every object is its own)
    assert str(first["ra"].unit) == "deg"
    before = {p: digest(p) for p in (png, ecsv)}

    # candidates, written as a CSV to fill in
    out = tmp_path / "next.csv"
    assert run("search", "candidates", "--workdir", workdir, "-n", "5", "-o", out) == 0
    text = capsys.readouterr().out
    assert "5 candidates (top) after cycle 1" in text and f"wrote {out}" in text
    cands = Table.read(out, format="ascii.csv")
    assert cands.colnames == ["id", "ra", "dec", "score", "rank", "system", "n_members", "members", "label"]
    assert list(cands["id"]) == list(first["id"][:5])

    # look-alikes of a seed anomaly, with a gallery
    like = str(Table.read(survey["base"] / "seed_labels.csv", format="ascii.csv")["id"][0])
    gallery = tmp_path / "like.png"
    argv = ["search", "candidates", "--workdir", workdir, "--strategy", "similar", "--like", like, "-n", "4"]
    assert run(*argv, "--gallery", gallery) == 0
    assert "4 candidates (similar)" in capsys.readouterr().out and gallery.stat().st_size > 5_000

    # the astronomer labels three of them and leaves two blank
    truth = dict(zip(survey["ids"], survey["truth"]))
    with open(out) as f:
        lines = f.read().splitlines()
    filled = [lines[0]]
    for k, line in enumerate(lines[1:]):
        obj_id = line.split(",")[0]
        filled.append(line + ("" if k >= 3 else ("anomaly" if truth[obj_id] else "normal")))
    verified = tmp_path / "verified.csv"
    verified.write_text("\n".join(filled) + "\n")
    assert run("search", "label", "--workdir", workdir, "--labels", verified) == 0
    text = capsys.readouterr().out
    assert "recorded 3 labels" in text and "skipped 2 rows without a label" in text

    # cycle 2: new files, cycle 1's untouched, labelled objects no longer proposed
    assert run("search", "train", "--workdir", workdir, "-n", "12", "--no-progress") == 0
    text = capsys.readouterr().out
    assert "trained cycle 2" in text and str(workdir / "cycle-2" / "candidates.png") in text
    assert (workdir / "cycle-2" / "candidates.png").exists()
    second = Table.read(workdir / "cycle-2" / "candidates.ecsv")
    assert not set(second["id"]) & set(cands["id"][:3])
    assert {p: digest(p) for p in (png, ecsv)} == before

    # status
    assert run("search", "status", "--workdir", workdir) == 0
    text = capsys.readouterr().out
    n_anom = 2 + sum(bool(truth[i]) for i in cands["id"][:3])
    assert f"labels: {n_anom} anomalies, {13 - n_anom} normals (13 of {N_OBJECTS} labelled)" in text
    assert "cycle 2; default mode fast" in text and "last training: cycle 2, fast mode" in text
    assert "top 5 of the ranking:" in text
    rows = text.split("top 5 of the ranking:")[1].strip().splitlines()[1:]
    assert len(rows) == 5

    # export in rank order, cross-matched against the survey catalogue
    cat = tmp_path / "cands.ecsv"
    rc = run("search", "export", "--workdir", workdir, "-o", cat, "--crossmatch", survey["catalog"])
    assert rc == 0
    text = capsys.readouterr().out
    assert f"wrote {N_OBJECTS} objects in rank order" in text and f"{N_OBJECTS} matched within 1arcsec" in text
    from anomalymatch_astro.catalogs import read_table

    table = read_table(cat)
    assert list(table["rank"]) == list(range(1, N_OBJECTS + 1))
    assert list(table["cat_id"]) == list(table["id"])  # every object matched itself
    assert (table["label"] != "").sum() == 13
    assert table.meta["cycle"] == 2

    top = tmp_path / "top.fits"
    assert run("search", "export", "--workdir", workdir, "-o", top, "--top", "7") == 0
    assert list(read_table(top)["rank"]) == list(range(1, 8))


def test_label_ui_on_the_same_workdir(workdir):
    """``anomalymatch-astro label --workdir W`` serves a search workdir; its labels and Retrain are the search's."""
    import http.client

    from anomalymatch_astro.active_learning import ActiveLearningSession
    from anomalymatch_astro.ui import LabelServer

    first = Table.read(workdir / "cycle-1" / "candidates.ecsv")
    session = ActiveLearningSession.open(workdir)  # what the label command does
    token = "search-test-token-0123456789"
    server = LabelServer(session, token=token).start()
    try:
        for body in (
            {"action": "label", "id": str(first["id"][0]), "label": "anomaly"},
            {"action": "retrain", "mode": "fast"},
        ):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            data = json.dumps(body).encode()
            headers = {"X-AnomalyMatch-Token": token, "Content-Type": "application/json"}
            conn.request("POST", "/api/action", body=data, headers=headers)
            assert conn.getresponse().status == 200
            conn.close()
    finally:
        server.shutdown()
        session.close()
    # the search sees the UI's label and training, and its next training is cycle 3
    reopened = ActiveLearningSession.open(workdir)
    assert reopened.labels[str(first["id"][0])] == "anomaly" and reopened.cycle == 2
    reopened.close()
    assert run("search", "train", "--workdir", workdir, "--no-progress") == 0
    assert (workdir / "cycle-3" / "candidates.ecsv").exists() and not (workdir / "cycle-2").exists()


def test_fixmatch_option(workdir, capsys):
    assert run("search", "train", "--workdir", workdir, "--mode", "fixmatch", "--iterations", "2", "--no-progress") == 0
    assert "training cycle 2 (fixmatch mode)" in capsys.readouterr().out
    assert (workdir / "cycle-2" / "candidates.png").exists() and (workdir / "model").is_dir()
    assert run("search", "status", "--workdir", workdir) == 0
    assert "last training: cycle 2, fixmatch mode" in capsys.readouterr().out


def test_init_refusals(survey, trained, tmp_path, capsys):
    capsys.readouterr()
    init = ["search", "init", "--cutouts", survey["cutouts"]]
    before = sorted(os.listdir(trained))
    assert run(*init, "--workdir", trained) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert sorted(os.listdir(trained)) == before

    # not a search workdir: never replaced, even with --overwrite
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert run(*init, "--workdir", other, "--overwrite") == 1
    assert "not a search workdir" in capsys.readouterr().err
    assert (other / "keep.txt").read_text() == "mine"

    # unknown ids in the seed labels: a clear error, nothing made
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\nnope1,anomaly\nnope2,normal\n")
    assert run(*init, "--workdir", tmp_path / "W", "--labels", bad) == 1
    err = capsys.readouterr().err
    assert "'nope1', 'nope2'" in err and "np.str_" not in err
    assert sorted(os.listdir(tmp_path)) == ["bad.csv", "notes"]  # no W, no temporary left

    assert run(*init, "--workdir", tmp_path / "X", "--cutouts", tmp_path / "missing.h5") == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "X").exists()


def test_init_overwrite(survey, workdir, capsys):
    rc = run("search", "init", "--workdir", workdir, "--cutouts", survey["cutouts"], "--overwrite", "--mode", "both")
    assert rc == 0
    assert "replaced the search workdir" in capsys.readouterr().out
    assert not (workdir / "cycle-1").exists() and not os.path.exists(f"{workdir}.old")
    assert run("search", "status", "--workdir", workdir) == 0
    text = capsys.readouterr().out
    assert "cycle 0; default mode both" in text and "labels: 0 anomalies, 0 normals" in text
    assert run("search", "train", "--workdir", workdir) == 1
    assert "at least one anomaly and one normal" in capsys.readouterr().err


def test_refusals(survey, workdir, tmp_path, capsys):
    capsys.readouterr()
    # unknown ids: listed, nothing saved
    before = labels_of(workdir)
    bad = tmp_path / "bad.csv"
    bad.write_text(f"id,label\n{survey['ids'][5]},anomaly\nXDF0002,normal\nXDF0003,anomaly\n")
    assert run("search", "label", "--workdir", workdir, "--labels", bad) == 1
    err = capsys.readouterr().err
    assert "'XDF0002', 'XDF0003'" in err and "np.str_" not in err
    assert labels_of(workdir) == before

    # nonsensical counts are refused by the parser
    for argv in (["candidates", "-n", "0"], ["candidates", "-n", "-3"], ["train", "-n", "0"], ["export", "--top", "0"]):
        with pytest.raises(SystemExit) as exc:
            run(
                "search",
                argv[0],
                "--workdir",
                workdir,
                *argv[1:],
                *(["-o", tmp_path / "x.ecsv"] * (argv[0] == "export")),
            )
        assert exc.value.code == 2
        assert "at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("search", "train", "--workdir", workdir, "--iterations", "0")
    capsys.readouterr()

    # existing outputs are never replaced without --overwrite
    out = tmp_path / "c.ecsv"
    out.write_text("mine")
    assert run("search", "candidates", "--workdir", workdir, "-o", out) == 1
    assert "pass --overwrite" in capsys.readouterr().err and out.read_text() == "mine"
    assert run("search", "export", "--workdir", workdir, "-o", out) == 1
    assert out.read_text() == "mine"
    assert run("search", "candidates", "--workdir", workdir, "-o", out, "--overwrite") == 0
    assert len(Table.read(out)) == 24
    assert run("search", "export", "--workdir", workdir, "-o", tmp_path / "cat.txt") == 1
    assert "table format" in capsys.readouterr().err

    # a cycle folder already there is never replaced: the training is refused before it runs
    (workdir / "cycle-2").mkdir()
    assert run("search", "train", "--workdir", workdir, "--no-progress") == 1
    assert "cycle-2 exists" in capsys.readouterr().err

    # missing workdir
    for action in ("train", "candidates", "status", "export", "label"):
        extra = {"export": ["-o", tmp_path / "y.ecsv"], "label": ["--labels", bad]}.get(action, [])
        assert run("search", action, "--workdir", tmp_path / "nowhere", *extra) == 1
        assert "holds no search" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()

    # similar needs --like; --like needs similar
    assert run("search", "candidates", "--workdir", workdir, "--strategy", "similar") == 1
    assert "--like" in capsys.readouterr().err


def test_untrained_search_has_no_candidates(survey, tmp_path, capsys):
    workdir = tmp_path / "W"
    init = ["search", "init", "--workdir", workdir, "--cutouts", survey["cutouts"], "--image-size", "32"]
    assert run(*init, "--labels", survey["base"] / "seed_labels.csv") == 0
    capsys.readouterr()
    assert run("search", "candidates", "--workdir", workdir) == 1
    assert "no scores yet" in capsys.readouterr().err
    assert run("search", "export", "--workdir", workdir, "-o", tmp_path / "c.ecsv") == 1
    assert not (tmp_path / "c.ecsv").exists()
    assert run("search", "status", "--workdir", workdir) == 0
    assert "not trained yet" in capsys.readouterr().out
    # look-alikes need no training: unranked (rank 0, score NaN)
    argv = ["search", "candidates", "--workdir", workdir, "--strategy", "similar", "--like", survey["ids"][0]]
    out = tmp_path / "like.ecsv"
    assert run(*argv, "-n", "3", "-o", out) == 0
    table = Table.read(out)
    assert len(table) == 3 and list(table["rank"]) == [0, 0, 0] and np.all(np.isnan(table["score"]))
    assert "similarity" in table.colnames


def test_candidates_grouped_by_system(survey, tmp_path, capsys):
    """Every object catalogued twice (a deblended fragment 0.4" away): one entry per system, the other listed."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from anomalymatch_astro.catalogs import read_table

    catalog = read_table(survey["catalog"])
    coords = SkyCoord(catalog["ra"], catalog["dec"], unit="deg").directional_offset_by(45 * u.deg, 0.4 * u.arcsec)
    fragments = Table({"id": [f"{i}_f" for i in catalog["id"]], "ra": coords.ra.deg, "dec": coords.dec.deg})
    both = Table({"id": list(catalog["id"]), "ra": list(catalog["ra"]), "dec": list(catalog["dec"])})
    for row in fragments:
        both.add_row(row)
    both.write(tmp_path / "crowded.ecsv")
    images = [f"--image={path.stem.split('_')[-1]}={path}" for path in sorted(survey["catalog"].parent.glob("*.fits"))]
    cutouts = tmp_path / "crowded.h5"
    rc = run("cutouts", "--catalog", tmp_path / "crowded.ecsv", *images, "--size", "32", "-o", cutouts, "--no-progress")
    assert rc == 0
    workdir = tmp_path / "W"
    init = ["search", "init", "--workdir", workdir, "--cutouts", cutouts, "--image-size", "32"]
    assert run(*init, "--labels", survey["base"] / "seed_labels.csv") == 0
    assert run("search", "train", "--workdir", workdir, "-n", "10", "--no-progress") == 0
    table = Table.read(workdir / "cycle-1" / "candidates.ecsv")
    assert len(table) == 10 and len(set(table["system"])) == 10
    assert list(table["n_members"]) == [1] * 10
    for obj_id, members in zip(table["id"], table["members"]):
        assert members in (f"{obj_id}_f", str(obj_id).removesuffix("_f"))
    capsys.readouterr()
    out = tmp_path / "flat.ecsv"
    assert run("search", "candidates", "--workdir", workdir, "-n", "10", "--no-group", "-o", out) == 0
    assert "members" not in capsys.readouterr().out
    flat = Table.read(out)
    assert flat.colnames == ["id", "ra", "dec", "score", "rank"]
    assert len({str(i).removesuffix("_f") for i in flat["id"]}) < 10  # without grouping: fragments and parents


def test_init_zoom_is_recorded(survey, tmp_path, capsys):
    import json

    workdir = tmp_path / "W"
    init = ["search", "init", "--workdir", workdir, "--cutouts", survey["cutouts"], "--image-size", "32"]
    assert run(*init, "--zoom", "0.5", "0.375") == 0
    assert json.loads((workdir / "session.json").read_text())["zoom"] == [0.5, 0.375]
    capsys.readouterr()
    assert run(*init[:3], tmp_path / "V", *init[4:], "--zoom", "1.5") == 1
    assert "crop fractions in (0, 1)" in capsys.readouterr().err and not (tmp_path / "V").exists()


def test_init_zoom_default_and_off(survey, tmp_path):
    import json

    init = ["search", "init", "--cutouts", survey["cutouts"], "--image-size", "32"]
    assert run(*init, "--workdir", tmp_path / "A") == 0
    assert json.loads((tmp_path / "A" / "session.json").read_text())["zoom"] == [0.5]  # the default centre view
    assert run(*init, "--workdir", tmp_path / "B", "--no-zoom") == 0
    assert json.loads((tmp_path / "B" / "session.json").read_text())["zoom"] == []


def test_init_profile_is_recorded_and_shown(survey, tmp_path, capsys):
    import json

    init = ["search", "init", "--cutouts", survey["cutouts"], "--image-size", "32", "--workdir", tmp_path / "P"]
    assert run(*init) == 0
    assert json.loads((tmp_path / "P" / "session.json").read_text())["profile"] is True  # the default
    capsys.readouterr()
    assert run("search", "status", "--workdir", tmp_path / "P") == 0
    assert "zoom [0.5], residual profile" in capsys.readouterr().out
    assert run(*init[:-1], tmp_path / "Q", "--no-profile") == 0
    assert json.loads((tmp_path / "Q" / "session.json").read_text())["profile"] is False
