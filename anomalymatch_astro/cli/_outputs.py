"""What every command shares about its outputs and counts.

* An existing output is never replaced without ``--overwrite`` (or added to without
  ``--append`` where a command has it): `check_output` refuses it, naming the file and the flag,
  before any work is done.
* An output file is written beside its final name and renamed into place once complete
  (`output_file`), so a failed or killed command leaves no half-made file and an old file as it
  was.
* Counts that make no sense (zero iterations, sizes and batch sizes <= 0) are refused by the
  argparse types `positive_int`, `non_negative_int` and `positive_float`, which say what to give.
"""

import argparse
import contextlib
import os
import shutil

__all__ = [
    "check_output",
    "output_file",
    "output_folder",
    "write_cutout_set",
    "positive_int",
    "non_negative_int",
    "positive_float",
]


def _holds_something(path):
    if not os.path.lexists(path):
        return False
    if os.path.isdir(path) and not os.path.islink(path):
        return bool(os.listdir(path))
    return True


def check_output(path, *, overwrite=False, append=None):
    """Refuse an existing output unless ``--overwrite`` was given.

    An empty folder counts as free.  The error names the file and the flag(s) that allow it.

    Parameters
    ----------
    path : str or os.PathLike
        The output file or folder.
    overwrite : bool, optional
        ``--overwrite`` was given.
    append : bool or None, optional
        ``--append`` was given (None: the command has no ``--append``).
    """
    from ..utils.exceptions import OutputExistsError

    if overwrite or append or not _holds_something(path):
        return
    flags = "--overwrite to replace it" + (" or --append to add to it" if append is not None else "")
    msg = f"{os.fspath(path)!r} exists; pass {flags} (it is left as it was)"
    raise OutputExistsError(msg)


@contextlib.contextmanager
def output_file(path, *, overwrite=False):
    """Check ``path`` with `check_output`, then yield a temporary path beside it.

    The temporary file replaces ``path`` in one rename when the block succeeds and is removed
    when it fails.

    Parameters
    ----------
    path : str or os.PathLike
        The output file.
    overwrite : bool, optional
        ``--overwrite`` was given.

    Yields
    ------
    str
    """
    from ..utils import atomic_path

    check_output(path, overwrite=overwrite)
    with atomic_path(path) as tmp:
        yield tmp
        check_output(path, overwrite=overwrite)  # it appeared while we worked: still not ours to replace


@contextlib.contextmanager
def output_folder(path, *, overwrite=False):
    """Check ``path`` with `check_output`; when the block fails, remove the folder if it was new.

    Parameters
    ----------
    path : str or os.PathLike
        The output folder.
    overwrite : bool, optional
        ``--overwrite`` was given.
    """
    check_output(path, overwrite=overwrite)
    created = not os.path.lexists(path)
    try:
        yield
    except BaseException:
        if created and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        raise


def write_cutout_set(cutouts, path, *, overwrite=False, append=False):
    """Write ``cutouts`` as ``--output`` of ``cutouts`` and ``query``.

    ``--append`` to an existing file adds shards to it in place (its own checks refuse other
    bands, shapes or ids already there); otherwise the whole file is written beside ``path`` and
    renamed into place once complete.

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet`
        The cutouts.
    path : str
        The output file.
    overwrite, append : bool, optional
        ``--overwrite`` / ``--append`` were given.
    """
    if append and os.path.exists(path):
        cutouts.to_hdf5(path, mode="a")
        return
    with output_file(path, overwrite=overwrite) as tmp:
        cutouts.to_hdf5(tmp)


def _number(text, kind, minimum, what):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < minimum or value != value:  # value != value: NaN
        msg = f"expected {what}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_int(text):
    """An argparse type: an integer >= 1."""
    return _number(text, int, 1, "a whole number of at least 1")


def non_negative_int(text):
    """An argparse type: an integer >= 0."""
    return _number(text, int, 0, "a whole number of at least 0")


def positive_float(text):
    """An argparse type: a number > 0."""
    value = _number(text, float, 0, "a number greater than 0")
    if value == 0 or value == float("inf"):
        msg = f"expected a number greater than 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def non_negative_float(text):
    """An argparse type: a finite number >= 0."""
    value = _number(text, float, 0, "a number of at least 0")
    if value == float("inf"):
        msg = f"expected a finite number of at least 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value
