"""Shared utilities: the package's exceptions, progress bars, optional dependencies and run manifests."""

from . import exceptions
from ._atomic import atomic_path, replace_atomic, write_bytes_atomic, write_json_atomic
from ._hashing import ids_digest
from ._labels import LABEL_VALUES, parse_labels, read_labels
from ._manifest import write_manifest
from ._progress import progress_bar

__all__ = [
    "exceptions",
    "atomic_path",
    "replace_atomic",
    "write_bytes_atomic",
    "write_json_atomic",
    "parse_labels",
    "read_labels",
    "LABEL_VALUES",
    "progress_bar",
    "write_manifest",
    "ids_digest",
]
