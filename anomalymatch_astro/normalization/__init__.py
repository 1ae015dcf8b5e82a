"""Normalisation the way astronomers do it: asinh / log stretches, zscale and percentile intervals, Lupton RGB."""

from ._display import lupton_rgb, make_rgb
from ._stretch import INTERVALS, STRETCHES, Normalizer

__all__ = ["Normalizer", "STRETCHES", "INTERVALS", "lupton_rgb", "make_rgb"]
