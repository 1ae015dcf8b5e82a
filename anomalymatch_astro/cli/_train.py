"""``anomalymatch-astro train``: train the FixMatch anomaly classifier on cutouts and labels."""

from ._outputs import positive_int

HELP = "train the FixMatch anomaly classifier on cutouts and labels"


def add_arguments(parser):
    """Add the arguments of ``train`` to an argparse parser."""
    parser.add_argument("--cutouts", required=True, help="CutoutSet HDF5 file")
    parser.add_argument("--labels", required=True, help="CSV/ECSV file: id,label")
    parser.add_argument("-o", "--output", required=True, help="output model directory")
    parser.add_argument("--overwrite", action="store_true", help="replace a model already saved in the output")
    parser.add_argument(
        "--iterations", type=positive_int, default=None, help="FixMatch steps, at least 1 (default 100)"
    )
    parser.add_argument("--image-size", type=positive_int, default=64, help="network input size (default 64)")
    parser.add_argument("--backbone", default="tf_efficientnet_lite0", help="timm model name")
    parser.add_argument("--no-pretrained", action="store_true", help="no ImageNet weights")
    parser.add_argument("--weights", default=None, help="local pretrained weights file (timm naming)")
    parser.add_argument(
        "--allow-download", action="store_true", help="allow fetching pretrained weights from the Hugging Face hub"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    """Train and save; returns the exit code."""
    from ..classifier import AnomalyClassifier
    from ..cutouts import CutoutSet
    from . import write_run_manifest
    from ._outputs import check_output

    check_output(args.output, overwrite=args.overwrite)  # before training, not after
    cutouts = CutoutSet.from_hdf5(args.cutouts)
    clf = AnomalyClassifier(
        backbone=args.backbone,
        pretrained=not args.no_pretrained,
        image_size=args.image_size,
        seed=args.seed,
        device=args.device,
        weights_path=args.weights,
        allow_download=args.allow_download,
    )
    clf.fit(cutouts, args.labels, iterations=args.iterations, progress=not args.no_progress)
    clf.save(args.output, overwrite=args.overwrite)  # a new model is built beside and renamed into place
    write_run_manifest(
        args,
        args.output,
        inputs=[args.cutouts, args.labels, args.weights],
        seeds=args.seed,
        extra={"model_hash": clf.model_hash, "labels_hash": clf.labels_hash},
    )
    last = clf.history[-1] if clf.history else {}
    print(
        f"trained {clf.backbone} on {len(cutouts)} cutouts, bands {list(clf.bands)}: "
        f"{len(clf.history)} steps, last loss {last.get('loss', float('nan')):.4f}, "
        f"mask rate {last.get('mask_rate', float('nan')):.2f}"
    )
    print(f"saved model {clf.model_hash[:16]} to {args.output}")
    return 0
