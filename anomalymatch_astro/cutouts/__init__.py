"""Cutouts: WCS-aware multi-band extraction from FITS images, and the `CutoutSet` container."""

from ._collection import CutoutSet, concatenate

__all__ = ["CutoutSet", "concatenate"]
