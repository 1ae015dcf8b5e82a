"""Shared utilities: the package's exceptions, progress bars, optional dependencies and run manifests."""

from . import exceptions
from ._hashing import ids_digest
from ._labels import LABEL_VALUES, parse_labels, read_labels
from ._manifest import write_manifest
from ._progress import progress_bar

__all__ = ["exceptions", "parse_labels", "read_labels", "LABEL_VALUES", "progress_bar", "write_manifest", "ids_digest"]
