"""Real sky: the protocol on the Hubble XDF with injected anomalies, default against the options.

For each seed the set is `make_real_sky_set` (scikit-image's XDF, about 1000 photutils
sources, 40 injected anomalies = 4 %, half of the set held out as the test split), the
start labels are 5 anomalies and 100 normals, and 3 oracle cycles follow (10 top-scored
anomalies and 10 top-scored false positives labelled per cycle).  Per cycle: AUROC, AUPRC,
top-1 % precision on the held-out half, distinct systems (segmentation parents) among its
top 50 and artefacts (a star's halo/spikes, deblended fragments) among its top 24.

Variants: ``default``; ``mask`` (neighbour masking with the deblended segmentation);
``background`` (``Normalizer(background="annulus")``); ``group`` (top lists one per system);
``crop`` (32-pixel cutouts: the central object at twice the scale, fewer neighbours).

Run: ``.venv/bin/python benchmarks/bench_real_sky.py [--sets xdf_arcs] [--seeds 0 1 2]
[--variants default mask background group] [--methods multilevel] [--image-size 64]``
(about 1-3 minutes per seed and variant on 2 CPU cores: the embeddings dominate).
"""

import argparse
import logging

import numpy as np

from anomalymatch_astro.benchmarking import VARIANTS, run_protocol

COLUMNS = ("auroc", "auprc", "precision_at_1pct", "distinct_top50", "artefacts_top24")


def print_table(table):
    """Per set, method, variant and cycle: every seed and the mean."""
    for name in dict.fromkeys(table["set"]):
        for method in dict.fromkeys(table["method"]):
            for variant in dict.fromkeys(table["variant"]):
                sel = (table["set"] == name) & (table["method"] == method) & (table["variant"] == variant)
                if not sel.any():
                    continue
                sub = table[sel]
                print(f"\n{name} {method} {variant}  (cycle: AUROC AUPRC top-1% systems/50 artefacts/24)")
                for cycle in sorted(set(sub["cycle"])):
                    rows = sub[sub["cycle"] == cycle]
                    cells = []
                    for r in rows:
                        cells.append(
                            f"s{r['seed']}: {r['auroc']:.3f} {r['auprc']:.3f} {r['precision_at_1pct']:.2f} "
                            f"{r['distinct_top50']:.0f} {r['artefacts_top24']:.0f}"
                        )
                    mean = [np.nanmean(np.asarray(rows[c], dtype=float)) for c in COLUMNS]
                    print(
                        f"  {cycle}: " + " | ".join(cells) + f" || mean {mean[0]:.3f} {mean[1]:.3f} {mean[2]:.2f} "
                        f"{mean[3]:.1f} {mean[4]:.1f}"
                    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["xdf_arcs"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--methods", nargs="+", default=["multilevel"])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--iterations", type=int, default=None, help="FixMatch steps (methods fixmatch, both)")
    parser.add_argument("--output", default=None, help="folder for protocol.ecsv")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    table = run_protocol(
        sets=args.sets,
        seeds=args.seeds,
        cycles=args.cycles,
        methods=args.methods,
        variants=args.variants,
        image_size=args.image_size,
        iterations=args.iterations,
        output=args.output,
        progress=False,
    )
    print_table(table)


if __name__ == "__main__":
    main()
