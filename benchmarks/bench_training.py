"""Throughput of the FixMatch step and of scoring, against the bare network, in one process.

Usage::

    python benchmarks/bench_training.py [--image-size 64] [--batch-size 16] [--mu 5] [--steps 5]
                                        [--n-score 1024] [--bands 3] [--threads N] [--device cpu|cuda]

Prints a table of images/s and the ratios (pipeline / bare).  The FixMatch step
processes ``B + 2 * mu * B`` images (labelled, weak and strong unlabelled views):
sampling, augmentation, forward, loss, backward, optimiser step and the EMA update.
"The bare forward+backward" runs the same number of ready-made images through the
same network with a plain cross-entropy.  Scoring runs the full path (HDF5 shards
read lazily, normalisation, resizing, the EMA model) against the bare forward pass
of the same batch size.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch


def _timeit(fn, repeat):
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


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
        torch.set_num_threads(args.threads)

    from anomalymatch_astro import CutoutSet
    from anomalymatch_astro.classifier import AnomalyClassifier

    rng = np.random.default_rng(0)
    n = max(args.n_score, 200)
    data = rng.lognormal(size=(n, args.bands, args.cutout_size, args.cutout_size)).astype(np.float32)
    cs = CutoutSet.from_arrays(data)
    labels = {cs.ids[i]: ("anomaly" if i < 5 else "normal") for i in range(40)}
    clf = AnomalyClassifier(
        image_size=args.image_size, batch_size=args.batch_size, mu=args.mu, device=args.device, max_unlabeled=1000
    )
    dev = clf.device
    clf.fit(cs[:200], labels, iterations=1, progress=False)  # builds, adapts BN, warm-starts the head

    per_step = args.batch_size * (1 + 2 * args.mu)
    t0 = time.perf_counter()
    clf.fit(cs[:200], labels, iterations=args.steps, progress=False)
    t_fit = time.perf_counter() - t0
    # the fit includes set-up (normalising the 160 unlabelled, the probe); time it alone and subtract
    t0 = time.perf_counter()
    clf.fit(cs[:200], labels, iterations=0, progress=False)
    t_setup = time.perf_counter() - t0
    step_rate = per_step * args.steps / max(t_fit - t_setup, 1e-9)

    model = clf.model
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    x = torch.randn(per_step, args.bands, args.image_size, args.image_size, device=dev)
    y = torch.randint(0, 2, (per_step,), device=dev)

    def bare_train():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    bare_train_rate = per_step / _timeit(bare_train, args.steps)
    model.eval()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.h5")
        cs[: args.n_score].to_hdf5(path)
        lazy = CutoutSet.from_hdf5(path)
        t_score = _timeit(lambda: clf.score(lazy, batch_size=args.score_batch), 1)
    score_rate = args.n_score / t_score
    xb = torch.randn(args.score_batch, args.bands, args.image_size, args.image_size, device=dev)

    def bare_forward():
        with torch.inference_mode():
            clf.ema_model(xb).softmax(-1)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    reps = max(1, args.n_score // args.score_batch)
    bare_score_rate = args.score_batch / _timeit(bare_forward, reps)

    print(
        f"device {dev}, torch threads {torch.get_num_threads()}, {clf.backbone}, {args.bands} bands, "
        f"cutouts {args.cutout_size} px -> {args.image_size} px"
    )
    print(f"{'what':<44}{'images/s':>10}{'ratio':>8}")
    label = f"FixMatch step (B={args.batch_size}, mu={args.mu}: {per_step} images/step)"
    print(f"{label:<44}{step_rate:>10.1f}{step_rate / bare_train_rate:>8.2f}")
    print(f"{'bare forward+backward, same images':<44}{bare_train_rate:>10.1f}{1.0:>8.2f}")
    print(
        f"{'score(): lazy HDF5 -> normalise -> EMA model':<44}{score_rate:>10.1f}{score_rate / bare_score_rate:>8.2f}"
    )
    label = f"bare forward, batch {args.score_batch}"
    print(f"{label:<44}{bare_score_rate:>10.1f}{1.0:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
