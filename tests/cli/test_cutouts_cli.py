import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.cli import main


def _write_image(path, wcs, value):
    data = np.full((60, 60), value, np.float32)
    fits.writeto(path, data, header=wcs.to_header())


def test_cutouts_command(tmp_path, capsys):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [30.5, 30.5]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    _write_image(tmp_path / "g.fits", wcs, 1.0)
    _write_image(tmp_path / "r.fits", wcs, 2.0)
    coords = wcs.pixel_to_world([20, 30, 40], [30, 30, 25])
    Table({"id": ["a", "b", "c"], "ra": coords.ra.deg, "dec": coords.dec.deg}).write(tmp_path / "cat.ecsv")
    rc = main(
        [
            "cutouts",
            "--catalog",
            str(tmp_path / "cat.ecsv"),
            "--image",
            f"g={tmp_path / 'g.fits'}",
            "--image",
            f"r={tmp_path / 'r.fits'}",
            "--size",
            "10",
            "-o",
            str(tmp_path / "c.h5"),
            "--no-progress",
        ]
    )
    assert rc == 0
    assert "wrote 3 cutouts" in capsys.readouterr().out
    cs = CutoutSet.from_hdf5(tmp_path / "c.h5")
    assert cs.bands == ("g", "r") and cs.ids.tolist() == ["a", "b", "c"]
    assert np.all(cs.data[:, 1] == 2.0)


def test_cutouts_command_error(tmp_path, capsys):
    Table({"id": ["a"], "ra": [1.0], "dec": [2.0]}).write(tmp_path / "cat.ecsv")
    rc = main(
        [
            "cutouts",
            "--catalog",
            str(tmp_path / "cat.ecsv"),
            "--image",
            f"g={tmp_path / 'missing.fits'}",
            "-o",
            str(tmp_path / "c.h5"),
        ]
    )
    assert rc == 1
    assert "does not exist" in capsys.readouterr().err


def test_help_lists_commands(capsys):
    assert main([]) == 2
    assert "cutouts" in capsys.readouterr().out
