"""``anomalymatch-astro mine``: scan a region of a survey cell by cell, resumable, on Dask.

Images come from an SIA 2 service (``--sia``; SODA cut-outs where offered), a HiPS survey
(``--hips``) or local FITS files (``--images BAND=GLOB``); sources from a TAP table
(``--tap`` + ``--table``), a local catalogue (``--catalog``), or detection on the images.
``--status`` prints the coverage of a workdir and writes its sky plot.
"""

import glob
import os

from ._outputs import non_negative_float, non_negative_int, positive_float, positive_int

HELP = "scan a region of a survey (SIA 2/HiPS/local + TAP) cell by cell, resumable, on Dask"


def _band(text):
    import argparse

    name, _, remote = text.partition("=")
    if not name.strip() or (_ and not remote.strip()):
        msg = f"--band needs NAME or NAME=SERVICE_BAND, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return name.strip(), (remote.strip() or name.strip())


def add_arguments(parser):
    parser.add_argument("--workdir", required=True, help="the run's folder (a rerun resumes it)")
    parser.add_argument("--status", action="store_true", help="print the coverage of --workdir and plot it; no mining")
    parser.add_argument("--plot", help="with --status: the sky plot file (default WORKDIR/coverage.png)")
    src = parser.add_argument_group("survey")
    src.add_argument("--sia", metavar="URL", help="SIA 2 query URL of the images")
    src.add_argument("--hips", metavar="URL", nargs="?", const="", help="HiPS via hips2fits (optional endpoint)")
    src.add_argument("--pixel-scale", type=positive_float, help="arcsec per pixel of HiPS cut-outs")
    src.add_argument("--images", action="append", metavar="BAND=GLOB", help="local FITS images of a band (repeat)")
    src.add_argument("--band", action="append", type=_band, metavar="NAME[=SERVICE_BAND]", help="a band (repeat)")
    src.add_argument("--collection", help="SIA 2 COLLECTION of the images")
    src.add_argument("--no-soda", action="store_true", help="download whole images instead of SODA cut-outs")
    src.add_argument("--tap", metavar="URL", help="TAP service of the source table (with --table)")
    src.add_argument("--table", help="TAP table of the sources (ra, dec in degrees)")
    src.add_argument("--catalog", help="local source catalogue (with --images)")
    src.add_argument("--id-column", default="id", help="id column of the sources (default id)")
    reg = parser.add_argument_group("region (one of)")
    reg.add_argument("--cone", nargs=3, type=float, metavar=("RA", "DEC", "RADIUS"), help="degrees")
    reg.add_argument("--box", nargs=4, type=float, metavar=("RA", "DEC", "WIDTH", "HEIGHT"), help="degrees")
    reg.add_argument("--polygon", nargs="+", type=float, metavar="RA DEC", help="vertices in degrees")
    reg.add_argument("--moc", help="a MOC FITS file")
    mod = parser.add_argument_group("model (one of)")
    mod.add_argument("--model", help="a classifier checkpoint (AnomalyClassifier.save)")
    mod.add_argument("--session", help="an active-learning session workdir (its fast head on embeddings)")
    mod.add_argument("--mode", choices=["fast", "fixmatch", "both"], help="with --session (default: its last)")
    run = parser.add_argument_group("run")
    run.add_argument("--size", type=positive_int, default=64, help="cutout size in pixels (default 64)")
    run.add_argument("--order", type=non_negative_int, help="HEALPix order of the cells (default: from the images)")
    run.add_argument("--scheduler", help="Dask scheduler address (default: a LocalCluster)")
    run.add_argument("--workers", type=positive_int, default=1, help="LocalCluster workers (default 1)")
    run.add_argument("--threads", action="store_true", help="LocalCluster workers as threads, not processes")
    run.add_argument("--synchronous", action="store_true", help="run the cells in this process, without Dask")
    run.add_argument("--rate-limit", type=non_negative_float, default=0.0, help="requests/s for all workers")
    run.add_argument("--cache-dir", help="download cache (default: archives.conf.cache_dir)")
    run.add_argument("--timeout", type=positive_float, help="seconds per request")
    run.add_argument("--retries", type=non_negative_int, help="retries after timeouts and 5xx answers")
    run.add_argument("--top", type=positive_int, default=100, help="rows of top_candidates.ecsv (default 100)")
    run.add_argument("--partition-order", type=non_negative_int, help="HATS partition order (default: cell order)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def _region(args):
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from ..utils.exceptions import InvalidInputError

    given = [n for n in ("cone", "box", "polygon", "moc") if getattr(args, n)]
    if len(given) != 1:
        msg = "give one region: --cone, --box, --polygon or --moc"
        raise InvalidInputError(msg)
    if args.cone:
        return ((args.cone[0], args.cone[1]), args.cone[2] * u.deg)
    if args.box:
        return ((args.box[0], args.box[1]), args.box[2] * u.deg, args.box[3] * u.deg)
    if args.polygon:
        if len(args.polygon) % 2 or len(args.polygon) < 6:
            msg = "--polygon needs at least 3 vertices as RA DEC pairs"
            raise InvalidInputError(msg)
        return SkyCoord(args.polygon[0::2], args.polygon[1::2], unit="deg")
    return args.moc


def _survey(args):
    from astropy import units as u

    from ..archives import LocalSurvey, VOSurvey
    from ..utils.exceptions import InvalidInputError

    bands = dict(args.band or [])
    if args.images:
        images = {}
        for item in args.images:
            band, _, pattern = item.partition("=")
            files = sorted(glob.glob(pattern))
            if not band or not files:
                msg = f"--images {item!r}: give BAND=GLOB matching FITS files"
                raise InvalidInputError(msg)
            images[band] = files
        return LocalSurvey(images, catalog=args.catalog, id_column=args.id_column)
    if args.sia is None and args.hips is None:
        msg = "give the images: --sia URL, --hips [URL] or --images BAND=GLOB"
        raise InvalidInputError(msg)
    if not bands:
        msg = "give the bands: --band g --band r ..."
        raise InvalidInputError(msg)
    return VOSurvey(
        args.sia if args.hips is None else (args.hips or None),
        bands=bands,
        tap_url=args.tap,
        tap_table=args.table,
        id_column=args.id_column,
        collection=args.collection,
        soda=not args.no_soda,
        hips=args.hips is not None,
        pixel_scale=None if args.pixel_scale is None else args.pixel_scale * u.arcsec,
        rate_limit=args.rate_limit,
        cache_dir=args.cache_dir,
        timeout=args.timeout,
        retries=args.retries,
    )


def _scorer(args):
    from ..utils.exceptions import InvalidInputError

    if bool(args.model) == bool(args.session):
        msg = "give the model: --model CHECKPOINT or --session WORKDIR"
        raise InvalidInputError(msg)
    if args.model:
        from ..classifier import AnomalyClassifier

        return AnomalyClassifier.load(args.model)
    from ._search import _open

    # a search of 'search init' keeps no model/ before FixMatch: reopen it with its recorded classifier settings
    session = _open(os.path.abspath(args.session), with_classifier=True)
    try:
        return session.scorer(mode=args.mode)
    finally:
        session.close()


def _status(args):
    from ..archives import mining_status

    if not os.path.exists(os.path.join(args.workdir, "mining.json")):
        from ..utils.exceptions import InvalidInputError

        msg = (
            f"{args.workdir!r} holds no mining run (no mining.json); "
            "start one with 'anomalymatch-astro mine --workdir ...'"
        )
        raise InvalidInputError(msg)
    summary, mocs = mining_status(args.workdir)
    print(
        f"{args.workdir}: order {summary['order']}, {summary['cells']} cells: {summary['done']} done, "
        f"{summary['failed']} failed, {summary['nodata']} without data, {_todo(summary)}; "
        f"{summary['cutouts']} cutouts of {summary['sources']} sources"
    )
    if summary["failed"]:
        _print_failures(args.workdir, 10)
    try:
        from ..visualization import plot_coverage
    except ImportError:  # pragma: no cover - plot_coverage comes with the visualization subpackage
        return 0
    path = args.plot or os.path.join(args.workdir, "coverage.png")
    states = {"done": mocs["done"], "failed": mocs["failed"], "no data": mocs["nodata"]}
    visited = mocs["done"].union(mocs["failed"], mocs["nodata"])
    states["to do"] = mocs["region"].difference(visited)
    fig = plot_coverage(states, colors=["tab:green", "tab:red", "tab:gray", "tab:orange"], outline=mocs["region"])
    fig.axes[0].set_title(
        f"{os.path.basename(os.path.abspath(args.workdir))}: {summary['done']} done, {summary['failed']} failed, "
        f"{summary['nodata']} without data,\n{_todo(summary)} of {summary['cells']} cells (order {summary['order']})",
        fontsize=10,
    )
    fig.savefig(path, dpi=100)
    print(f"wrote the coverage plot {path}")
    return 0


def _todo(summary):
    """'N to do', saying how many of them are failed cells to retry (the plot shows those red, not orange)."""
    todo, failed = summary["todo"], summary["failed"]
    retried = min(failed, todo)
    return f"{todo} to do ({retried} failed, to retry)" if retried else f"{todo} to do"


def _print_failures(workdir, n):
    """Print the reasons of the first ``n`` failed cells (the same reason once, with its count)."""
    from astropy.table import Table

    failures = Table.read(os.path.join(workdir, "coverage", "failures.ecsv"))
    reasons = {}
    for row in failures:
        reasons.setdefault(str(row["reason"]), []).append(int(row["pix"]))
    for reason, cells in list(reasons.items())[:n]:
        more = f" and {len(cells) - 1} more cell(s)" if len(cells) > 1 else ""
        print(f"  failed cell {cells[0]}{more}: {reason[:200]}")


def _resuming(workdir):
    """Print what an earlier run of this workdir already did (nothing for a new workdir)."""
    if not os.path.exists(os.path.join(workdir, "mining.json")):
        return
    from ..archives import mining_status

    s, _ = mining_status(workdir)
    if s["done"] + s["failed"] + s["nodata"]:
        print(
            f"resuming {workdir}: {s['done']} done, {s['nodata']} without data, {s['failed']} failed "
            f"(retried) of {s['cells']} cells; {s['todo']} to do"
        )


def run(args):
    if args.status:
        return _status(args)
    from ..archives import mine

    region = _region(args)
    survey = _survey(args)
    scorer = _scorer(args)
    _resuming(args.workdir)
    result = mine(
        survey,
        region,
        scorer=scorer,
        workdir=args.workdir,
        size=args.size,
        order=args.order,
        scheduler="synchronous" if args.synchronous else args.scheduler,
        n_workers=args.workers,
        processes=not args.threads,
        top=args.top,
        partition_order=args.partition_order,
        progress=not args.no_progress,
    )
    s = result.summary
    print(
        f"mined {result.ran} cell(s) in {result.seconds:.1f} s ({result.cells_per_minute:.1f} cells/min): "
        f"{s['done']} done, {s['failed']} failed, {s['nodata']} without data, {s['todo']} to do of {s['cells']}; "
        f"{s['cutouts']} cutouts scored; catalogue {result.paths['catalog']}"
    )
    if s["failed"]:
        _print_failures(args.workdir, 3)
        print(f"{s['failed']} cell(s) failed: run the same command again to retry them (exit status 3)")
    return 0 if s["failed"] == 0 else 3
