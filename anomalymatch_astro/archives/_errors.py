"""Errors of the archives subpackage (defined with the others in `anomalymatch_astro.utils.exceptions`)."""

from ..utils.exceptions import NoCoverageError

__all__ = ["NoCoverageError"]
