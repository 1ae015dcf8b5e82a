"""Normalisation the way astronomers do it: asinh / log stretches, zscale and percentile intervals, Lupton RGB."""

from ._display import lupton_rgb, make_rgb
from ._stretch import INTERVALS, STRETCHES, Normalizer
from ._torch import normalize_tensor, tensor_supported

__all__ = ["Normalizer", "STRETCHES", "INTERVALS", "normalize_tensor", "tensor_supported", "lupton_rgb", "make_rgb"]
