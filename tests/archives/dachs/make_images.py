"""Build the test images served by the local DaCHS server (and replayed offline).

Real FITS data from installed packages, rewritten as single-HDU files with a plain
TAN/CD WCS and a FILTER keyword (DaCHS rejects DSS plate solutions and very long headers):

- ``candels_f606w.fits``, ``candels_f814w.fits``, ``candels_f850lp.fits``: the three
  100x100 px HST CANDELS GOODS-N bands of astroquery's
  ``mast/tests/data/astrocut_189.49206_62.20615_100x100px_f.zip``;
- ``m13.fits``: astropy's ``io/fits/hdu/compressed/tests/data/m13.fits`` (300x300 px, DSS).

Usage: ``python make_images.py OUTDIR`` (needs astropy, and astroquery importable or the env
variables ``AMTEST_CANDELS_ZIP`` and ``AMTEST_M13`` pointing at the two source files).
"""

import io
import os
import sys
import zipfile

import numpy as np

CANDELS_ZIP = "mast/tests/data/astrocut_189.49206_62.20615_100x100px_f.zip"
M13 = "io/fits/hdu/compressed/tests/data/m13.fits"
CANDELS_BANDS = ("F606W", "F814W", "F850LP")


def _clean_header(src, *, filt, telescope, instrument, obj):
    from astropy.io import fits

    hdr = fits.Header()
    hdr["CTYPE1"], hdr["CTYPE2"] = "RA---TAN", "DEC--TAN"
    hdr["CRVAL1"], hdr["CRVAL2"] = float(src["CRVAL1"]), float(src["CRVAL2"])
    hdr["CRPIX1"], hdr["CRPIX2"] = float(src["CRPIX1"]), float(src["CRPIX2"])
    if "CD1_1" in src:
        cd = [[src["CD1_1"], src.get("CD1_2", 0.0)], [src.get("CD2_1", 0.0), src["CD2_2"]]]
    else:
        cd = [[src["CDELT1"], 0.0], [0.0, src["CDELT2"]]]
    hdr["CD1_1"], hdr["CD1_2"] = float(cd[0][0]), float(cd[0][1])
    hdr["CD2_1"], hdr["CD2_2"] = float(cd[1][0]), float(cd[1][1])
    hdr["CUNIT1"], hdr["CUNIT2"] = "deg", "deg"
    hdr["RADESYS"] = "ICRS"
    hdr["EQUINOX"] = 2000.0
    hdr["FILTER"] = filt
    hdr["TELESCOP"] = telescope
    hdr["INSTRUME"] = instrument
    hdr["OBJECT"] = obj
    return hdr


def candels_path():
    """astroquery's CANDELS zip (env AMTEST_CANDELS_ZIP overrides, e.g. when astroquery is absent)."""
    if os.environ.get("AMTEST_CANDELS_ZIP"):
        return os.environ["AMTEST_CANDELS_ZIP"]
    import astroquery

    return os.path.join(os.path.dirname(astroquery.__file__), CANDELS_ZIP)


def m13_path():
    """astropy's m13.fits (env AMTEST_M13 overrides, e.g. for Debian's astropy without test data)."""
    if os.environ.get("AMTEST_M13"):
        return os.environ["AMTEST_M13"]
    import astropy

    return os.path.join(os.path.dirname(astropy.__file__), M13)


def build_images():
    """Return ``{file name: astropy.io.fits.PrimaryHDU}`` of the four test images."""
    from astropy.io import fits

    out = {}
    with zipfile.ZipFile(candels_path()) as z:
        raw = z.read(z.namelist()[0])
    with fits.open(io.BytesIO(raw)) as hdul:
        for band, hdu in zip(CANDELS_BANDS, hdul[1:4]):
            hdr = _clean_header(hdu.header, filt=band, telescope="HST", instrument="ACS", obj="GOODS-N")
            out[f"candels_{band.lower()}.fits"] = fits.PrimaryHDU(np.asarray(hdu.data, dtype=np.float32), header=hdr)
    with fits.open(m13_path()) as hdul:
        hdr = _clean_header(hdul[0].header, filt="DSS2", telescope="Palomar", instrument="DSS", obj="M13")
        out["m13.fits"] = fits.PrimaryHDU(np.asarray(hdul[0].data, dtype=np.float32), header=hdr)
    return out


def write_images(outdir):
    """Write the four images to ``outdir`` (only when missing or different); return the paths."""
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for name, hdu in build_images().items():
        buf = io.BytesIO()
        hdu.writeto(buf)
        data = buf.getvalue()
        path = os.path.join(outdir, name)
        if not (os.path.exists(path) and open(path, "rb").read() == data):
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_images(sys.argv[1] if len(sys.argv) > 1 else "."):
        print(p)
