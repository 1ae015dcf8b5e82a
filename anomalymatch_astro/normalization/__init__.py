"""Normalisation the way astronomers do it: sky subtraction, asinh / log stretches, intervals, Lupton RGB."""

from ._background import BACKGROUNDS
from ._display import SKY_MODES, lupton_rgb, make_rgb
from ._photometry import PHOTOMETRY_KEYS, MissingZeroPointWarning, band_flux_scales
from ._stretch import INTERVALS, STRETCHES, Normalizer
from ._torch import normalize_tensor, tensor_supported

__all__ = [
    "Normalizer",
    "STRETCHES",
    "INTERVALS",
    "BACKGROUNDS",
    "normalize_tensor",
    "tensor_supported",
    "lupton_rgb",
    "make_rgb",
    "SKY_MODES",
    "band_flux_scales",
    "PHOTOMETRY_KEYS",
    "MissingZeroPointWarning",
]
