"""Shared pytest fixtures: real FITS files that ship inside installed packages (never copied into the repo)."""

import os
import zipfile

import pytest

CANDELS_ZIP = "mast/tests/data/astrocut_189.49206_62.20615_100x100px_f.zip"


@pytest.fixture(scope="session")
def candels_path(tmp_path_factory):
    """Real HST CANDELS GOODS-N (F606W, F814W, F850LP; 3 x 100x100 float32, TAN WCS) from astroquery's wheel."""
    astroquery = pytest.importorskip("astroquery")
    src = os.path.join(os.path.dirname(astroquery.__file__), CANDELS_ZIP)
    if not os.path.exists(src):
        pytest.fail(f"the CANDELS test file is missing from astroquery: {src}")
    out = tmp_path_factory.mktemp("candels")
    with zipfile.ZipFile(src) as z:
        name = z.namelist()[0]
        z.extract(name, out)
    return out / name


@pytest.fixture(scope="session")
def m13_paths():
    """astropy's M13 test image, plain and tile-compressed (Rice)."""
    import astropy

    base = os.path.join(os.path.dirname(astropy.__file__), "io/fits/hdu/compressed/tests/data")
    paths = {"plain": os.path.join(base, "m13.fits"), "rice": os.path.join(base, "m13_rice.fits")}
    for p in paths.values():
        if not os.path.exists(p):
            pytest.fail(f"astropy's M13 test file is missing: {p}")
    return paths
