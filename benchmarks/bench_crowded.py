"""Crowded fields: how much of a faint object's cutout belongs to its neighbours, with and without
masking, and how many distinct systems a ranked list holds, with and without grouping.

A synthetic HST-like field (0.13"/px, noise 1) holds faint galaxies, bright stars with
diffraction spikes and mergers catalogued as 2-3 deblended fragments.  Proxies that need no
trained model:

* neighbour flux fraction: the share of the noiseless flux in a faint object's 64 px cutout
  that belongs to other sources; "driven by a neighbour" when above 50 %;
* a naive brightness score (sum of the cutout's pixels above 3 sigma): how many of its top 24
  faint objects are driven by a neighbour;
* distinct true systems among the top 50 rows of a ranked list, before and after
  `collapse_systems`, and the entries that wrongly merge two true systems.

Run: ``.venv/bin/python benchmarks/bench_crowded.py [--seeds 0 1 2]``
"""

import argparse
import time

import numpy as np
from astropy import units as u
from astropy.table import QTable
from astropy.wcs import WCS
from scipy import ndimage

from anomalymatch_astro import make_cutouts
from anomalymatch_astro.catalogs import collapse_systems
from anomalymatch_astro.cutouts import mask_neighbours

SIZE = 1024
CUT = 64
NOISE = 1.0


def _wcs():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [53.16, -27.78]
    wcs.wcs.crpix = [SIZE / 2 + 0.5, SIZE / 2 + 0.5]
    wcs.wcs.cdelt = [-0.13 / 3600, 0.13 / 3600]
    return wcs


def _render(x0, y0, sigma, flux, spikes, half=40):
    """A source's noiseless stamp on a local box: (ys, xs slices, stamp)."""
    xs, xe = max(0, int(x0) - half), min(SIZE, int(x0) + half + 1)
    ys, ye = max(0, int(y0) - half), min(SIZE, int(y0) + half + 1)
    yy, xx = np.mgrid[ys:ye, xs:xe]
    dx, dy = xx - x0, yy - y0
    stamp = flux / (2 * np.pi * sigma**2) * np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    if spikes:
        spike = flux * 2e-3 * np.exp(-np.hypot(dx, dy) / 12.0)
        stamp = stamp + np.where((np.abs(dx) <= 0.7) | (np.abs(dy) <= 0.7), spike, 0.0)
    return (slice(ys, ye), slice(xs, xe)), stamp


def make_field(seed, *, n_faint=300, n_stars=25, n_mergers=40):
    """Image, model, per-source stamps, catalogue (with truth) and segmentation maps."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_faint):
        rows.append(("faint", *rng.uniform(40, SIZE - 40, 2), rng.uniform(1.5, 3.0), rng.uniform(80, 400), False))
    for _ in range(n_stars):
        rows.append(("star", *rng.uniform(40, SIZE - 40, 2), 1.2, 10 ** rng.uniform(4, 5), True))
    for _ in range(n_mergers):
        x, y = rng.uniform(40, SIZE - 40, 2)
        for _k in range(rng.integers(2, 4)):
            r, t = rng.uniform(3, 8), rng.uniform(0, 2 * np.pi)
            rows.append(("fragment", x + r * np.cos(t), y + r * np.sin(t), rng.uniform(1.5, 3.0), 400.0, False))
            x, y = x + r * np.cos(t), y + r * np.sin(t)
    # faint galaxies placed next to the stars: the cases of issue 16
    stars = [r for r in rows if r[0] == "star"]
    for s in stars:
        r, t = rng.uniform(10, 25), rng.uniform(0, 2 * np.pi)
        rows.append(("faint", s[1] + r * np.cos(t), s[2] + r * np.sin(t), rng.uniform(1.5, 3.0), 150.0, False))
    kind = np.array([r[0] for r in rows])
    x, y = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    sigma = np.array([r[3] for r in rows])
    model = np.zeros((SIZE, SIZE))
    best = np.zeros((SIZE, SIZE))
    owner = np.zeros((SIZE, SIZE), dtype=np.int32)
    stamps = []
    for i, r in enumerate(rows):
        box, stamp = _render(r[1], r[2], r[3], r[4], r[5], half=120 if r[5] else 30)
        model[box] += stamp
        better = stamp > best[box]
        best[box] = np.where(better, stamp, best[box])
        owner[box] = np.where(better, i + 1, owner[box])
        stamps.append((box, stamp))
    image = model + rng.normal(0, NOISE, model.shape)
    detected = ndimage.gaussian_filter(model, 1.0) > 2 * NOISE
    parents, _ = ndimage.label(detected)
    deblended = np.where(detected, owner, 0).astype(np.int32)
    # true systems: a merger's fragments share one; every other source is its own
    system = np.arange(len(rows))
    starts = np.flatnonzero(kind == "fragment")
    sys_id = len(rows)
    for i in starts:
        if i == starts[0] or np.hypot(x[i] - x[i - 1], y[i] - y[i - 1]) > 9:
            sys_id += 1
        system[i] = sys_id
    wcs = _wcs()
    cat = QTable({"id": [f"s{i:04d}" for i in range(len(rows))], "kind": kind, "true_system": system})
    cat["coord"] = wcs.pixel_to_world(x, y)
    cat["semimajor_sigma"] = sigma * u.pix
    cat["semiminor_sigma"] = sigma * u.pix
    cat["orientation"] = np.zeros(len(rows)) * u.deg
    return image.astype(np.float32), wcs, cat, stamps, parents.astype(np.int32), deblended


def neighbour_fraction(cs, stamps, cat, masks=None):
    """Share of the noiseless flux in each cutout that belongs to other sources (after masks)."""
    index = {obj_id: i for i, obj_id in enumerate(cat["id"])}
    out = np.zeros(len(cs))
    h, w = cs.image_shape
    for row, obj_id in enumerate(cs.ids):
        x0, y0 = int(cs.table["x_origin"][row]), int(cs.table["y_origin"][row])
        keep = np.ones((h, w), bool) if masks is None else ~masks[row]
        own = other = 0.0
        for j, (box, stamp) in enumerate(stamps):
            ys, xs = box
            oy0, oy1 = max(ys.start, y0), min(ys.stop, y0 + h)
            ox0, ox1 = max(xs.start, x0), min(xs.stop, x0 + w)
            if oy0 >= oy1 or ox0 >= ox1:
                continue
            part = stamp[oy0 - ys.start : oy1 - ys.start, ox0 - xs.start : ox1 - xs.start]
            flux = float(np.sum(part * keep[oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0]))
            if j == index[obj_id]:
                own += flux
            else:
                other += flux
        out[row] = other / max(own + other, 1e-9)
    return out


def brightness_score(cs):
    data = cs.data[:, 0]
    return np.nansum(np.where(data > 3 * NOISE, data, 0.0), axis=(1, 2))


def run(seed):
    image, wcs, cat, stamps, parents, deblended = make_field(seed)
    faint = cat[cat["kind"] == "faint"]
    t0 = time.perf_counter()
    cs = make_cutouts({"r": (image, wcs)}, faint["id", "coord"], CUT, progress=False)
    result = {"n_faint": len(cs)}
    frac = neighbour_fraction(cs, stamps, cat)
    top = np.argsort(-brightness_score(cs), kind="stable")[:24]
    result["none"] = (float(np.mean(frac > 0.5)), int(np.sum(frac[top] > 0.5)), float(np.median(frac)))
    variants = {
        "shapes x3": {"catalog": cat, "factor": 3.0},
        "shapes x3 + dilate 3": {"catalog": cat, "factor": 3.0, "dilate": 3},
        "segmentation": {"segmentation": deblended},
        "segmentation + dilate 3": {"segmentation": deblended, "dilate": 3},
        "segmentation, blends kept": {"segmentation": deblended, "keep_blended": True},
        "segm. + dilate 3, blends kept": {"segmentation": deblended, "dilate": 3, "keep_blended": True},
    }
    for name, kwargs in variants.items():
        start = time.perf_counter()
        masked, masks = mask_neighbours(cs, progress=False, return_masks=True, **kwargs)
        elapsed = time.perf_counter() - start
        frac_after = neighbour_fraction(cs, stamps, cat, masks)
        top = np.argsort(-brightness_score(masked), kind="stable")[:24]
        result[name] = (
            float(np.mean(frac_after > 0.5)),
            int(np.sum(frac_after[top] > 0.5)),
            float(np.median(frac_after)),
            elapsed,
        )
    # grouping: a ranked list of every source (by brightness of its own cutout), top 50
    allcs = make_cutouts({"r": (image, wcs)}, cat, CUT, progress=False)
    ranked = allcs.to_table()
    ranked["score"] = brightness_score(allcs)
    ranked = ranked[np.argsort(-np.asarray(ranked["score"]), kind="stable")]
    truth = {obj_id: s for obj_id, s in zip(cat["id"], cat["true_system"])}
    top50 = [truth[i] for i in ranked["id"][:50]]
    result["groups none"] = (len(set(top50)), 0)
    for name, kwargs in {
        "radius 16 px (CUT/4)": {"radius": 16 * 0.13 * u.arcsec},
        "default radius (CUT/8 = 8 px)": {},
        "segmentation parents": {"segmentation": parents, "wcs": wcs},
    }.items():
        collapsed = collapse_systems(ranked, **kwargs)[:50]
        distinct = len({truth[i] for i in collapsed["id"]})
        wrong = 0
        for primary, members in zip(collapsed["id"], collapsed["members"]):
            ids = [primary] + [m for m in str(members).split(",") if m]
            wrong += len({truth[i] for i in ids}) > 1
        result[f"groups {name}"] = (distinct, wrong)
    result["time"] = time.perf_counter() - t0
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    results = [run(seed) for seed in args.seeds]
    print(f"faint objects per field: {[r['n_faint'] for r in results]}; seeds {args.seeds}")
    print("masking                       driven (>50% neighbour flux)  in top 24 (brightness)  median frac  s")
    for key in [k for k in results[0] if k not in ("n_faint", "time") and not k.startswith("groups ")]:
        vals = np.array([r[key][:3] for r in results])
        secs = np.mean([r[key][3] for r in results]) if key != "none" else 0.0
        print(f"{key:30s}{vals[:, 0].mean():>10.1%}{vals[:, 1].mean():>26.1f}{vals[:, 2].mean():>18.3f}{secs:>7.2f}")
    print("grouping (top 50 entries)       distinct true systems   entries merging 2+ true systems")
    for key in [k for k in results[0] if k.startswith("groups ")]:
        vals = np.array([r[key] for r in results])
        print(f"{key[7:]:32s}{vals[:, 0].mean():>12.1f}{vals[:, 1].mean():>26.1f}")


if __name__ == "__main__":
    main()
