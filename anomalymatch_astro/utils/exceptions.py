"""The exceptions and warnings of anomalymatch_astro.

Every failure a user can cause or meet ends in one of these, with a message that
says what to do.  They subclass the matching built-in exception (``ValueError``,
``KeyError``, ``OSError`` ...) so that code written against the built-ins keeps
working.
"""

from astropy.utils.exceptions import AstropyUserWarning

__all__ = [
    "AnomalyMatchError",
    "InvalidInputError",
    "ReadError",
    "FITSReadError",
    "OutputExistsError",
    "MissingWCSError",
    "NoOverlapError",
    "BandMismatchError",
    "UnknownIDError",
    "LabelError",
    "CheckpointError",
    "ArchiveError",
    "ServiceError",
    "NoCoverageError",
    "WriteError",
    "MissingDependencyError",
    "AnomalyMatchWarning",
    "PartialOverlapWarning",
    "NonFinitePixelsWarning",
    "MissingZeroPointWarning",
]


class AnomalyMatchError(Exception):
    """Base class of every error raised by anomalymatch_astro."""


class InvalidInputError(AnomalyMatchError, ValueError):
    """An argument has the wrong type, shape, unit or value."""


class ReadError(AnomalyMatchError, OSError):
    """A file the package reads (FITS, HDF5, Parquet, ECSV, JSON ...) is missing, truncated or corrupt."""


#: The former name of `ReadError` (FITS was the first format read); kept so that old code still works.
FITSReadError = ReadError


class OutputExistsError(InvalidInputError, FileExistsError):
    """An output already exists and was left as it was; pass ``overwrite=True`` (``--overwrite``) to replace it."""


class MissingWCSError(InvalidInputError):
    """An image has no usable celestial WCS."""


class NoOverlapError(InvalidInputError):
    """A requested position or cutout does not overlap an image at all."""


class BandMismatchError(InvalidInputError):
    """Band names or band order differ between two things that must agree."""


class UnknownIDError(AnomalyMatchError, KeyError):
    """One or more object ids are not in the CutoutSet or session.

    Attributes
    ----------
    ids : list of str
        The offending ids.
    """

    def __init__(self, message, ids=()):
        super().__init__(message)
        self.message = message
        self.ids = list(ids)

    def __str__(self):  # KeyError would add quotes around the message
        return self.message


class LabelError(InvalidInputError):
    """Labels are malformed: unknown words, duplicates, contradictions or an empty class.

    Attributes
    ----------
    ids : list of str
        The offending ids, where the problem is tied to ids.
    """

    def __init__(self, message, ids=()):
        super().__init__(message)
        self.ids = list(ids)


class CheckpointError(AnomalyMatchError, OSError):
    """A saved model is missing, tampered with, or does not fit the data it is applied to."""


class ArchiveError(AnomalyMatchError, OSError):
    """A remote archive or VO service failed, timed out or answered something unusable."""


class ServiceError(ArchiveError):
    """A VO service answered with an error document (e.g. an error VOTable)."""


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


class WriteError(AnomalyMatchError, OSError):
    """An output could not be written (disk full, read-only or missing folder...).

    What was being written is never left looking complete: the writers mark a
    result complete (or move it into place) only after the last byte is written.
    """


class MissingDependencyError(AnomalyMatchError, ImportError):
    """An optional dependency needed for this feature is not installed (the message names the pip extra)."""


class AnomalyMatchWarning(AstropyUserWarning):
    """Base class of every warning issued by anomalymatch_astro."""


class PartialOverlapWarning(AnomalyMatchWarning):
    """Some cutouts only partly overlap their image; the missing pixels are NaN."""


class NonFinitePixelsWarning(AnomalyMatchWarning):
    """Some pixels are NaN or infinite; they were masked and counted."""


class MissingZeroPointWarning(AnomalyMatchWarning):
    """A band's header has no usable zero point; its flux scale falls back to 1."""
