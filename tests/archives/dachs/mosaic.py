"""A reproducible 3-band mock sky mosaic, published by the local DaCHS server as ``ammosaic``.

The field: centre RA=150.10, Dec=+2.20 (ICRS), 0.30 x 0.30 deg at 1 arcsec/px (1080 x 1080 px,
TAN, north up), bands g, r, i. Each band is cut into 2 x 2 overlapping tiles of 600 x 600 px
(origins 0 and 480 px: 120 px of overlap, so any 64 px cutout lies wholly in one tile).
Content: Gaussian sky noise, ~400 galaxies (elliptical Sersic n=1 or n=4 profiles whose colours
vary smoothly over the field) and 12 anomalies: 4 odd-colour objects, 4 rings and 4 arcs around
galaxies. Every source lies at least 40 px inside the mosaic's outer edge.

Only numpy and astropy are used (the script must run under Debian's python3-astropy, without
anomalymatch_astro). Random numbers come from the legacy ``numpy.random.RandomState``, whose
streams numpy keeps stable across versions.

Usage: ``python mosaic.py OUTDIR`` writes the 12 tiles (``ammosaic_<band>_<iy><ix>.fits``) and
``sources.fits`` / ``sources.ecsv``. From Python: ``make_mosaic(directory)``.
"""

import io
import os
import sys

import numpy as np

MOSAIC_CENTER = (150.10, 2.20)
MOSAIC_SIZE_DEG = 0.30
BANDS = ("g", "r", "i")
PIXEL_SCALE_ARCSEC = 1.0
NPIX = 1080
TILE = 600
TILE_ORIGINS = (0, 480)
MARGIN = 40
SEED = 20261128
ZEROPOINT = 28.0
EXPTIME = 100.0
NOISE = 1.0
N_GALAXIES = 400

BASE_URL = "http://127.0.0.1:8099"
SIA2_URL = f"{BASE_URL}/__system__/siap2/sitewide/siap2.xml"
SIA1_URL = f"{BASE_URL}/ammosaic/q/i/siap.xml"
TAP_URL = f"{BASE_URL}/tap"
COLLECTION = "ammosaic"
SOURCES_TABLE = "ammosaic.sources"
PRODUCT_URL = f"{BASE_URL}/getproduct/ammosaic/data/"


def mosaic_wcs():
    """The WCS of the whole 1080 x 1080 px mosaic (pixel (0, 0) is the first pixel)."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(MOSAIC_CENTER)
    w.wcs.crpix = [(NPIX + 1) / 2.0, (NPIX + 1) / 2.0]
    w.wcs.cd = [[-PIXEL_SCALE_ARCSEC / 3600.0, 0.0], [0.0, PIXEL_SCALE_ARCSEC / 3600.0]]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    return w


def tile_name(band, iy, ix):
    """File name of the tile of ``band`` at tile row ``iy`` and column ``ix`` (0 or 1)."""
    return f"ammosaic_{band}_{iy}{ix}.fits"


def _colours(x, y):
    """Smooth g-r and r-i colours over the field (x, y in px)."""
    u, v = x / NPIX, y / NPIX
    g_r = 0.75 + 0.35 * np.sin(2.0 * np.pi * u) * np.cos(np.pi * v)
    r_i = 0.35 + 0.20 * np.cos(2.0 * np.pi * v + 1.0) + 0.1 * u
    return g_r, r_i


def _place(rng, n, taken, min_sep):
    """``n`` positions at least ``min_sep`` px from each other and from ``taken`` (list of (x, y, sep))."""
    out = []
    lo, hi = MARGIN + 5, NPIX - 1 - MARGIN - 5
    while len(out) < n:
        x, y = rng.uniform(lo, hi, size=2)
        if all((x - tx) ** 2 + (y - ty) ** 2 >= max(min_sep, ts) ** 2 for tx, ty, ts in taken):
            taken.append((x, y, min_sep))
            out.append((x, y))
    return out


def make_sources(seed=SEED):
    """The source list: a list of dicts (one per source) with pixel and profile parameters."""
    rng = np.random.RandomState(seed)
    taken = []
    anomalies = _place(rng, 12, taken, 45.0)
    galaxies = _place(rng, N_GALAXIES, taken, 10.0)
    sources = []
    kinds = ["odd_colour"] * 4 + ["ring"] * 4 + ["arc"] * 4
    for (x, y), kind in zip(anomalies, kinds):
        sources.append({"x": x, "y": y, "kind": kind})
    for x, y in galaxies:
        sources.append({"x": x, "y": y, "kind": "galaxy"})
    for k, s in enumerate(sources):
        x, y = s["x"], s["y"]
        g_r, r_i = _colours(x, y)
        g_r += rng.normal(0.0, 0.05)
        r_i += rng.normal(0.0, 0.05)
        s["mag_r"] = rng.uniform(17.5, 21.0) if s["kind"] != "galaxy" else rng.uniform(18.0, 22.5)
        s["n"] = 4.0 if rng.uniform() < 0.35 else 1.0
        s["re"] = rng.uniform(1.5, 4.0) * (0.7 if s["n"] == 4.0 else 1.0)
        s["q"] = rng.uniform(0.35, 1.0)
        s["pa"] = rng.uniform(0.0, np.pi)
        if s["kind"] == "odd_colour":
            # alternately very blue and very red
            g_r, r_i = (-1.2, -0.6) if k % 2 else (2.6, 1.4)
        s["g_r"], s["r_i"] = float(g_r), float(r_i)
        if s["kind"] in ("ring", "arc"):
            s["ring_radius"] = rng.uniform(9.0, 14.0)
            s["ring_width"] = rng.uniform(0.9, 1.4)
            s["ring_frac"] = rng.uniform(0.6, 1.0)  # ring flux / galaxy flux (r band)
            s["arc_start"] = rng.uniform(0.0, 2.0 * np.pi)
            s["arc_span"] = 2.0 * np.pi if s["kind"] == "ring" else rng.uniform(0.5 * np.pi, 0.9 * np.pi)
    return sources


def _band_mag(s, band):
    return {"g": s["mag_r"] + s["g_r"], "r": s["mag_r"], "i": s["mag_r"] - s["r_i"]}[band]


def _stamp(s, half):
    """Unit-flux Sersic profile of ``s`` on a (2 half + 1)^2 stamp centred on the nearest pixel."""
    cx, cy = int(round(s["x"])), int(round(s["y"]))
    yy, xx = np.mgrid[cy - half : cy + half + 1, cx - half : cx + half + 1].astype(float)
    dx, dy = xx - s["x"], yy - s["y"]
    c, sn = np.cos(s["pa"]), np.sin(s["pa"])
    xr, yr = dx * c + dy * sn, -dx * sn + dy * c
    r = np.sqrt(xr**2 + (yr / s["q"]) ** 2)
    bn = 2.0 * s["n"] - 1.0 / 3.0
    prof = np.exp(-bn * ((r / s["re"]) ** (1.0 / s["n"]) - 1.0))
    prof /= prof.sum()
    ring = None
    if "ring_radius" in s:
        rr = np.hypot(dx, dy)
        ring = np.exp(-0.5 * ((rr - s["ring_radius"]) / s["ring_width"]) ** 2)
        ang = np.mod(np.arctan2(dy, dx) - s["arc_start"], 2.0 * np.pi)
        if s["arc_span"] < 2.0 * np.pi:
            ring = ring * np.clip((s["arc_span"] - ang) / 0.3, 0.0, 1.0) * np.clip(ang / 0.3, 0.0, 1.0)
        ring /= ring.sum()
    return (cy - half, cx - half), prof, ring


# a blue ring/arc: flux ratios to the r band (g brighter, i fainter)
_RING_COLOUR = {"g": 1.8, "r": 1.0, "i": 0.6}


def render(sources, band, seed=SEED):
    """The full ``NPIX x NPIX`` float32 image of ``band`` (counts, zero sky level)."""
    rng = np.random.RandomState(seed + 1 + BANDS.index(band))
    image = rng.normal(0.0, NOISE, size=(NPIX, NPIX))
    half = 30
    for s in sources:
        (y0, x0), prof, ring = _stamp(s, half)
        flux = 10.0 ** (-0.4 * (_band_mag(s, band) - ZEROPOINT))
        image[y0 : y0 + 2 * half + 1, x0 : x0 + 2 * half + 1] += flux * prof
        if ring is not None:
            rflux = 10.0 ** (-0.4 * (s["mag_r"] - ZEROPOINT)) * s["ring_frac"] * _RING_COLOUR[band]
            image[y0 : y0 + 2 * half + 1, x0 : x0 + 2 * half + 1] += rflux * ring
    return image.astype(np.float32)


def _tile_header(band, iy, ix):
    from astropy.io import fits

    oy, ox = TILE_ORIGINS[iy], TILE_ORIGINS[ix]
    w = mosaic_wcs()
    hdr = fits.Header()
    hdr["CTYPE1"], hdr["CTYPE2"] = "RA---TAN", "DEC--TAN"
    hdr["CRVAL1"], hdr["CRVAL2"] = MOSAIC_CENTER
    hdr["CRPIX1"] = float(w.wcs.crpix[0] - ox)
    hdr["CRPIX2"] = float(w.wcs.crpix[1] - oy)
    hdr["CD1_1"], hdr["CD1_2"] = -PIXEL_SCALE_ARCSEC / 3600.0, 0.0
    hdr["CD2_1"], hdr["CD2_2"] = 0.0, PIXEL_SCALE_ARCSEC / 3600.0
    hdr["CUNIT1"], hdr["CUNIT2"] = "deg", "deg"
    hdr["RADESYS"] = "ICRS"
    hdr["EQUINOX"] = 2000.0
    hdr["BUNIT"] = "count"
    hdr["FILTER"] = band
    hdr["TELESCOP"] = "AMSIM"
    hdr["INSTRUME"] = "MOCKCAM"
    hdr["OBJECT"] = "ammosaic"
    hdr["EXPTIME"] = EXPTIME
    hdr["MAGZERO"] = (ZEROPOINT, "AB magnitude of 1 count")
    hdr["ZP"] = ZEROPOINT
    hdr["TILEY"], hdr["TILEX"] = iy, ix
    hdr["TILEORGY"], hdr["TILEORGX"] = (oy, "row of the mosaic of pixel 0"), (ox, "column of pixel 0")
    return hdr


def build_tiles(seed=SEED):
    """Return ``({file name: PrimaryHDU}, sources)`` of the 12 tiles and the source list."""
    from astropy.io import fits

    sources = make_sources(seed)
    out = {}
    for band in BANDS:
        image = render(sources, band, seed)
        for iy, oy in enumerate(TILE_ORIGINS):
            for ix, ox in enumerate(TILE_ORIGINS):
                data = np.ascontiguousarray(image[oy : oy + TILE, ox : ox + TILE])
                out[tile_name(band, iy, ix)] = fits.PrimaryHDU(data, header=_tile_header(band, iy, ix))
    return out, sources


def sources_table(sources):
    """The published source list as an astropy Table (the columns of ``ammosaic.sources``)."""
    from astropy.table import Table

    w = mosaic_wcs()
    x = np.array([s["x"] for s in sources])
    y = np.array([s["y"] for s in sources])
    ra, dec = w.all_pix2world(x, y, 0)
    order = np.argsort(x, kind="stable")
    t = Table()
    t["source_id"] = [f"M{i + 1:04d}" for i in range(len(sources))]
    t["ra"] = np.round(ra[order], 8)
    t["dec"] = np.round(dec[order], 8)
    t["mag_r"] = np.array([sources[k]["mag_r"] for k in order], dtype=np.float32)
    t["kind"] = [sources[k]["kind"] for k in order]
    t["is_anomaly"] = np.array([sources[k]["kind"] != "galaxy" for k in order], dtype=np.int16)
    t["ra"].unit = t["dec"].unit = "deg"
    t["mag_r"].unit = "mag"

    return t


def _write_if_changed(path, data):
    if not (os.path.exists(path) and open(path, "rb").read() == data):
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)


def make_mosaic(directory, seed=SEED):
    """Write the 12 tiles and ``sources.fits`` / ``sources.ecsv`` to ``directory``; return the sources.

    Files are rewritten only when their content changed (so the DaCHS setup's fingerprint is
    stable). Returns the source list as an astropy Table.
    """
    from astropy.io import fits

    os.makedirs(directory, exist_ok=True)
    tiles, sources = build_tiles(seed)
    for name, hdu in tiles.items():
        buf = io.BytesIO()
        hdu.writeto(buf)
        _write_if_changed(os.path.join(directory, name), buf.getvalue())
    table = sources_table(sources)
    buf = io.BytesIO()
    hdu = fits.BinTableHDU(table, name="SOURCES")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    _write_if_changed(os.path.join(directory, "sources.fits"), buf.getvalue())
    sbuf = io.StringIO()
    table.write(sbuf, format="ascii.ecsv")
    _write_if_changed(os.path.join(directory, "sources.ecsv"), sbuf.getvalue().encode())
    return table


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    t = make_mosaic(out)
    print(f"{out}: {len(BANDS) * 4} tiles, {len(t)} sources")
