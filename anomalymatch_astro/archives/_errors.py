"""Errors of the archives subpackage."""

from ..utils.exceptions import ArchiveError

__all__ = ["NoCoverageError"]


class NoCoverageError(ArchiveError):
    """A service has no image of some band at some positions.

    Attributes
    ----------
    ids : list of str
        The positions without coverage.
    """

    def __init__(self, message, ids=()):
        super().__init__(message)
        self.ids = list(ids)
