"""The ``anomalymatch-astro`` command line: thin wrappers that parse, call the API and print.

Each subcommand lives in its own module ``anomalymatch_astro.cli._<name>`` that defines
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.  Modules are
imported only when their subcommand runs, so ``--help`` stays fast.
"""

import argparse
import importlib
import logging
import re
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
    "mine": ("_mine", "scan a region of a survey cell by cell (SIA 2/HiPS/local + TAP), resumable, on Dask"),
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
        print(f"error: {for_command_line(str(exc), sub)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


#: ``np.str_('x')``, ``np.int64(3)``, ``np.float64(0.5)``: numpy 2's reprs of scalars, shown as ``'x'``, ``3``, ``0.5``.
_NUMPY_SCALAR = re.compile(r"\bnp\.(?:str_|bytes_|u?int\d*|float\d*|bool_?)\(([^()]*)\)")
#: ``pass overwrite=True``, ``on_missing='skip'``, ``soda=False``: a keyword argument in an API message.
_KEYWORD = re.compile(r"(?P<pass>\b[Pp]ass )?\b(?P<name>[a-z][a-z0-9_]*)=(?P<value>True|False|'[^']*'|\"[^\"]*\")")


def _options(parser):
    """``{dest: action}`` of ``parser`` and of its subcommands' parsers (e.g. ``search init``)."""
    found = {}
    for action in parser._actions:  # argparse keeps no public list of its actions
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                for dest, sub_action in _options(subparser).items():
                    found.setdefault(dest, sub_action)
        elif action.option_strings:
            found.setdefault(action.dest, action)
    return found


#: an API hint naming a constructor's options, e.g. ``ArchiveClient(timeout=..., retries=...)``
_CALL_OPTIONS = re.compile(r"\b[A-Z]\w*\((?P<names>\w+=\.\.\.(?:, \w+=\.\.\.)*)\)")


def _call_flags(match, options):
    """``Class(a=..., b=...)`` as the command's ``--a, --b`` when it has all of them, else unchanged."""
    names = [part.split("=")[0] for part in match["names"].split(", ")]
    if not all(name in options for name in names):
        return match.group(0)
    return ", ".join(options[name].option_strings[-1] for name in names)


def _flag(name, value, options):
    """The command-line form of the API keyword ``name=value``, or None when the command has no such option."""
    long_options = {opt for action in options.values() for opt in action.option_strings if opt.startswith("--")}
    if name == "mode" and value == "'a'":
        return "--append" if "--append" in long_options else None
    action = options.get(name)
    if value in ("True", "False"):
        wanted = value == "True"
        if action is not None and action.nargs == 0 and action.const is wanted:
            return action.option_strings[-1]
        if action is not None and action.choices and {"yes", "no"} <= set(action.choices):
            return f"{action.option_strings[-1]} {'yes' if wanted else 'no'}"
        negated = f"--no-{name.replace('_', '-')}"
        return negated if not wanted and negated in long_options else None
    if action is None or action.nargs == 0 or (action.choices and value[1:-1] not in action.choices):
        return None
    return f"{action.option_strings[-1]} {value[1:-1]}"


def for_command_line(message, parser=None):
    """An API error message as a command-line user should read it.

    numpy scalar reprs become plain values (``np.str_('XDF0002')`` -> ``'XDF0002'``) and,
    where the command has the matching option, keyword arguments become its flags
    (``pass overwrite=True`` -> ``use --overwrite``, ``on_missing='skip'`` ->
    ``--on-missing skip``, ``mode='a'`` -> ``--append``).

    Parameters
    ----------
    message : str
        The message of a package exception.
    parser : argparse.ArgumentParser, optional
        The parser of the command that ran (keywords stay as they are without it).

    Returns
    -------
    str

    Examples
    --------
    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("--overwrite", action="store_true")
    >>> for_command_line("'a.fits' exists; pass overwrite=True to replace it", p)
    "'a.fits' exists; use --overwrite to replace it"
    >>> for_command_line("unknown id(s): [np.str_('XDF0002'), np.int64(7)]")
    "unknown id(s): ['XDF0002', 7]"
    >>> _ = p.add_argument("--timeout", type=float)
    >>> _ = p.add_argument("--retries", type=int)
    >>> for_command_line("raise the timeout/retries (ArchiveClient(timeout=..., retries=...)).", p)
    'raise the timeout/retries (--timeout, --retries).'
    """
    message = _NUMPY_SCALAR.sub(lambda m: m.group(1), message)
    if parser is None:
        return message
    options = _options(parser)
    message = _CALL_OPTIONS.sub(lambda m: _call_flags(m, options), message)

    def replace(match):
        flag = _flag(match["name"], match["value"], options)
        if flag is None:
            return match.group(0)
        return {None: "", "pass ": "use ", "Pass ": "Use "}[match["pass"]] + flag

    return _KEYWORD.sub(replace, message)


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
