"""Fast heads on cached embeddings: fit + rescore time for 100k objects (issue: retrain in seconds).

Prints, for each head, the wall time of fit(labels) and of score() on N x D float32
embeddings (default 100,000 x 1280, EfficientNet-Lite0's size) with a few hundred labels,
and their sum against the 2 s goal.

Usage: python benchmarks/bench_heads.py [--n 100000] [--dim 1280] [--labels 300]
"""

import argparse
import time

import numpy as np

from anomalymatch_astro.embeddings import make_head


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--labels", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    x[: args.n // 50, :8] += 2.0  # 2 % "anomalies"
    y = np.full(args.n, -1)
    lab = rng.choice(args.n, args.labels, replace=False)
    y[lab] = (lab < args.n // 50).astype(int)
    y[:5] = 1
    print(f"{args.n} x {args.dim} embeddings, {int((y >= 0).sum())} labels; best of {args.repeat}")
    print(f"{'head':<10} {'fit s':>7} {'score s':>8} {'total s':>8} {'goal 2 s':>9}")
    for name in ("logistic", "knn", "ensemble", "spreading"):
        head = make_head(name)
        fits, scores = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            head.fit(x, y)
            t1 = time.perf_counter()
            head.score(x)
            t2 = time.perf_counter()
            fits.append(t1 - t0)
            scores.append(t2 - t1)
        f, s = min(fits), min(scores)
        print(f"{name:<10} {f:7.2f} {s:8.2f} {f + s:8.2f} {'yes' if f + s < 2 else 'no':>9}")


if __name__ == "__main__":
    main()
