"""``anomalymatch-astro demo``: the offline end-to-end demo on the embedded mock survey."""

import time

from ._outputs import non_negative_int, positive_int

HELP = "run the end-to-end demo on the embedded mock survey (offline)"


def add_arguments(parser):
    parser.add_argument("-o", "--output", default="anomalymatch_demo", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo run in the output folder")
    parser.add_argument("--n-objects", type=positive_int, default=1500, help="objects in the mock survey")
    parser.add_argument("--cycles", type=non_negative_int, default=3, help="simulated active-learning cycles")
    parser.add_argument("--mode", choices=["fast", "fixmatch", "both"], help="training mode of the session")
    parser.add_argument("--iterations", type=positive_int, help="FixMatch iterations per training (at least 1)")
    parser.add_argument("--image-size", type=positive_int, default=64, help="network input size in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-rotation-average",
        action="store_true",
        help="embed each cutout once instead of averaging its 8 rotations and flips (faster)",
    )
    parser.add_argument("--no-progress", action="store_true")


def run(args):
    from .._demo import run_demo
    from . import write_run_manifest

    start = time.perf_counter()
    print(
        f"anomalymatch-astro demo: mock survey of {args.n_objects} objects -> cutouts -> "
        f"active learning ({args.cycles} cycles) -> catalogue, into {args.output}/"
    )
    result = run_demo(
        args.output,
        n_objects=args.n_objects,
        cycles=args.cycles,
        mode=args.mode,
        iterations=args.iterations,
        image_size=args.image_size,
        seed=args.seed,
        rotation_average=not args.no_rotation_average,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(
        f"\n{result.n_objects} objects, {result.n_anomalies} injected anomalies "
        f"({100 * result.n_anomalies / max(result.n_objects, 1):.1f}%)"
    )
    if result.metrics is not None:
        print("\nranking of the objects not labelled at each point (cycle 0 = initial training):")
        m = result.metrics
        print(
            f"{'cycle':>5} {'mode':>9} {'labelled':>8} {'anomalies found':>15} {'AUROC':>7} {'AUPRC':>7} "
            f"{'top-1% prec':>11} {'in next 100':>11} {'train s':>8}"
        )
        for r in m:
            found = f"{r['n_anomalies_labelled']}/{result.n_anomalies}"
            print(
                f"{r['cycle']:>5} {r['mode']:>9} {r['n_labelled']:>8} {found:>15} {r['auroc']:7.3f} "
                f"{r['auprc']:7.3f} {r['precision_at_1pct']:11.3f} {r['found_in_first_100']:>11.0f} "
                f"{r['train_seconds']:8.1f}"
            )
        print(
            "(metrics on the objects not yet labelled: each cycle removes the anomalies it found, so the "
            "rest get harder)"
        )
    manifest = write_run_manifest(args, args.output, seeds=args.seed)
    print("\nfiles:")
    for name, path in result.files.items():
        if not name.startswith("image_"):
            print(f"  {name:<20} {path}")
    print(f"  {'manifest':<20} {manifest}")
    print(f"\nelapsed: {time.perf_counter() - start:.1f} s")
    return 0
