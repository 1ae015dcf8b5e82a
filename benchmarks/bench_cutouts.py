"""Cutout extraction throughput: make_cutouts vs a plain astropy Cutout2D loop vs astrocut.

Writes a large synthetic 3-band mosaic (default 10000 x 10000 float32 per band), then cuts
64-pixel cutouts at the same random positions with each method, side by side in one
process, and prints cutouts/s and ratios.  Two set-ups:

* reprojection off: the three bands share one pixel grid;
* reprojection on: band 2 rotated by 25 deg and band 3 at 1.5x the pixel scale, so
  make_cutouts resamples them onto band 1's grid (Cutout2D and astrocut only cut each band
  on its own grid: they do less work, which is what the ratio shows).

Usage: python benchmarks/bench_cutouts.py [--size 10000] [--n 2000] [--workdir /tmp/bench]
"""

import argparse
import os
import time

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS

from anomalymatch_astro import make_cutouts


def _wcs(n, scale_arcsec, rotation_deg):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.2]
    w.wcs.crpix = [n / 2 + 0.5, n / 2 + 0.5]
    t = np.deg2rad(rotation_deg)
    s = scale_arcsec / 3600
    w.wcs.cd = s * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    return w


def _write(path, n, wcs, seed):
    """Write an n x n float32 FITS image without holding it in memory (astropy's large-file recipe)."""
    if os.path.exists(path):
        return
    header = fits.PrimaryHDU(data=np.zeros((10, 10), dtype=np.float32)).header
    header.update(wcs.to_header())
    header["NAXIS1"] = n
    header["NAXIS2"] = n
    header.tofile(path, overwrite=True)
    nbytes = len(header.tostring()) + n * n * 4
    with open(path, "rb+") as f:
        f.seek(int(np.ceil(nbytes / 2880) * 2880) - 1)
        f.write(b"\0")
    with fits.open(path, mode="update", memmap=True) as hdul:
        rng = np.random.default_rng(seed)
        for start in range(0, n, 1000):
            hdul[0].data[start : start + 1000] = rng.normal(100, 5, size=(min(1000, n - start), n))


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--cutout", type=int, default=64)
    parser.add_argument("--workdir", default="/tmp/amast_bench_cutouts")
    parser.add_argument("--no-astrocut", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    n = args.size
    grids = {
        "aligned": [_wcs(n, 0.2, 0), _wcs(n, 0.2, 0), _wcs(n, 0.2, 0)],
        "reprojected": [_wcs(n, 0.2, 0), _wcs(n, 0.2, 25), _wcs(int(n / 1.5), 0.3, 0)],
    }
    rng = np.random.default_rng(0)
    ref = grids["aligned"][0]
    pix = rng.uniform(0.25 * n, 0.75 * n, size=(args.n, 2))  # covered by every band
    coords = ref.pixel_to_world(pix[:, 0], pix[:, 1])
    rows = []
    for setup, wcss in grids.items():
        paths = []
        for b, w in enumerate(wcss):
            size = int(w.wcs.crpix[0] * 2 - 1)
            path = os.path.join(args.workdir, f"{setup}_{b}.fits")
            _write(path, size, w, b)
            paths.append(path)
        images = {f"b{b}": p for b, p in enumerate(paths)}
        t_ours, cs = _time(lambda images=images: make_cutouts(images, coords, args.cutout, progress=False))

        def cutout2d_loop(paths=paths):
            out = []
            hduls = [fits.open(p, memmap=True) for p in paths]
            wcs_list = [WCS(h[0].header) for h in hduls]
            for c in coords:
                out.append(
                    [
                        Cutout2D(h[0].data, c, args.cutout, wcs=w, mode="partial").data.copy()
                        for h, w in zip(hduls, wcs_list)
                    ]
                )
            for h in hduls:
                h.close()
            return out

        t_c2d, _ = _time(cutout2d_loop)
        t_ac = np.nan
        if not args.no_astrocut:
            try:
                import astrocut

                m = min(args.n, 200)  # astrocut is slow per position: time a subset and scale

                def astrocut_loop(paths=paths, m=m):
                    for c in coords[:m]:
                        _ = astrocut.FITSCutout(paths, SkyCoord(c), args.cutout, single_outfile=False).fits_cutouts

                t_ac, _ = _time(astrocut_loop)
                t_ac *= args.n / m
            except Exception as exc:  # astrocut missing or incompatible: report, don't fail
                print(f"astrocut skipped: {exc}")
        rows.append((setup, args.n / t_ours, args.n / t_c2d, args.n / t_ac))
    print(f"\nmosaic {n}x{n} x 3 bands, {args.n} cutouts of {args.cutout} px, {os.cpu_count()} CPUs")
    print(f"{'setup':<12} {'ours/s':>9} {'Cutout2D/s':>11} {'astrocut/s':>11} {'ours/C2D':>9} {'ours/best':>10}")
    for setup, ours, c2d, ac in rows:
        best = np.nanmax([c2d, ac])
        print(f"{setup:<12} {ours:9.0f} {c2d:11.0f} {ac:11.0f} {ours / c2d:9.2f} {ours / best:10.2f}")


if __name__ == "__main__":
    main()
