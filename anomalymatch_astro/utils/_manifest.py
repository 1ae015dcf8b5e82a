"""Run manifests: what produced an output, so that it can be reproduced.

`write_manifest` writes ``<output>.manifest.json`` next to an output file or
folder: the package and library versions, Python and platform, the time, the
command line, the sha256 of every input file, the seeds and the configuration.
"""

import datetime
import hashlib
import os
import platform
import sys
from importlib import metadata

from ._atomic import write_json_atomic
from .exceptions import WriteError

__all__ = ["write_manifest", "manifest_path", "file_sha256"]

#: Distributions whose versions are recorded (when installed; nothing is imported).
_DISTRIBUTIONS = (
    "anomalymatch_astro",
    "numpy",
    "scipy",
    "astropy",
    "h5py",
    "torch",
    "timm",
    "safetensors",
    "scikit-learn",
    "reproject",
    "pyvo",
)

#: Files larger than this are hashed by their first and last `_HEAD_TAIL` bytes and their size.
_FULL_HASH_LIMIT = 256 * 1024 * 1024
_HEAD_TAIL = 16 * 1024 * 1024
_BLOCK = 1024 * 1024
_FORMAT = "anomalymatch_astro.manifest"
_FORMAT_VERSION = 1


def manifest_path(output):
    """The manifest file of ``output``: ``<output>.manifest.json`` (a sibling for folders)."""
    return os.fspath(output).rstrip("/\\" + os.sep) + ".manifest.json"


def file_sha256(path):
    """sha256 of a file, streamed; large files by head, tail and size.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``{"sha256": hex, "size": bytes, "hashed": "all" | "first and last 16 MiB + size"}``.
    """
    size = os.path.getsize(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: f.read(_BLOCK), b""):
                h.update(block)
            how = "all"
        else:
            h.update(f.read(_HEAD_TAIL))
            f.seek(size - _HEAD_TAIL)
            h.update(f.read(_HEAD_TAIL))
            h.update(str(size).encode())
            how = "first and last 16 MiB + size"
    return {"sha256": h.hexdigest(), "size": size, "hashed": how}


def _describe_input(item):
    path = os.fspath(item)
    if os.path.isfile(path):
        return {"path": os.path.abspath(path), **file_sha256(path)}
    if os.path.isdir(path):
        files = {}
        for folder, _, names in sorted(os.walk(path)):
            for name in sorted(names):
                full = os.path.join(folder, name)
                files[os.path.relpath(full, path)] = file_sha256(full)
        return {"path": os.path.abspath(path), "files": files}
    return {"path": path, "exists": False}  # e.g. a service URL


def _jsonable(value):
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return _jsonable(value.to_dict())
    if hasattr(value, "unit") and hasattr(value, "value"):  # a Quantity: "8.0 arcsec" (tolist() refuses them)
        return str(value) if getattr(value, "isscalar", True) else [str(v) for v in value.ravel()]
    if hasattr(value, "tolist"):
        try:
            return _jsonable(value.tolist())
        except (NotImplementedError, TypeError, ValueError):
            return str(value)
    if callable(value):
        return None
    return str(value)


def _versions():
    out = {}
    for name in _DISTRIBUTIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_manifest(output, *, config=None, inputs=(), seeds=None, extra=None, command=None):
    r"""Write ``<output>.manifest.json``: how ``output`` was made, to reproduce it.

    Parameters
    ----------
    output : str or os.PathLike
        The output file or folder the manifest describes.
    config : dict or `argparse.Namespace`, optional
        Settings that produced it (a Namespace is turned into a dict; values that are
        not JSON become strings).
    inputs : sequence of str or os.PathLike, optional
        Input files or folders; each file's sha256 is recorded (streamed; files over
        256 MiB by their first and last 16 MiB and their size, which the manifest says).
        Inputs that are not local paths (e.g. URLs) are recorded as given.
    seeds : int, sequence or dict, optional
        Random seeds.
    extra : dict, optional
        Anything else worth keeping (e.g. the model hash).
    command : sequence of str, optional
        The command line (default ``sys.argv``).

    Returns
    -------
    str
        The path of the manifest.

    Examples
    --------
    >>> import json, os, tempfile
    >>> from anomalymatch_astro.utils import write_manifest
    >>> folder = tempfile.mkdtemp()
    >>> out = os.path.join(folder, "scores.ecsv")
    >>> with open(out, "w") as f:
    ...     _ = f.write("id,score\n")
    >>> path = write_manifest(out, config={"batch_size": 8}, inputs=[out], seeds=0)
    >>> info = json.load(open(path))
    >>> info["output"] == os.path.abspath(out), info["seeds"], info["config"]["batch_size"]
    (True, 0, 8)
    """
    if config is not None and not isinstance(config, dict):
        config = vars(config)
    info = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "output": os.path.abspath(os.fspath(output)),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": list(sys.argv if command is None else command),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": _versions(),
        "seeds": _jsonable(seeds),
        "config": _jsonable(config) if config is not None else None,
        "inputs": [_describe_input(item) for item in (inputs or ())],
        "extra": _jsonable(extra) if extra is not None else None,
    }
    path = manifest_path(output)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    try:
        write_json_atomic(path, info, indent=2, sort_keys=True)
    except OSError as exc:
        msg = f"could not write the run manifest {path!r} ({exc}); check free space and permissions"
        raise WriteError(msg) from exc
    return path
