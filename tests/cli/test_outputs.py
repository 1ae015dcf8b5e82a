"""Every command refuses to replace an existing output without --overwrite, and refuses nonsense counts."""

import argparse

import pytest

from anomalymatch_astro.cli import main
from anomalymatch_astro.cli._outputs import check_output, non_negative_int, positive_float, positive_int
from anomalymatch_astro.utils.exceptions import OutputExistsError

#: command -> its arguments before ``-o OUTPUT`` (inputs need not exist: the output is checked first)
COMMANDS = {
    "cutouts": ["--catalog", "cat.ecsv", "--image", "g=g.fits"],
    "query": ["--catalog", "cat.ecsv", "--band", "g", "--service", "http://127.0.0.1:9/sia"],
    "train": ["--cutouts", "c.h5", "--labels", "l.csv"],
    "score": ["--model", "model", "--cutouts", "c.h5"],
    "export": ["--scores", "s.ecsv", "--format", "ecsv"],
    "crossmatch": ["--candidates", "s.ecsv", "--catalog", "cat.ecsv", "--radius", "1arcsec"],
    "benchmark": ["--suite", "throughput"],
    "demo": [],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_an_existing_output_is_refused(command, kind, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    if kind == "file":
        out.write_bytes(b"precious")
    else:
        out.mkdir()
        (out / ("cutouts.h5" if command == "demo" else "config.json")).write_bytes(b"precious")
    rc = main(
        [command, *COMMANDS[command], "-o", str(out), "--no-progress"]
        if command != "crossmatch"
        else [command, *COMMANDS[command], "-o", str(out)]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert str(out) in err
    assert ("not a folder" if (command, kind) == ("demo", "file") else "--overwrite") in err
    if kind == "file":
        assert out.read_bytes() == b"precious"
    else:
        assert [p.read_bytes() for p in out.iterdir()] == [b"precious"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing written beside it


NONSENSE = [
    ("cutouts", "--size", "0"),
    ("query", "--size", "0"),
    ("query", "--timeout", "0"),
    ("query", "--retries", "-1"),
    ("query", "--rate-limit", "-2"),
    ("query", "--radius", "0arcsec"),
    ("train", "--iterations", "0"),
    ("train", "--iterations", "-1"),
    ("train", "--image-size", "0"),
    ("score", "--batch-size", "0"),
    ("score", "--workers", "-1"),
    ("export", "--top", "0"),
    ("benchmark", "--batch-size", "0"),
    ("benchmark", "--n", "0"),
    ("benchmark", "--iterations", "0"),
    ("benchmark", "--workers", "-1"),
    ("demo", "--n-objects", "0"),
    ("demo", "--iterations", "0"),
    ("demo", "--image-size", "-64"),
    ("demo", "--cycles", "-1"),
]


@pytest.mark.parametrize(("command", "flag", "value"), NONSENSE)
def test_nonsense_counts_are_refused(command, flag, value, tmp_path, capsys):
    argv = [command, *COMMANDS[command], "-o", str(tmp_path / "out"), flag, value]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and value in err
    assert not (tmp_path / "out").exists()


def test_append_and_overwrite_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["cutouts", *COMMANDS["cutouts"], "-o", str(tmp_path / "o.h5"), "--append", "--overwrite"])
    assert "not allowed with" in capsys.readouterr().err


def test_check_output(tmp_path):
    check_output(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    check_output(empty)  # an empty folder holds nothing to lose
    (empty / "f").write_text("x")
    with pytest.raises(OutputExistsError, match="--overwrite to replace it or --append to add to it"):
        check_output(empty, append=False)
    with pytest.raises(OutputExistsError, match="--overwrite to replace it \\(it is left as it was\\)"):
        check_output(empty / "f")
    check_output(empty, overwrite=True)
    check_output(empty, append=True)


def test_number_types():
    assert positive_int("3") == 3 and non_negative_int("0") == 0 and positive_float("0.5") == 0.5
    for func, text in ((positive_int, "0"), (positive_int, "1.5"), (non_negative_int, "-1"), (positive_float, "0")):
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            func(text)
    for text in ("nan", "inf", "-1e-9"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_float(text)
