"""The installed version of the package (kept here so that every layer can read it without importing upward)."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("anomalymatch_astro")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
