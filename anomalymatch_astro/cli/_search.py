"""``anomalymatch-astro search``: the whole active-learning search on one's own cutouts, on a workdir.

``init`` makes the session workdir from a CutoutSet file (``anomalymatch-astro cutouts``), ``train`` ranks
every object (fast heads on cached embeddings by default, FixMatch as an option) and writes the next
candidates of each cycle as ``W/cycle-<k>/candidates.png`` and ``.ecsv``, ``candidates`` lists them,
``label`` takes labels from a CSV, ``status`` summarises, ``export`` writes the ranked catalogue.
The labelling UI (``anomalymatch-astro label --workdir W``) works on the same workdir.
"""

import os
import time

from ._outputs import check_output, output_file, positive_int
from ._search_workdir import (
    _candidate_table,
    _check_extension,
    _gallery,
    _label_counts,
    _open,
    _print_rows,
    _read_search,
    _write_candidates,
    _write_search,
)

HELP = "the active-learning search on a workdir: init, train, candidates, label, status, export"

_FORMAT = "anomalymatch_astro.search"
TRAIN_STRATEGIES = ("top", "uncertainty", "diversity", "mix")


def _workdir_argument(parser):
    parser.add_argument("--workdir", required=True, help="the search's workdir (made by 'search init')")


def _group_argument(parser):
    text = "one entry per object (default: one per system, the sources within 1/8 of a cutout side; see 'members')"
    parser.add_argument("--no-group", action="store_true", help=text)


def _add_init(sub):
    from ..active_learning import MODES
    from ..embeddings import HEADS

    p = sub.add_parser("init", help="start a search workdir from a CutoutSet file")
    _workdir_argument(p)
    p.add_argument("--cutouts", required=True, help="CutoutSet HDF5 file (made by 'anomalymatch-astro cutouts')")
    p.add_argument("--labels", help="seed labels: CSV/ECSV with columns id,label (anomaly | normal)")
    p.add_argument("--mode", default="fast", choices=MODES, help="default training mode (default fast)")
    p.add_argument("--head", default=None, choices=sorted(HEADS), help="fast head (default ensemble)")
    p.add_argument("--image-size", type=positive_int, default=64, help="network input size (default 64)")
    p.add_argument("--backbone", default="tf_efficientnet_lite0", help="timm model name")
    p.add_argument("--weights", default=None, help="local pretrained weights file (timm naming)")
    p.add_argument("--no-pretrained", action="store_true", help="no ImageNet weights")
    p.add_argument("--allow-download", action="store_true", help="allow fetching weights from the Hugging Face hub")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-rotation-average", action="store_true", help="embed each cutout once, not rotation-averaged")
    p.add_argument("--zoom", type=float, nargs="+", metavar="F", help="centre views: the central F too (default 0.5)")
    p.add_argument("--no-zoom", dest="zoom", action="store_const", const=[], help="embed the whole cutouts alone")
    p.add_argument("--profile", action="store_true", default=None, help="radial residual profile too (the default)")
    p.add_argument("--no-profile", dest="profile", action="store_false", help="the network's embeddings alone")
    p.add_argument("--user", help="user name recorded with the seed labels (default: login name)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing search workdir")


def _add_train(sub):
    from ..active_learning import MODES

    p = sub.add_parser("train", help="train on the labels, rank every object, write the next candidates")
    _workdir_argument(p)
    p.add_argument("--mode", default=None, choices=MODES, help="training mode (default: the one set at init)")
    p.add_argument("--iterations", type=positive_int, default=None, help="FixMatch steps (fixmatch and both modes)")
    p.add_argument("-n", type=positive_int, default=24, help="candidates in the cycle's gallery and table (default 24)")
    p.add_argument("--strategy", default="top", choices=TRAIN_STRATEGIES, help="candidate strategy (default top)")
    _group_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_candidates(sub):
    from ..active_learning import STRATEGIES

    p = sub.add_parser("candidates", help="list the next unlabelled candidates")
    _workdir_argument(p)
    p.add_argument("-n", type=positive_int, default=24, help="how many (default 24)")
    p.add_argument("--strategy", default="top", choices=STRATEGIES, help="candidate strategy (default top)")
    p.add_argument("--like", action="append", metavar="ID", help="for --strategy similar: an object id (repeat)")
    _group_argument(p)
    p.add_argument("-o", "--output", help="write them to a table: .ecsv, .csv (with an empty label column), .fits ...")
    p.add_argument("--gallery", help="write a gallery PNG of them")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _add_label(sub):
    p = sub.add_parser("label", help="record labels from a CSV/ECSV file with columns id,label")
    _workdir_argument(p)
    p.add_argument("--labels", required=True, help="CSV/ECSV with id,label (anomaly | normal); blank labels skipped")
    p.add_argument("--user", help="user name recorded with the labels (default: login name)")


def _add_export(sub):
    p = sub.add_parser("export", help="write the ranked catalogue, optionally cross-matched")
    _workdir_argument(p)
    p.add_argument("-o", "--output", required=True, help="output table: .fits, .ecsv, .vot/.xml, .parquet, .h5")
    p.add_argument("--top", type=positive_int, default=None, help="only the N highest-ranked objects")
    p.add_argument("--crossmatch", metavar="CATALOG", help="cross-match with this catalogue file (ra/dec)")
    p.add_argument("--radius", default="1arcsec", help="cross-match radius (default 1arcsec)")
    p.add_argument("--prefix", default="cat_", help="prefix of the catalogue's columns (default cat_)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def add_arguments(parser):
    """Add the ``search`` subcommands to an argparse parser."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_init(sub)
    _add_train(sub)
    _add_candidates(sub)
    _add_label(sub)
    p = sub.add_parser("status", help="cycle, labels, mode, last training and the top of the ranking")
    _workdir_argument(p)
    _add_export(sub)


# ---------------------------------------------------------------------- actions
def _init(args):
    import shutil

    from ..active_learning import ActiveLearningSession
    from ..cutouts import CutoutSet
    from ..utils import atomic_path
    from ..utils.exceptions import InvalidInputError, ReadError

    workdir = os.path.abspath(args.workdir)
    replacing = os.path.exists(workdir) and (not os.path.isdir(workdir) or bool(os.listdir(workdir)))
    if replacing:
        if not os.path.exists(os.path.join(workdir, "session.json")):
            msg = f"{workdir} exists and is not a search workdir; choose another --workdir (it is never replaced)"
            raise InvalidInputError(msg)
        check_output(workdir, overwrite=args.overwrite)
    if not os.path.exists(args.cutouts):
        msg = f"the cutouts file {args.cutouts} does not exist; make it with 'anomalymatch-astro cutouts'"
        raise ReadError(msg)
    cutouts = CutoutSet.from_hdf5(args.cutouts)
    classifier = {
        "backbone": args.backbone,
        "pretrained": not args.no_pretrained,
        "image_size": args.image_size,
        "seed": args.seed,
        "device": args.device,
        "weights_path": None if args.weights is None else os.path.abspath(args.weights),
        "allow_download": args.allow_download,
    }
    old = workdir + ".old"
    with atomic_path(workdir) as tmp:  # a failure leaves no half-made workdir
        session = ActiveLearningSession(
            cutouts,
            labels=args.labels,
            workdir=tmp,
            user=args.user,
            default_mode=args.mode,
            head=args.head,
            rotation_average=not args.no_rotation_average,
            zoom=args.zoom,
            profile=args.profile,
        )
        n1, n0 = _label_counts(session)
        session.close()
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        _write_search(tmp, {"format": _FORMAT, "created": created, "classifier": classifier, "cycles": []})
        if os.path.exists(workdir):  # a folder cannot be renamed over a non-empty one
            if os.path.exists(old):
                shutil.rmtree(old)
            os.replace(workdir, old)
    if os.path.exists(old):
        shutil.rmtree(old)
    print(
        f"{'replaced' if replacing else 'created'} the search workdir {workdir}: {len(cutouts)} cutouts "
        f"{cutouts.image_shape} in bands {list(cutouts.bands)} from {os.path.abspath(args.cutouts)}"
    )
    print(f"mode {args.mode}; seed labels: {n1} anomalies, {n0} normals")
    if n1 == 0 or n0 == 0:
        print("training needs at least one anomaly and one normal: add some with 'search label' or the label UI")
    print(f"next: anomalymatch-astro search train --workdir {args.workdir}")
    return 0


def _check_trainable(session, workdir):
    from ..utils.exceptions import LabelError

    n1, n0 = _label_counts(session)
    if n1 == 0 or n0 == 0:
        msg = (
            f"training needs at least one anomaly and one normal label; the search has {n1} anomalies and {n0} "
            f"normals: add some with 'anomalymatch-astro search label --workdir {workdir} --labels labels.csv' "
            f"or in the UI 'anomalymatch-astro label --workdir {workdir}'"
        )
        raise LabelError(msg)
    return n1, n0


def _train(args):
    from ..utils import atomic_path
    from ..utils.exceptions import InvalidInputError

    workdir = os.path.abspath(args.workdir)
    session = _open(workdir, with_classifier=True)
    try:
        n1, n0 = _check_trainable(session, workdir)
        cycle = session.cycle + 1
        folder = os.path.join(workdir, f"cycle-{cycle}")
        if os.path.exists(folder):  # an earlier cycle's files are never replaced
            msg = f"{folder} exists: cycle {cycle} was written before; move it away to train this cycle again"
            raise InvalidInputError(msg)
        mode = args.mode or session.default_mode
        print(f"training cycle {cycle} ({mode} mode) on {n1} anomalies + {n0} normals of {len(session.cutouts)}")
        if mode != "fixmatch" and not os.path.exists(os.path.join(workdir, "embeddings.h5")):
            print("the first training embeds every cutout once (cached in embeddings.h5); later ones take seconds")
        result = session.train(mode=args.mode, iterations=args.iterations, progress=not args.no_progress)
        table = _candidate_table(session, args.n, args.strategy, group=not args.no_group)
        files = []
        with atomic_path(folder) as tmp:  # the cycle's files appear together or not at all
            os.makedirs(tmp)
            _write_candidates(table, os.path.join(tmp, "candidates.ecsv"))
            files.append(os.path.join(folder, "candidates.ecsv"))
            if len(table):
                title = f"cycle {cycle} ({result.mode}): next {len(table)} candidates ({args.strategy})"
                _gallery(session, table, os.path.join(tmp, "candidates.png"), title)
                files.insert(0, os.path.join(folder, "candidates.png"))
        state = _read_search(workdir)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        record = {"cycle": result.cycle, "mode": result.mode, "seconds": round(result.seconds, 2), "time": when}
        record.update(n_anomalies=n1, n_normals=n0, files=files)
        state["cycles"] = [*state.get("cycles", []), record]
        _write_search(workdir, state)
    finally:
        session.close()
    print(f"trained cycle {result.cycle} in {result.seconds:.1f} s")
    if len(table):
        print(f"next {len(table)} candidates ({args.strategy}):")
        _print_rows(table[:10])
        if len(table) > 10:
            print(f"  ... {len(table) - 10} more in the table")
    else:
        print("every object is labelled: no candidates left")
    for path in files:
        print(f"wrote {path}")
    print(f"label them with 'search label --workdir {args.workdir} --labels FILE' or 'label --workdir {args.workdir}'")
    return 0


def _candidates(args):
    from ..utils.exceptions import InvalidInputError

    if args.output:
        _check_extension(args.output, csv=True)
    for path in (args.output, args.gallery):
        if path:
            check_output(path, overwrite=args.overwrite)
    if args.like and args.strategy != "similar":
        msg = "--like is for --strategy similar"
        raise InvalidInputError(msg)
    if args.strategy == "similar" and not args.like:
        msg = "--strategy similar needs --like ID (the object to find more of)"
        raise InvalidInputError(msg)
    embeds = args.strategy in ("similar", "diversity", "mix")
    session = _open(os.path.abspath(args.workdir), with_classifier=embeds)
    try:
        if session.scores is None and args.strategy != "similar":
            msg = f"the search has no scores yet; run 'anomalymatch-astro search train --workdir {args.workdir}'"
            raise InvalidInputError(msg)
        table = _candidate_table(session, args.n, args.strategy, like=args.like, group=not args.no_group)
        if args.output:
            _write_candidates(table, args.output, overwrite=args.overwrite)
        if args.gallery and len(table):
            with output_file(args.gallery, overwrite=args.overwrite) as tmp:
                _gallery(session, table, tmp, f"cycle {session.cycle}: {len(table)} candidates ({args.strategy})")
    finally:
        session.close()
    print(f"{len(table)} candidates ({args.strategy}) after cycle {table.meta['cycle']}:")
    _print_rows(table)
    for path in (args.output, args.gallery if len(table) else None):
        if path:
            print(f"wrote {path}")
    return 0


def _label(args):
    import numpy as np

    from ..utils import read_labels

    table = read_labels(args.labels)
    skipped = 0
    if "label" in table.colnames:  # a candidates CSV with some labels left blank
        column = table["label"]
        blank = np.asarray(getattr(column, "mask", np.zeros(len(table), bool)), dtype=bool)
        blank |= np.array([v is None or str(v).strip() == "" for v in column.tolist()], dtype=bool)
        skipped = int(blank.sum())
        table = table[~blank]
    session = _open(os.path.abspath(args.workdir), user=args.user)
    try:
        before = len(session.labels)
        session.label(table, source="human")  # unknown ids: an error listing them, nothing saved
        n1, n0 = _label_counts(session)
        total, cycle = len(session.labels), session.cycle
    finally:
        session.close()
    print(f"recorded {len(table)} labels from {args.labels} ({total - before} new objects)")
    if skipped:
        print(f"skipped {skipped} rows without a label")
    print(f"the search now has {n1} anomalies and {n0} normals labelled (cycle {cycle})")
    print(f"next: anomalymatch-astro search train --workdir {args.workdir}")
    return 0


def _status(args):
    workdir = os.path.abspath(args.workdir)
    session = _open(workdir)
    try:
        (n1, n0), cycle, n = _label_counts(session), session.cycle, len(session.cutouts)
        print(f"search {workdir}: {n} cutouts in bands {list(session.cutouts.bands)} ({session.cutouts.path})")
        views = f"zoom {list(session.zoom)}" + (", residual profile" if session.profile else "")
        print(f"cycle {cycle}; default mode {session.default_mode}; embeddings: full view, {views}")
        print(f"labels: {n1} anomalies, {n0} normals ({n1 + n0} of {n} labelled)")
        last = (_read_search(workdir).get("cycles") or [None])[-1]
        if last and last["cycle"] == cycle:
            print(f"last training: cycle {cycle}, {last['mode']} mode, {last['seconds']} s, at {last['time']}")
            print(f"  files: {', '.join(last['files'])}")
        elif session.last_train_mode:
            print(f"last training: cycle {cycle}, {session.last_train_mode} mode (in the labelling UI or Python)")
        else:
            print(f"not trained yet: anomalymatch-astro search train --workdir {args.workdir}")
        if session.scores is not None:
            table = session.to_table()
            top = table[table.argsort("rank", kind="stable")[:5]]
            print("top 5 of the ranking:")
            _print_rows(top, label=[str(w) or "-" for w in top["label"]])
    finally:
        session.close()
    return 0


def _export(args):
    import numpy as np

    from ..catalogs import TABLE_FORMATS, crossmatch, read_table, write_table
    from ..utils.exceptions import InvalidInputError, ReadError
    from . import read_catalog

    _check_extension(args.output)  # an unknown extension fails before any work
    check_output(args.output, overwrite=args.overwrite)
    if args.crossmatch and not os.path.exists(args.crossmatch):
        msg = f"catalogue file {args.crossmatch} does not exist"
        raise ReadError(msg)
    session = _open(os.path.abspath(args.workdir))
    try:
        if session.scores is None:
            msg = f"the search has no scores yet; run 'anomalymatch-astro search train --workdir {args.workdir}'"
            raise InvalidInputError(msg)
        table = session.to_table()
    finally:
        session.close()
    table = table[np.argsort(np.asarray(table["rank"]), kind="stable")]  # rank order
    if args.top:
        table = table[: args.top]
    info = ""
    if args.crossmatch:
        if args.crossmatch.lower().endswith(tuple(e for ends in TABLE_FORMATS.values() for e in ends)):
            catalog = read_table(args.crossmatch)
        else:
            catalog = read_catalog(args.crossmatch, error=ReadError)
        table = crossmatch(table, catalog, radius=args.radius, prefix=args.prefix)
        m = table.meta["crossmatch"]
        info = f", {m['n_matched']} matched within {args.radius} in {args.crossmatch}"
    write_table(table, args.output, overwrite=args.overwrite)
    print(f"wrote {len(table)} objects in rank order (cycle {table.meta.get('cycle')}{info}) to {args.output}")
    return 0


ACTIONS = dict(init=_init, train=_train, candidates=_candidates, label=_label, status=_status, export=_export)


def run(args):
    """Run one ``search`` action; returns the exit code."""
    return ACTIONS[args.action](args)
