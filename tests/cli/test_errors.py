"""CLI error messages speak the command line: flags, not keyword arguments; plain ids, not numpy reprs."""

import argparse

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from anomalymatch_astro.cli import for_command_line, main
from anomalymatch_astro.utils.exceptions import InvalidInputError, OutputExistsError, UnknownIDError


def _parser():
    p = argparse.ArgumentParser()
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--append", action="store_true")
    p.add_argument("--on-missing", choices=["raise", "skip"])
    p.add_argument("--soda", choices=["auto", "yes", "no"])
    p.add_argument("--no-pretrained", action="store_true")
    sub = p.add_subparsers().add_parser("serve")
    sub.add_argument("--allow-remote", action="store_true")
    return p


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("'x.h5' exists; pass overwrite=True to replace it", "'x.h5' exists; use --overwrite to replace it"),
        (
            "pass overwrite=True to replace it, or mode='a' to append",
            "use --overwrite to replace it, or --append to append",
        ),
        ("Pass on_missing='skip' to drop them", "Use --on-missing skip to drop them"),
        ("or on_missing='flag' to keep them", "or on_missing='flag' to keep them"),  # not an option of this command
        ("download it (soda=False) or soda='auto'", "download it (--soda no) or --soda auto"),
        ("or pretrained=False to train from scratch", "or --no-pretrained to train from scratch"),
        ("unless allow_remote=True (then ...)", "unless --allow-remote (then ...)"),
        ("unless strict_size=True", "unless strict_size=True"),
        ("ids [np.str_('XDF0002'), np.str_('b')] and np.int64(3), np.float64(0.5)", "ids ['XDF0002', 'b'] and 3, 0.5"),
    ],
)
def test_for_command_line(message, expected):
    assert for_command_line(message, _parser()) == expected


def _fail_with(monkeypatch, command, error):
    import importlib

    module = importlib.import_module(f"anomalymatch_astro.cli._{command}")

    def run(args):
        raise error

    monkeypatch.setattr(module, "run", run)


def test_cli_error_translates_keywords_and_numpy_ids(monkeypatch, capsys, tmp_path):
    ids = np.array(["XDF0002", "XDF0003"])
    error = UnknownIDError(f"2 id(s) are not in the cutouts: {list(ids)}", ids=list(ids))
    _fail_with(monkeypatch, "export", error)
    argv = ["export", "--scores", "s.ecsv", "--format", "ecsv", "-o", str(tmp_path / "o.ecsv")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == "error: 2 id(s) are not in the cutouts: ['XDF0002', 'XDF0003']\n"

    _fail_with(monkeypatch, "export", OutputExistsError("'o.ecsv' exists; pass overwrite=True to replace it"))
    assert main(argv) == 1
    assert capsys.readouterr().err == "error: 'o.ecsv' exists; use --overwrite to replace it\n"

    _fail_with(monkeypatch, "label", InvalidInputError("listens on 127.0.0.1 only unless allow_remote=True"))
    assert main(["label", "--workdir", str(tmp_path)]) == 1
    assert capsys.readouterr().err == "error: listens on 127.0.0.1 only unless --allow-remote\n"


def test_cutouts_not_covered_names_the_flag(tmp_path, capsys):
    """A real message from make_cutouts: ``on_missing='flag'`` reads ``--on-missing flag`` on the command line."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [10.5, 10.5]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    fits.writeto(tmp_path / "g.fits", np.ones((20, 20), np.float32), header=wcs.to_header())
    Table({"id": ["far"], "ra": [151.0], "dec": [2.0]}).write(tmp_path / "cat.ecsv")
    argv = ["cutouts", "--catalog", str(tmp_path / "cat.ecsv"), "--image", f"g={tmp_path / 'g.fits'}"]
    assert main([*argv, "--size", "8", "-o", str(tmp_path / "c.h5"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "Use --on-missing flag to keep them" in err and "or --on-missing skip" in err
    assert "on_missing=" not in err
