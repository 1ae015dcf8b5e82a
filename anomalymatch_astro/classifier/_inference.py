"""The classifier's inference path: input checks, batch preparation, the device context, prediction.

Pixels flow float32 all the way: raw CutoutSet pixels -> the `Normalizer`, in torch on the
model's device (each cutout on its own, to [0, 1]) -> resize to ``image_size`` (antialiased
bilinear, on tensors) -> the mean/std the pretrained weights expect -> the network.
``AnomalyClassifier.score`` and the scoring layer (``score_cutouts``, ``score_images``, the
Dask backend) all prepare batches with ``prepare_batch`` and predict inside
``AnomalyClassifier.inference``, so every route gives the same scores.
"""

import contextlib
import json
import logging
import math

import numpy as np

from ..normalization import Normalizer, normalize_tensor, tensor_supported
from ..utils import progress_bar
from ..utils.exceptions import BandMismatchError, CheckpointError, InvalidInputError

__all__ = ["prepare_batch"]

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def prepare_batch(pixels, *, normalizer, image_size, normalized=False, device=None):
    """Normalise and resize a (n, C, H, W) batch into a float32 torch tensor (n, C, S, S).

    Exactly what `~anomalymatch_astro.classifier.AnomalyClassifier` does before its network
    (see `~anomalymatch_astro.classifier.AnomalyClassifier.prepare_batch`); a free function
    so that it can run without the model.  The normalisation and the resize run batched in
    torch (`~anomalymatch_astro.normalization.normalize_tensor`) on ``device``: loader workers
    only read raw pixels, and the device does the arithmetic.  A normaliser without a torch
    version (``interval="zscale"``) runs the numpy `~anomalymatch_astro.normalization.Normalizer`
    on the CPU instead (logged once), so scores never change with the route.

    Parameters
    ----------
    pixels : `numpy.ndarray` or `torch.Tensor`
        Raw cutout pixels, float32 or the stored dtype.
    normalizer : `~anomalymatch_astro.normalization.Normalizer` or dict
        The classifier's normaliser.
    image_size : int
        Network input size.
    normalized : bool, optional
        The pixels were already normalised (skip the normaliser).
    device : str or `torch.device`, optional
        Where the work runs and the result lives (default: the CPU).

    Returns
    -------
    `torch.Tensor`
        float32 (n, C, image_size, image_size), on ``device``.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro.classifier import prepare_batch
    >>> from anomalymatch_astro.normalization import Normalizer
    >>> x = prepare_batch(np.ones((2, 1, 20, 20), "f4"), normalizer=Normalizer(), image_size=16)
    >>> tuple(x.shape)
    (2, 1, 16, 16)
    """
    import torch
    import torch.nn.functional as F

    if isinstance(normalizer, dict):
        normalizer = Normalizer.from_dict(normalizer)
    device = torch.device("cpu") if device is None else torch.device(device)
    on_device = normalized or tensor_supported(normalizer)
    if not on_device:
        _log_numpy_fallback(normalizer)
        pixels = normalizer(pixels.cpu().numpy() if isinstance(pixels, torch.Tensor) else pixels)
    if isinstance(pixels, torch.Tensor):
        x = pixels
    else:
        x = torch.from_numpy(np.ascontiguousarray(pixels))
    x = x.to(device, non_blocking=True)
    if on_device and not normalized:
        x = normalize_tensor(x, normalizer)
    x = x.to(torch.float32)
    if tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return x


_FALLBACK_LOGGED = set()


def _log_numpy_fallback(normalizer):
    key = normalizer.to_json()
    if key not in _FALLBACK_LOGGED:
        _FALLBACK_LOGGED.add(key)
        log.info("%r has no torch version: normalising with numpy on the CPU (same scores, slower)", normalizer)


def is_normalized(cutouts):
    """True when ``cutouts`` record that their pixels are normalised already."""
    return (cutouts.meta or {}).get("normalizer") is not None


def check_bands(clf, bands):
    """Raise `BandMismatchError` unless ``bands`` are the model's bands, in order."""
    if tuple(bands) != tuple(clf.bands):
        msg = (
            f"the cutouts have bands {list(bands)} but the model was trained on {list(clf.bands)} "
            "(names and order must agree); make the cutouts with the same bands in the same order"
        )
        raise BandMismatchError(msg)


def check_cutouts(clf, cutouts):
    """Bands, normalisation and size of ``cutouts`` against the model."""
    check_bands(clf, cutouts.bands)
    recorded = (cutouts.meta or {}).get("normalizer")
    if recorded is not None:
        try:
            settings = recorded if isinstance(recorded, dict) else json.loads(recorded)
            theirs = Normalizer.from_dict(settings)
        except (InvalidInputError, ValueError, TypeError) as exc:
            msg = f"the cutouts record an unreadable normalisation {recorded!r}: {exc}"
            raise CheckpointError(msg) from exc
        if theirs != clf.normalizer:
            msg = (
                f"the cutouts were normalised with {theirs!r} but the model expects {clf.normalizer!r}; "
                "use the raw cutouts (the model normalises them itself) or retrain"
            )
            raise CheckpointError(msg)
    if clf.cutout_shape is not None and tuple(cutouts.image_shape) != tuple(clf.cutout_shape):
        if clf.config.strict_size:
            msg = (
                f"the cutouts are {cutouts.image_shape} pixels but the model was trained on "
                f"{tuple(clf.cutout_shape)} and strict_size=True; make cutouts of the training size"
            )
            raise CheckpointError(msg)
        log.info(
            "cutouts of %s pixels (model trained on %s) are resized to %d x %d",
            cutouts.image_shape,
            tuple(clf.cutout_shape),
            clf.image_size,
            clf.image_size,
        )


def standardize(x, mean, std):
    """Subtract the per-channel ``mean`` and divide by ``std`` (the pretrained weights' statistics)."""
    import torch

    mean = torch.tensor(mean, device=x.device, dtype=x.dtype)[None, :, None, None]
    std = torch.tensor(std, device=x.device, dtype=x.dtype)[None, :, None, None]
    return (x - mean) / std


def stage_indices(model, stages):
    """Validated, non-negative timm ``feature_info`` indices of ``stages``."""
    info = getattr(model, "feature_info", None)
    if info is None or not hasattr(model, "forward_intermediates"):
        msg = (
            f"the backbone {type(model).__name__} does not expose its feature stages "
            "(timm forward_intermediates); use stages=()"
        )
        raise InvalidInputError(msg)
    n = len(info)
    out = []
    for s in stages:
        if not isinstance(s, (int, np.integer)) or not -n <= int(s) < n:
            msg = f"feature stages must be integers in [{-n}, {n - 1}] for this backbone, got {s!r}"
            raise InvalidInputError(msg)
        out.append(int(s) % n)
    return out


def features(clf, model, x, *, stages=()):
    """Pooled head features of ``model`` on a prepared batch, plus the pooled maps of ``stages``."""
    import torch

    x = standardize(x, clf.mean, clf.std)
    if not stages:
        return model.forward_head(model.forward_features(x), pre_logits=True)
    # one pass: the last feature map (for the pooled head features) and the chosen stages
    final, maps = model.forward_intermediates(x, indices=stage_indices(model, stages))
    pooled = [model.forward_head(final, pre_logits=True)] + [m.mean(dim=(2, 3)) for m in maps]
    return torch.cat([p.float() for p in pooled], dim=1)


def predict_probs(clf, model, x):
    """P(anomaly) of ``model`` on a prepared batch on its device, averaged over the test-time views."""
    import torch

    views = [x]
    if clf.config.tta >= 4:
        views = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
    if clf.config.tta == 8:
        views += [torch.flip(v, dims=(3,)) for v in views]
    probs = 0.0
    for v in views:
        probs = probs + torch.softmax(model(standardize(v, clf.mean, clf.std)).float(), dim=-1)[:, 1]
    return probs / len(views)


@contextlib.contextmanager
def inference(clf, *, precision="auto", channels_last=None, compile=False):
    """The device settings of every scoring route; yields ``predict(batch) -> P(anomaly)``.

    See ``AnomalyClassifier.inference``.
    """
    import torch

    if clf.ema_model is None:
        msg = "the classifier is not trained; call fit() or AnomalyClassifier.load() first"
        raise InvalidInputError(msg)
    if precision not in PRECISIONS:
        msg = f"precision must be 'auto', 'bf16', 'fp16' or 'fp32', got {precision!r}"
        raise InvalidInputError(msg)
    device = clf.device
    use_cuda = device.type == "cuda"
    if channels_last is None:
        channels_last = use_cuda
    if precision == "auto":
        precision = "bf16" if use_cuda else "fp32"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    model = clf.ema_model
    model.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if compile else model

    def predict(x):
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if dtype is None:
            return predict_probs(clf, net, x)
        with torch.autocast(device_type=device.type, dtype=dtype):
            return predict_probs(clf, net, x)

    try:
        with torch.inference_mode():
            yield predict
    finally:
        if channels_last:
            model.to(memory_format=torch.contiguous_format)


def score_set(clf, cutouts, *, batch_size, precision, channels_last, progress):
    """``AnomalyClassifier.score``: batches of ``cutouts`` through ``prepare_batch`` and ``inference``."""
    if clf.model is None:
        msg = "the classifier is not trained; call fit() (or AnomalyClassifier.load) before score()"
        raise InvalidInputError(msg)
    check_cutouts(clf, cutouts)
    normalized = is_normalized(cutouts)
    out = np.empty(len(cutouts), dtype=np.float64)
    n_batches = math.ceil(len(cutouts) / batch_size)
    batches = progress_bar(
        cutouts.iter_batches(batch_size=batch_size), total=n_batches, desc="scoring", progress=progress, unit="batch"
    )
    with clf.inference(precision=precision, channels_last=channels_last) as predict:
        for rows, pix in batches:
            x = prepare_batch(
                pix, normalizer=clf.normalizer, image_size=clf.image_size, normalized=normalized, device=clf.device
            )
            out[rows] = predict(x).float().cpu().numpy()
    return out


def embed_set(clf, cutouts, *, batch_size, stages):
    """``AnomalyClassifier.embed``: pooled features of the EMA model, in float32 arithmetic."""
    import torch

    check_cutouts(clf, cutouts)
    normalized = is_normalized(cutouts)
    model = clf.ema_model
    model.eval()
    parts = []
    with torch.inference_mode():
        for _, pix in cutouts.iter_batches(batch_size=batch_size):
            x = prepare_batch(
                pix, normalizer=clf.normalizer, image_size=clf.image_size, normalized=normalized, device=clf.device
            )
            parts.append(features(clf, model, x, stages=stages).float().cpu().numpy())
    if not parts:
        return np.zeros((0, sum(clf.feature_widths(stages=stages))), np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)
