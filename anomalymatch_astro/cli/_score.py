"""``anomalymatch-astro score``: score cutouts with a trained classifier and write an ECSV table."""

from ._outputs import non_negative_int, positive_int

HELP = "score cutouts with a trained classifier"


def add_arguments(parser):
    """Add the arguments of ``score`` to an argparse parser."""
    parser.add_argument("--model", required=True, help="model directory (from `train`)")
    parser.add_argument("--cutouts", required=True, help="CutoutSet HDF5 file")
    parser.add_argument("-o", "--output", required=True, help="output table (ECSV): id, ra, dec, score")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="cutouts per forward pass (default 256)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--workers", type=non_negative_int, default=0, help="loader processes (read + normalise off the main one)"
    )
    parser.add_argument(
        "--store", default=None, help="resumable score store directory (default: OUTPUT.store); a re-run continues"
    )
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address (e.g. tcp://host:8786)")
    parser.add_argument("--overwrite", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    """Score and write the table; returns the exit code."""
    import os

    import numpy as np
    from astropy import units as u
    from astropy.table import QTable

    from ..classifier import AnomalyClassifier
    from ..cutouts import CutoutSet
    from . import write_run_manifest
    from ._outputs import check_output, output_file

    check_output(args.output, overwrite=args.overwrite)  # before scoring, not after
    clf = AnomalyClassifier.load(args.model, device=args.device)
    cutouts = CutoutSet.from_hdf5(args.cutouts)
    from ..scoring import score_cutouts

    client = None
    if args.scheduler:
        from ..utils import require

        client = require("distributed", feature="--scheduler").Client(args.scheduler)
    try:
        store = args.store or f"{args.output}.store"
        scores = score_cutouts(
            clf,
            cutouts,
            output=store,
            batch_size=args.batch_size,
            num_workers=args.workers,
            client=client,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    finally:
        if client is not None:
            client.close()
    table = QTable()
    table["id"] = cutouts.ids
    nan = np.full(len(cutouts), np.nan) * u.deg
    table["ra"] = cutouts.table["ra"] if "ra" in cutouts.table.colnames else nan
    table["dec"] = cutouts.table["dec"] if "dec" in cutouts.table.colnames else nan
    table["score"] = scores
    table["score"].description = "P(anomaly) from the classifier's EMA model"
    table.meta.update(
        {
            "model_hash": clf.model_hash,
            "backbone": clf.backbone,
            "bands": list(clf.bands),
            "normalizer": clf.normalizer.to_dict(),
            "config": clf.config.to_dict(),
            "labels_hash": clf.labels_hash,
            "model": os.fspath(args.model),
            "cutouts": os.fspath(args.cutouts),
        }
    )
    with output_file(args.output, overwrite=args.overwrite) as tmp:
        table.write(tmp, format="ascii.ecsv")
    write_run_manifest(args, args.output, inputs=[args.model, args.cutouts], extra={"model_hash": clf.model_hash})
    if args.store is None:  # the table is written: the temporary store is no longer needed
        import shutil

        shutil.rmtree(store, ignore_errors=True)
    order = np.argsort(-scores)[:5]
    print(f"scored {len(cutouts)} cutouts with model {clf.model_hash[:16]}; wrote {args.output}")
    print("top: " + ", ".join(f"{cutouts.ids[i]} ({scores[i]:.3f})" for i in order))
    return 0
