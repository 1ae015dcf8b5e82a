"""The pixel preparation of the classifier as a free function, so loader workers can run it."""

import numpy as np

from ..normalization import Normalizer

__all__ = ["prepare_batch"]


def prepare_batch(pixels, *, normalizer, image_size, normalized=False):
    """Normalise and resize a float32 (n, C, H, W) batch into a torch tensor (n, C, S, S).

    Exactly what `~anomalymatch_astro.AnomalyClassifier` does before its network, so scores
    computed from loader workers equal `AnomalyClassifier.score`.

    Parameters
    ----------
    pixels : `numpy.ndarray`
        Raw cutout pixels.
    normalizer : `~anomalymatch_astro.normalization.Normalizer` or dict
        The classifier's normaliser.
    image_size : int
        Network input size.
    normalized : bool, optional
        The pixels were already normalised (skip the normaliser).

    Returns
    -------
    `torch.Tensor`
    """
    import torch
    import torch.nn.functional as F

    if isinstance(normalizer, dict):
        normalizer = Normalizer.from_dict(normalizer)
    if not normalized:
        pixels = normalizer(pixels)
    x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
    if tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return x
