"""``anomalymatch-astro export``: a scored catalogue as an Astronomaly bundle, a table or regions."""

import os

from ._outputs import positive_int

HELP = "export a scored catalogue (Astronomaly bundle, FITS, VOTable, ECSV, Parquet, HDF5, DS9, CRTF)"

FORMATS = ("astronomaly", "fits", "votable", "ecsv", "parquet", "hdf5", "ds9", "crtf")


def add_arguments(parser):
    """Add the ``export`` arguments to an argparse parser."""
    parser.add_argument(
        "--scores",
        required=True,
        help="the scored catalogue (ECSV/FITS/VOTable/Parquet/HDF5) with columns id and score "
        "(and label, ra/dec or coord)",
    )
    parser.add_argument("--format", required=True, choices=FORMATS, help="output format")
    parser.add_argument(
        "-o", "--output", required=True, help="output file, or the bundle folder for --format astronomaly"
    )
    parser.add_argument("--cutouts", help="CutoutSet HDF5 file (needed for --format astronomaly)")
    parser.add_argument(
        "--top",
        type=positive_int,
        default=None,
        help="export only the N highest-ranked objects (tables and regions are written best first)",
    )
    parser.add_argument(
        "--features",
        help="astronomaly: features as .npy (N, D) in the order of the cutouts file, or .h5 "
        "with datasets 'features' and optionally 'ids'; default: the pretrained embedding",
    )
    parser.add_argument("--image-format", default="png", help="astronomaly: image file format (default png)")
    parser.add_argument("--radius", default="3arcsec", help="ds9/crtf: circle radius (default 3arcsec)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--no-progress", action="store_true", help="astronomaly: no progress bar")


def _load_features(path, cutout_ids):
    import h5py
    import numpy as np

    from ..utils.exceptions import InvalidInputError, UnknownIDError

    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    if path.endswith((".h5", ".hdf5")):
        with h5py.File(path, "r") as f:
            if "features" not in f:
                msg = f"{path!r} has no dataset 'features'"
                raise InvalidInputError(msg)
            features = np.asarray(f["features"], dtype=np.float64)
            ids = [i.decode() if isinstance(i, bytes) else str(i) for i in f["ids"][()]] if "ids" in f else None
        if ids is None:
            return features
        row = {obj_id: k for k, obj_id in enumerate(ids)}
        missing = [i for i in cutout_ids if i not in row]
        if missing:
            msg = f"{len(missing)} cutout(s) have no features in {path!r}: {missing[:10]}"
            raise UnknownIDError(msg, ids=missing)
        return features[[row[i] for i in cutout_ids]]
    msg = f"--features must be a .npy or .h5 file, got {path!r}"
    raise InvalidInputError(msg)


def _rank_order(table):
    """Row order best first: by ``rank`` when the table has one, else by descending score; NaN last, ties kept."""
    import numpy as np

    if "rank" in table.colnames:
        key = np.asarray(table["rank"], dtype=float)
    else:
        key = -np.asarray(table["score"], dtype=float)
    return np.argsort(np.where(np.isfinite(key), key, np.inf), kind="stable")


def _embed(cutouts):
    from ..classifier import AnomalyClassifier

    return AnomalyClassifier().embed(cutouts)


def run(args):
    """Run ``export``; returns the exit code."""
    import numpy as np

    from ..catalogs import export_astronomaly, read_table, write_regions, write_table
    from ..utils.exceptions import InvalidInputError
    from . import write_run_manifest
    from ._outputs import check_output

    check_output(args.output, overwrite=args.overwrite)  # before any work
    table = read_table(args.scores)
    for name in ("id", "score"):
        if name not in table.colnames:
            msg = f"{args.scores!r} has no {name!r} column (it has {table.colnames})"
            raise InvalidInputError(msg)
    fmt = args.format
    if fmt != "astronomaly" or args.top is not None:  # Astronomaly ranks a bundle itself
        table = table[_rank_order(table)[: args.top]]  # best first (--top: only the N best)
    if fmt == "astronomaly":
        if not args.cutouts:
            msg = "--format astronomaly needs --cutouts (the CutoutSet HDF5 file) for the images"
            raise InvalidInputError(msg)
        from ..cutouts import CutoutSet

        ids = [str(i) for i in table["id"]]
        cutouts = CutoutSet.from_hdf5(args.cutouts)
        all_ids = [str(i) for i in cutouts.ids]
        if args.features:
            features = np.asarray(_load_features(args.features, all_ids), dtype=np.float64)
            if features.shape[0] != len(all_ids):
                msg = (
                    f"{args.features!r} has {features.shape[0]} rows for the {len(all_ids)} cutouts of "
                    f"{args.cutouts!r}; give one row per cutout, in the file's order"
                )
                raise InvalidInputError(msg)
            features = features[cutouts.index_of(ids)]
            cutouts = cutouts[ids]
        else:
            cutouts = cutouts[ids]
            print("computing features with the pretrained classifier embedding ...")
            features = np.asarray(_embed(cutouts), dtype=np.float64)
        labels = None
        if "label" in table.colnames:
            labels = {str(i): str(w) for i, w in zip(table["id"], table["label"]) if str(w) in ("anomaly", "normal")}
        out = export_astronomaly(
            args.output,
            cutouts,
            np.asarray(table["score"], dtype=float),
            features=features,
            labels=labels or None,
            image_format=args.image_format,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
        print(f"wrote an Astronomaly bundle of {len(ids)} objects to {out}")
        print(
            f"open it with: python astronomaly/frontend/run_server.py "
            f"{os.path.join(str(out), 'astronomaly_pipeline.py')}"
        )
    elif fmt in ("ds9", "crtf"):
        write_regions(table, args.output, format=fmt, radius=args.radius, overwrite=args.overwrite)
        print(f"wrote {len(table)} {fmt} regions to {args.output}")
    else:
        write_table(table, args.output, format=fmt, overwrite=args.overwrite)
        print(f"wrote {len(table)} rows to {args.output} ({fmt})")
    write_run_manifest(args, args.output, inputs=[args.scores, args.cutouts, args.features])
    return 0
