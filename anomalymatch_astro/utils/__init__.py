"""Shared utilities: the package's exceptions, atomic writes, progress bars, labels, hashing and run manifests."""

from . import exceptions
from ._atomic import atomic_path, replace_atomic, write_bytes_atomic, write_json_atomic
from ._hashing import ids_digest
from ._labels import LABEL_VALUES, label_word, parse_labels, read_labels
from ._limits import MAX_JSON_BYTES, MAX_JSON_DEPTH, check_declared_size, loads_json, read_json
from ._manifest import write_manifest
from ._optional_deps import require
from ._progress import progress_bar
from ._warnings import filters_changed

__all__ = [
    "filters_changed",
    "exceptions",
    "atomic_path",
    "replace_atomic",
    "write_bytes_atomic",
    "write_json_atomic",
    "parse_labels",
    "read_labels",
    "label_word",
    "LABEL_VALUES",
    "progress_bar",
    "write_manifest",
    "require",
    "ids_digest",
    "read_json",
    "loads_json",
    "check_declared_size",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
]
