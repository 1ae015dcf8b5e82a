"""Throughput of the FixMatch step and of scoring, against the bare network, in one process.

Usage::

    python benchmarks/bench_training.py [--image-size 64] [--batch-size 16] [--mu 5] [--steps 5]
                                        [--n-score 1024] [--bands 3] [--threads N] [--device cpu|cuda]

Prints a table of images/s and the ratios (pipeline / bare).  The measurement is
`anomalymatch_astro.benchmarking.run_training_benchmark` (see its docstring for what is timed).
"""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--cutout-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--mu", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--n-score", type=int, default=1024)
    parser.add_argument("--score-batch", type=int, default=256)
    parser.add_argument("--bands", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from anomalymatch_astro.benchmarking import run_training_benchmark

    r = run_training_benchmark(
        image_size=args.image_size,
        cutout_size=args.cutout_size,
        batch_size=args.batch_size,
        mu=args.mu,
        steps=args.steps,
        n_score=args.n_score,
        score_batch=args.score_batch,
        bands=args.bands,
        device=args.device,
    )
    print(
        f"device {r['device']}, torch threads {r['torch_threads']}, {r['backbone']}, {r['bands']} bands, "
        f"cutouts {r['cutout_size']} px -> {r['image_size']} px"
    )
    print(f"{'what':<44}{'images/s':>10}{'ratio':>8}")
    label = f"FixMatch step (B={r['batch_size']}, mu={r['mu']}: {r['images_per_step']} images/step)"
    print(f"{label:<44}{r['step_images_per_s']:>10.1f}{r['step_vs_bare']:>8.2f}")
    print(f"{'bare forward+backward, same images':<44}{r['bare_train_images_per_s']:>10.1f}{1.0:>8.2f}")
    label = "score(): lazy HDF5 -> normalise -> EMA model"
    print(f"{label:<44}{r['score_images_per_s']:>10.1f}{r['score_vs_bare']:>8.2f}")
    label = f"bare forward, batch {r['score_batch']}"
    print(f"{label:<44}{r['bare_forward_images_per_s']:>10.1f}{1.0:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
