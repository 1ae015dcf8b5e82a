"""``anomalymatch-astro benchmark``: the paper's protocol on the offline sets, and the throughput suite.

The runs are `anomalymatch_astro.benchmarking`'s; this command prints the tables they return.
"""

import time

from ._outputs import non_negative_int, positive_int

HELP = "run the benchmark protocol on the offline data sets (or --suite throughput)"


def add_arguments(parser):
    parser.add_argument("--suite", choices=["protocol", "strategies", "throughput", "all"], default="protocol")
    parser.add_argument("-o", "--output", default="benchmark_results", help="folder for the ECSV/JSON results")
    parser.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in the output")
    parser.add_argument(
        "--sets",
        nargs="+",
        default=None,
        help="protocol sets: digits morphology mock_survey lens, and the real-sky sets xdf_arcs xdf_mergers "
        "xdf_trails xdf_colour (default: all offline sets)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["default"],
        help="protocol: options around each method: default mask (neighbour masking) background "
        "(local sky subtraction) group (top lists one per system) crop (32-pixel cutouts; real-sky sets) "
        "zoom (embeddings of the central half beside the full cutout) profile (zoom + radial residual profile) "
        "mask_zoom mask_profile (the same on masked cutouts) mask_blend (mask_profile, deblended pieces kept)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cycles", type=non_negative_int, default=3)
    parser.add_argument(
        "--methods", nargs="+", default=None, help="methods side by side (default: probe knn fixmatch both default)"
    )
    parser.add_argument(
        "--classes",
        nargs="+",
        default=None,
        help="run only these anomaly classes (e.g. 3 8 spiral); default: all of each set",
    )
    parser.add_argument(
        "--held-out",
        type=float,
        default=0.0,
        help="protocol: fraction of each set never labelled, on which the metrics are measured "
        "(the paper's test split; default 0: measured on all objects not labelled yet)",
    )
    parser.add_argument(
        "--iterations", type=positive_int, default=None, help="FixMatch iterations per training (at least 1)"
    )
    parser.add_argument("--quick", action="store_true", help="small sets and one seed (a smoke run)")
    parser.add_argument(
        "--local-data", default=None, help="folder with GalaxyMNIST / miniImageNet copies (see the docs)"
    )
    parser.add_argument("--n", type=positive_int, default=2048, help="throughput: cutouts in the small set")
    parser.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="throughput: cutout and network size (default 64); protocol: network input size "
        "(default: the cutout size, at most 64)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=256, help="throughput: batch size")
    parser.add_argument("--workers", type=non_negative_int, default=1, help="throughput: loader workers")
    parser.add_argument(
        "--skip-memory",
        action="store_true",
        help="throughput: skip the flat-memory check (it writes and scores 10x --n cutouts)",
    )
    parser.add_argument("--skip-dask", action="store_true", help="throughput: skip the Dask scaling part")
    parser.add_argument("--no-progress", action="store_true")


def format_protocol_table(table):
    """The protocol summary (mean +- std over seeds and classes) as a text table.

    Parameters
    ----------
    table : `~astropy.table.Table`
        From `~anomalymatch_astro.benchmarking.run_protocol` (its ``meta["summary"]`` is used
        when present).

    Returns
    -------
    str
    """
    from ..benchmarking import summarize_protocol

    summary = table.meta.get("summary") or summarize_protocol(table)
    extra = "distinct_top50_mean" in summary.colnames  # the real-sky sets' columns
    variants = "variant" in summary.colnames and len(set(summary["variant"])) > 1
    lines = [
        f"\n{'set':<12} {'method':<10} " + (f"{'variant':<10} " if variants else "") + f"{'cycle':>5} {'runs':>4} "
        f"{'frac':>6} {'AUROC':>13} {'AUPRC':>13} {'top-1% prec':>13} {'found/100':>10} "
        + (f"{'systems/50':>10} {'artef/24':>8} " if extra else "")
        + f"{'train s':>8}"
    ]
    for r in summary:
        line = f"{r['set']:<12} {r['method']:<10} " + (f"{r['variant']:<10} " if variants else "")
        line += (
            f"{r['cycle']:>5} {r['n_runs']:>4} {r['anomaly_fraction']:6.3f} "
            f"{r['auroc_mean']:6.3f}±{r['auroc_std']:.3f} {r['auprc_mean']:6.3f}±{r['auprc_std']:.3f} "
            f"{r['precision_at_1pct_mean']:6.3f}±{r['precision_at_1pct_std']:.3f} "
            f"{r['found_in_first_100_mean']:10.1f} "
        )
        if extra:
            line += f"{r['distinct_top50_mean']:10.1f} {r['artefacts_top24_mean']:8.1f} "
        lines.append(line + f"{r['train_seconds_mean']:8.1f}")
    return "\n".join(lines)


def format_strategies_table(table):
    """Anomalies found after the last cycle per set and strategy (mean over seeds) as text.

    Parameters
    ----------
    table : `~astropy.table.Table`
        From `~anomalymatch_astro.benchmarking.compare_strategies`.

    Returns
    -------
    str
    """
    import numpy as np

    if not len(table):
        return "no strategy cycles were run"
    last = table[table["cycle"] == max(table["cycle"])]
    lines = [f"\nanomalies found after {max(table['cycle'])} cycles of 20 candidates (mean over seeds)"]
    for name in sorted(set(last["set"])):
        for strategy in dict.fromkeys(last["strategy"]):
            sel = (last["set"] == name) & (last["strategy"] == strategy)
            if not sel.any():
                continue
            lines.append(
                f"  {name:<12} {strategy:<12} {np.mean(last['anomalies_found'][sel]):6.1f} "
                f"of {int(last['anomalies_available'][sel][0])} ({int(last['n_shown'][sel][0])} shown)"
            )
    return "\n".join(lines)


def _throughput(args):
    import os

    from ..benchmarking import run_throughput_benchmark
    from ..utils import write_json_atomic

    result = run_throughput_benchmark(
        n=args.n,
        image_size=args.image_size or 64,
        batch_size=args.batch_size,
        num_workers=args.workers,
        rss=not args.skip_memory,
        dask=not args.skip_dask,
        progress=not args.no_progress,
    )
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "throughput.json")
    write_json_atomic(path, result, indent=2, sort_keys=False)
    print(
        f"\nthroughput ({result['device']}, {result['image_size']} px, batch {result['batch_size']}, "
        f"{result['n']} cutouts, {result['cpu_count']} CPUs)"
    )
    for key in (
        "full_path_images_per_s",
        "bare_forward_images_per_s",
        "full_path_vs_forward",
        "peak_rss_mb_small",
        "peak_rss_mb_10x",
        "rss_ratio_10x",
        "dask_1_worker_images_per_s",
        "dask_2_workers_images_per_s",
        "dask_2_workers_vs_1",
        "normalizer_numpy_per_core_per_s",
        "normalizer_torch_per_core_per_s",
        "normalizer_torch_vs_numpy",
        "storage_write_float32_lzf_per_s",
        "storage_write_fast_per_s",
        "storage_write_fast_vs_float32_lzf",
        "storage_read_float32_lzf_per_s",
        "storage_read_fast_per_s",
        "storage_read_fast_vs_float32_lzf",
    ):
        if key in result:
            print(f"  {key:<36} {result[key]:10.2f}")
    print(f"wrote {path}")


def run(args):
    from . import write_run_manifest
    from ._outputs import check_output

    # results of an earlier run are not replaced without --overwrite (a stopped run keeps the seeds it finished)
    check_output(args.output, overwrite=args.overwrite)
    start = time.perf_counter()
    if args.suite in ("throughput", "all"):
        _throughput(args)
    if args.suite in ("protocol", "all"):
        from ..benchmarking import run_protocol

        table = run_protocol(
            sets=args.sets,
            seeds=args.seeds,
            cycles=args.cycles,
            methods=args.methods,
            iterations=args.iterations,
            anomaly_classes=args.classes,
            held_out=args.held_out,
            image_size=args.image_size,
            quick=args.quick,
            local_data=args.local_data,
            variants=args.variants,
            output=args.output,
            progress=not args.no_progress,
        )
        print(format_protocol_table(table))
        print(f"wrote {args.output}/protocol.ecsv and protocol_summary.ecsv")
    write_run_manifest(args, args.output, inputs=[args.local_data], seeds=args.seeds)
    if args.suite in ("strategies", "all"):
        from ..benchmarking import compare_strategies

        table = compare_strategies(
            sets=args.sets or ("digits", "mock_survey"),
            seeds=args.seeds,
            cycles=args.cycles,
            quick=args.quick,
            output=args.output,
        )
        print(format_strategies_table(table))
    print(f"elapsed: {time.perf_counter() - start:.1f} s")
    return 0
