"""The one way the package replaces a file: write beside it, flush to disk, then rename over it.

A crash, a kill or a full disk at any moment leaves either the old file or the new one, never a
torn file and never both missing.
"""

import contextlib
import json
import os
import shutil

__all__ = ["atomic_path", "write_json_atomic", "write_bytes_atomic", "replace_atomic", "fsync_file"]


def fsync_file(path):
    """Flush ``path``'s data to disk (a no-op where the platform cannot).

    Parameters
    ----------
    path : str or os.PathLike
        A file that exists.
    """
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on read-only descriptors
        pass
    finally:
        os.close(fd)


def _fsync_dir(folder):
    with contextlib.suppress(OSError):
        fd = os.open(folder or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temporary_name(path):
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(folder, f".{name}.tmp{os.getpid()}")


def replace_atomic(tmp, path, *, fsync=True):
    """Move the finished file ``tmp`` over ``path`` in one rename.

    Parameters
    ----------
    tmp : str or os.PathLike
        A complete file in the same folder as ``path``.
    path : str or os.PathLike
        The destination; replaced if it exists.
    fsync : bool, optional
        Flush ``tmp`` and the folder to disk around the rename (default), so that the rename
        survives a power loss as well as a crash.
    """
    if fsync:
        fsync_file(tmp)
    os.replace(os.fspath(tmp), os.fspath(path))
    if fsync:
        _fsync_dir(os.path.dirname(os.path.abspath(os.fspath(path))))


@contextlib.contextmanager
def atomic_path(path, *, fsync=True):
    """Give a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On an exception inside the block the temporary file (or folder) is removed and ``path`` is left
    as it was.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    fsync : bool, optional
        Flush the new file and its folder to disk before and after the rename.

    Yields
    ------
    str
        The temporary path to write to (in the same folder, so the rename is atomic).

    Examples
    --------
    >>> import os, tempfile
    >>> from anomalymatch_astro.utils import atomic_path
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(target) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("complete")
    >>> open(target).read()
    'complete'
    """
    tmp = _temporary_name(path)
    try:
        yield tmp
        replace_atomic(tmp, path, fsync=fsync)
    except BaseException:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        raise


def write_bytes_atomic(path, data, *, fsync=True):
    """Write ``data`` (bytes or str) to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    data : bytes or str
        The whole content; a str is encoded as UTF-8.
    fsync : bool, optional
        Flush to disk before the rename (default).
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_json_atomic(path, obj, *, indent=1, sort_keys=True, fsync=True):
    """Write ``obj`` as JSON to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    obj : object
        Anything `json.dump` accepts.
    indent : int, optional
        Indentation of the JSON text.
    sort_keys : bool, optional
        Sort the keys of mappings.
    fsync : bool, optional
        Flush to disk before the rename (default).
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys)
    write_bytes_atomic(path, text, fsync=fsync)
