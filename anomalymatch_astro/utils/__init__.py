"""Shared utilities: the package's exceptions, progress bars and optional dependencies."""

from . import exceptions
from ._labels import LABEL_VALUES, parse_labels, read_labels
from ._progress import progress_bar

__all__ = ["exceptions", "parse_labels", "read_labels", "LABEL_VALUES", "progress_bar"]
