"""Cutouts: WCS-aware multi-band extraction from FITS images, and the `CutoutSet` container."""

from ._collection import CutoutSet, concatenate
from ._extract import make_cutouts, parse_positions
from ._io import ImageInput, parse_image, parse_images
from ._neighbours import mask_neighbours
from ._sizes import cutout_sizes, parse_pixel_scale
from ._validation import default_ids
from ._wcs import cutout_wcs

__all__ = [
    "CutoutSet",
    "concatenate",
    "default_ids",
    "make_cutouts",
    "cutout_wcs",
    "parse_positions",
    "ImageInput",
    "parse_image",
    "parse_images",
    "mask_neighbours",
    "cutout_sizes",
    "parse_pixel_scale",
]
