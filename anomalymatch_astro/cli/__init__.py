"""The ``anomalymatch-astro`` command line: thin wrappers that parse, call the API and print.

Each subcommand lives in its own module ``anomalymatch_astro.cli._<name>`` that defines
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.  Modules are
imported only when their subcommand runs, so ``--help`` stays fast.
"""

import argparse
import importlib
import logging
import sys

__all__ = ["main"]

#: subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "demo": ("_demo", "run the end-to-end demo on the embedded mock survey (offline)"),
    "cutouts": ("_cutouts", "cut multi-band cutouts out of FITS images at catalogue positions"),
    "query": ("_query", "get cutouts from a VO service (SIA/SODA/TAP) or HiPS survey"),
    "train": ("_train", "train the FixMatch anomaly classifier on cutouts and labels"),
    "score": ("_score", "score cutouts with a trained classifier"),
    "search": ("_search", "the active-learning search on a workdir: init, train, candidates, label, status, export"),
    "label": ("_label", "serve the labelling UI for a session workdir on 127.0.0.1"),
    "export": ("_export", "export a scored catalogue (Astronomaly bundle, FITS, VOTable, ECSV, Parquet, DS9)"),
    "crossmatch": ("_crossmatch", "cross-match candidates against a catalogue"),
    "benchmark": ("_benchmark", "run the benchmark protocol on the offline data sets"),
}


def _available():
    return {
        name: spec
        for name, spec in SUBCOMMANDS.items()
        if importlib.util.find_spec(f"anomalymatch_astro.cli.{spec[0]}") is not None
    }


def build_parser():
    """The argparse parser of ``anomalymatch-astro`` (subcommand arguments are added on use)."""
    parser = argparse.ArgumentParser(
        prog="anomalymatch-astro", description="Find rare objects in survey images with very few labels."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in _available().items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv=None):
    """Entry point of ``anomalymatch-astro``; returns the process exit code."""
    from ..utils.exceptions import AnomalyMatchError

    argv = list(sys.argv[1:] if argv is None else argv)
    available = _available()
    parser = build_parser()
    # find the subcommand, then let its own parser handle the rest
    top, rest = parser.parse_known_args(argv)
    if top.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(f"anomalymatch_astro.cli.{available[top.command][0]}")
    sub = argparse.ArgumentParser(prog=f"anomalymatch-astro {top.command}", description=available[top.command][1])
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    args._argv = ["anomalymatch-astro", top.command, *rest]  # for the run manifests
    level = logging.WARNING - 10 * min(top.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(module.run(args) or 0)
    except AnomalyMatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def write_run_manifest(args, output, *, inputs=(), seeds=None, extra=None):
    """Write ``<output>.manifest.json`` for a CLI command (its arguments are the config)."""
    from ..utils import write_manifest

    config = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    return write_manifest(
        output,
        config=config,
        inputs=[i for i in inputs if i],
        seeds=seeds,
        extra=extra,
        command=getattr(args, "_argv", None),
    )


def read_catalog(path, *, table_class=None, error=None):
    """Read a ``--catalog`` file with astropy (any format it knows), or raise ``error`` saying which file failed.

    ``table_class`` defaults to `~astropy.table.Table`, ``error`` to
    `~anomalymatch_astro.utils.exceptions.InvalidInputError`.
    """
    if table_class is None:
        from astropy.table import Table as table_class
    if error is None:
        from ..utils.exceptions import InvalidInputError as error
    try:
        return table_class.read(path)
    except Exception as exc:
        msg = f"could not read the catalogue {path!r}: {exc}"
        raise error(msg) from exc
