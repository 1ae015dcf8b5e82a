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


def _wcs():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [30.5, 30.5]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    return wcs


def _catalog(tmp_path, wcs):
    coords = wcs.pixel_to_world([20, 30], [30, 30])
    Table({"id": ["a", "b"], "ra": coords.ra.deg, "dec": coords.dec.deg}).write(tmp_path / "cat.ecsv")
    return str(tmp_path / "cat.ecsv")


def test_cutouts_image_extension_syntax(tmp_path, capsys):
    """``--image i=file.fits[2]`` and ``[SCI,2]`` pick that extension, not the first image."""
    wcs = _wcs()
    header = wcs.to_header()
    fits.HDUList(
        [
            fits.PrimaryHDU(np.full((60, 60), 1, np.float32), header=header),
            fits.ImageHDU(np.full((60, 60), 2, np.float32), header=header, name="SCI"),
            fits.ImageHDU(np.full((60, 60), 3, np.float32), header=header, name="SCI", ver=2),
        ]
    ).writeto(tmp_path / "multi.fits")
    multi = tmp_path / "multi.fits"
    base = ["cutouts", "--catalog", _catalog(tmp_path, wcs), "--size", "8", "--no-progress"]
    images = ["--image", f"g={multi}[2]", "--image", f"r={multi}[SCI]", "--image", f"i={multi}"]
    assert main([*base, *images, "-o", str(tmp_path / "c.h5")]) == 0
    cs = CutoutSet.from_hdf5(tmp_path / "c.h5")
    assert [float(cs.data[0, k, 4, 4]) for k in range(3)] == [3.0, 2.0, 1.0]
    manifest = (tmp_path / "c.h5.manifest.json").read_text()
    assert str(multi) in manifest and "sha256" in manifest
    capsys.readouterr()
    assert main([*base, "--image", f"g={multi}[5]", "-o", str(tmp_path / "d.h5")]) == 1
    err = capsys.readouterr().err
    assert "has no extension [5]" in err and "[2] SCI,2" in err
    assert not (tmp_path / "d.h5").exists()


def test_cutouts_refuses_a_band_given_twice(tmp_path, capsys):
    wcs = _wcs()
    _write_image(tmp_path / "x.fits", wcs, 1.0)
    _write_image(tmp_path / "y.fits", wcs, 2.0)
    argv = ["cutouts", "--catalog", _catalog(tmp_path, wcs), "--no-progress", "-o", str(tmp_path / "c.h5")]
    argv += ["--image", f"b={tmp_path / 'x.fits'}", "--image", f"b={tmp_path / 'y.fits'}"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "the band 'b' twice" in err and "x.fits" in err and "y.fits" in err
    assert not (tmp_path / "c.h5").exists()


def _star_and_faint_object(tmp_path):
    """A bright star 6 pixels from a faint galaxy on one band, their catalogue, and a segmentation map."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [30.5, 30.5]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    y, x = np.mgrid[:60, :60]
    rng = np.random.default_rng(0)
    star = 1000.0 * np.exp(-((x - 24) ** 2 + (y - 30) ** 2) / (2 * 1.5**2))
    faint = 5.0 * np.exp(-((x - 30) ** 2 + (y - 30) ** 2) / (2 * 1.5**2))
    fits.writeto(tmp_path / "g.fits", (star + faint + rng.normal(0, 0.5, (60, 60))).astype(np.float32), wcs.to_header())
    segm = np.zeros((60, 60), np.int32)
    segm[(x - 24) ** 2 + (y - 30) ** 2 <= 16] = 1
    segm[(x - 30) ** 2 + (y - 30) ** 2 <= 4] = 2
    fits.writeto(tmp_path / "segm.fits", segm, wcs.to_header())
    coords = wcs.pixel_to_world([24, 30], [30, 30])
    Table(
        {
            "id": ["star", "faint"],
            "ra": coords.ra.deg,
            "dec": coords.dec.deg,
            "a": [2.0, 1.0],
            "b": [2.0, 1.0],
            "theta": [0.0, 0.0],
        }
    ).write(tmp_path / "cat.ecsv")
    return wcs


def _cut(tmp_path, name, *extra):
    args = ["cutouts", "--catalog", str(tmp_path / "cat.ecsv"), "--image", f"g={tmp_path / 'g.fits'}"]
    assert main([*args, "--size", "16", "-o", str(tmp_path / name), "--no-progress", *extra]) == 0
    return CutoutSet.from_hdf5(tmp_path / name)


def test_cutouts_command_masks_neighbours(tmp_path):
    _star_and_faint_object(tmp_path)
    plain = _cut(tmp_path, "plain.h5")
    masked = _cut(tmp_path, "masked.h5", "--mask-neighbours")
    segm = ["--segmentation", str(tmp_path / "segm.fits"), "--mask-dilate", "1"]
    segmented = _cut(tmp_path, "segm.h5", *segm)
    # the star's segment touches the faint object's (one blend), but the star is 200 times brighter:
    # masked with --keep-blended too (blend_contrast)
    blend = _cut(tmp_path, "blend.h5", *segm, "--keep-blended")
    assert blend.meta["neighbour_mask"]["keep_blended"] is True
    faint = plain.index_of(["faint"])[0]
    assert "n_masked" not in plain.table.colnames
    for cs in (masked, segmented, blend):
        assert cs.table["n_masked"][faint] > 0
        # the star's light is gone from the faint object's cutout, its own centre is untouched
        assert np.nanmax(cs.data[faint]) < 0.1 * np.nanmax(plain.data[faint])
        assert cs.data[faint, 0, 8, 8] == plain.data[faint, 0, 8, 8]


def test_cutouts_command_keep_blended_needs_a_segmentation(tmp_path, capsys):
    _star_and_faint_object(tmp_path)
    args = ["cutouts", "--catalog", str(tmp_path / "cat.ecsv"), "--image", f"g={tmp_path / 'g.fits'}"]
    assert main([*args, "--size", "16", "-o", str(tmp_path / "x.h5"), "--keep-blended"]) != 0
    assert "--keep-blended needs --segmentation" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
    segm = ["--segmentation", str(tmp_path / "segm.fits")]
    assert main([*args, "--size", "16", "-o", str(tmp_path / "x.h5"), *segm, "--saturation", "20"]) != 0
    assert "--saturation is used by --keep-blended only" in capsys.readouterr().err


def test_cutouts_command_saturation_masks_a_clipped_star(tmp_path):
    _star_and_faint_object(tmp_path)
    with fits.open(tmp_path / "g.fits") as hdul:  # a display-like image: the star clipped at 20
        fits.writeto(tmp_path / "g.fits", np.minimum(hdul[0].data, 20.0), hdul[0].header, overwrite=True)
    segm = ["--segmentation", str(tmp_path / "segm.fits"), "--keep-blended"]
    plain = _cut(tmp_path, "plain.h5")
    faint = plain.index_of(["faint"])[0]
    # clipped, the star is 4 times the faint object's peak: the blend keeps it
    kept = _cut(tmp_path, "kept.h5", *segm)
    assert kept.table["n_masked"][faint] == 0
    masked = _cut(tmp_path, "masked.h5", *segm, "--saturation", "20")
    assert masked.meta["neighbour_mask"]["saturation"] == [20.0]
    assert masked.table["n_masked"][faint] > 0
    star = np.unravel_index(np.argmax(plain.data[faint, 0, :, :6]), (16, 6))  # the star's clipped core
    assert kept.data[faint, 0][star] == 20.0
    assert masked.data[faint, 0][star] < 5.0


def test_cutouts_command_refuses_a_segmentation_that_is_not_labels(tmp_path):
    wcs = _star_and_faint_object(tmp_path)
    fits.writeto(tmp_path / "bad.fits", np.full((60, 60), 0.5, np.float32), wcs.to_header())
    args = ["cutouts", "--catalog", str(tmp_path / "cat.ecsv"), "--image", f"g={tmp_path / 'g.fits'}"]
    rc = main([*args, "--size", "16", "-o", str(tmp_path / "x.h5"), "--segmentation", str(tmp_path / "bad.fits")])
    assert rc != 0
    assert not (tmp_path / "x.h5").exists()
