"""The `Normalizer` in torch: batched, on whatever device the tensor lives (CPU or GPU).

The same arithmetic as `Normalizer.__call__` (numpy), reproduced step by step so that the two
agree to float32 rounding:

* percentile limits as ``np.percentile`` / ``np.nanpercentile`` compute them ("linear" method:
  virtual index ``(n - 1) * q`` over the ``n`` finite pixels of the row, the two neighbouring
  order statistics, numpy's two-sided lerp in float64, rounded to float32); non-finite pixels
  are ignored, a row without a finite pixel gets the limits (0, 1), and ``hi <= lo`` becomes
  ``hi = lo + 1``;
* minmax limits over the finite pixels, (0, 1) without any, ``hi = lo + 1`` when flat;
* with ``background`` set: the sky of each cutout and band (`sky_levels_tensor`, the torch twin
  of the numpy `sky_levels`, same float64 algorithm) is subtracted in float32 first, the
  interval is found on the result, then ``lo = 0`` (the sky) and ``hi <= 0`` becomes ``hi = 1``;
* ``(x - lo) / (hi - lo)`` in float32, clipped to [0, 1] (+-inf become 0 or 1), NaN -> 0,
  then the stretch (asinh, log, sqrt, linear) with astropy's formulas.

The zscale interval (astropy's iterative line fit on a pixel sample) has no torch version:
`tensor_supported` is False for it and callers keep the numpy `Normalizer` there.  torch is
imported inside the functions, so importing `anomalymatch_astro.normalization` stays light.
"""

import math

import numpy as np

from ..utils.exceptions import InvalidInputError
from ._background import sky_levels_tensor
from ._stretch import Normalizer

__all__ = ["normalize_tensor", "tensor_supported"]

#: Intervals with an exact torch version.
TENSOR_INTERVALS = ("percentile", "minmax")


def tensor_supported(normalizer):
    """True when `normalize_tensor` reproduces ``normalizer`` (every option but ``interval="zscale"``).

    Every ``background`` option has a torch version; only the interval decides.

    Parameters
    ----------
    normalizer : `Normalizer` or dict
        The normaliser (or its `Normalizer.to_dict` settings).

    Returns
    -------
    bool

    Examples
    --------
    >>> from anomalymatch_astro.normalization import Normalizer, tensor_supported
    >>> tensor_supported(Normalizer()), tensor_supported(Normalizer(interval="zscale"))
    (True, False)
    >>> tensor_supported(Normalizer(background="annulus"))
    True
    """
    if isinstance(normalizer, dict):
        normalizer = Normalizer.from_dict(normalizer)
    return normalizer.interval in TENSOR_INTERVALS


def _bounds(normalizer):
    if isinstance(normalizer.percentile, tuple):
        lower, upper = normalizer.percentile
    else:
        lower = (100.0 - normalizer.percentile) / 2.0
        upper = 100.0 - lower
    # np.percentile divides the percentages by 100 in float64: so does Python
    return np.true_divide(lower, 100.0).item(), np.true_divide(upper, 100.0).item()


def _lerp(a, b, t):
    """Numpy's ``_lerp``: ``a + (b - a) t``, or ``b - (b - a)(1 - t)`` where ``t >= 0.5``; float64 result."""
    import torch

    diff = (b - a).double()  # float32 difference, as numpy takes it, then float64 arithmetic
    a64, b64 = a.double(), b.double()
    return torch.where(t >= 0.5, b64 - diff * (1 - t), a64 + diff * t)


def _percentile_limits(flat, normalizer):
    """(lo, hi) float32 of shape flat.shape[:-1], as ``Normalizer._percentile_limits``."""
    import torch

    n = flat.shape[-1]
    q_lo, q_hi = _bounds(normalizer)
    finite = torch.isfinite(flat)
    n_valid = finite.sum(-1)
    m1 = (n_valid - 1).clamp_min(0).double()
    # order-statistic positions (0-based, ascending) around each virtual index, per row
    v_lo, v_hi = m1 * q_lo, m1 * q_hi
    p_lo, p_hi = v_lo.floor(), v_hi.floor()
    g_lo, g_hi = v_lo - p_lo, v_hi - p_hi
    last = m1.long()
    i_lo0, i_hi0 = p_lo.long().clamp(max=last), p_hi.long().clamp(max=last)
    i_lo1, i_hi1 = (i_lo0 + 1).clamp(max=last), (i_hi0 + 1).clamp(max=last)
    # numpy takes the last value (gamma unchanged) when the index reaches n - 1
    k_bottom = min(n, math.floor((n - 1) * q_lo) + 2)
    k_top = min(n, math.ceil((n - 1) * (1.0 - q_hi)) + 2)
    clean = bool(finite.all())  # the usual case: no masking pass
    if k_bottom + k_top < n // 4:
        # tails only: the k smallest (non-finite -> +inf) and k largest (non-finite -> -inf)
        low = (flat if clean else torch.where(finite, flat, torch.inf)).topk(k_bottom, dim=-1, largest=False).values
        high = (flat if clean else torch.where(finite, flat, -torch.inf)).topk(k_top, dim=-1, largest=True).values
        top = last[..., None]  # position from the top of ascending index i: last - i
        a_lo, b_lo = low.gather(-1, i_lo0[..., None]), low.gather(-1, i_lo1[..., None])
        a_hi, b_hi = high.gather(-1, top - i_hi0[..., None]), high.gather(-1, top - i_hi1[..., None])
    else:
        ordered = (flat if clean else torch.where(finite, flat, torch.inf)).sort(dim=-1).values
        a_lo, b_lo = ordered.gather(-1, i_lo0[..., None]), ordered.gather(-1, i_lo1[..., None])
        a_hi, b_hi = ordered.gather(-1, i_hi0[..., None]), ordered.gather(-1, i_hi1[..., None])
    lo = _lerp(a_lo[..., 0], b_lo[..., 0], g_lo).float()
    hi = _lerp(a_hi[..., 0], b_hi[..., 0], g_hi).float()
    empty = n_valid == 0  # numpy fills such rows with 0: limits (0, 0), then hi = lo + 1
    lo = torch.where(empty, 0.0, lo)
    hi = torch.where(empty, 0.0, hi)
    return lo, hi


def _minmax_limits(flat):
    import torch

    finite = torch.isfinite(flat)
    lo = torch.where(finite, flat, torch.inf).amin(-1)
    hi = torch.where(finite, flat, -torch.inf).amax(-1)
    empty = ~finite.any(-1)
    return torch.where(empty, 0.0, lo), torch.where(empty, 1.0, hi)


def _stretch(out, normalizer):
    import torch

    a = normalizer.asinh_a  # ``out`` is in [0, 1] already: astropy's clip=True changes nothing
    if normalizer.stretch == "asinh":
        out = torch.asinh(out / a) / np.float32(np.arcsinh(1.0 / a))
    elif normalizer.stretch == "log":
        la = 1.0 / a if a < 1 else a
        out = torch.log(out * la + 1.0) / np.float32(np.log(la + 1.0))
    elif normalizer.stretch == "sqrt":
        out = torch.sqrt(out)
    return out


def normalize_tensor(x, normalizer):
    """`Normalizer` applied to a torch tensor, batched, on the tensor's device.

    Equal to ``normalizer(x.cpu().numpy())`` to float32 rounding, for every stretch, every
    ``background`` and every interval but ``"zscale"`` (see `tensor_supported`).

    Parameters
    ----------
    x : `torch.Tensor`
        Raw pixels (N, C, H, W), (C, H, W) or (H, W), any float dtype (computed in float32).
    normalizer : `Normalizer` or dict
        The normaliser (or its `Normalizer.to_dict` settings).

    Returns
    -------
    `torch.Tensor`
        float32 in [0, 1], the shape and device of ``x``.

    Raises
    ------
    InvalidInputError
        For ``interval="zscale"`` or more than 4 dimensions.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from anomalymatch_astro.normalization import Normalizer, normalize_tensor
    >>> x = np.random.default_rng(0).lognormal(size=(2, 3, 16, 16)).astype("f4")
    >>> norm = Normalizer(stretch="asinh", percentile=99.0)
    >>> y = normalize_tensor(torch.from_numpy(x), norm)
    >>> bool(np.allclose(y.numpy(), norm(x), atol=1e-6))
    True
    """
    import torch

    if isinstance(normalizer, dict):
        normalizer = Normalizer.from_dict(normalizer)
    if not tensor_supported(normalizer):
        msg = f"{normalizer!r} has no torch version (interval {normalizer.interval!r}); use the numpy Normalizer"
        raise InvalidInputError(msg)
    squeeze = 4 - x.ndim
    if squeeze < 0:
        msg = f"expected at most 4 dimensions (N, C, H, W), got shape {tuple(x.shape)}"
        raise InvalidInputError(msg)
    shape = x.shape
    batch = x.to(torch.float32).reshape((1,) * squeeze + tuple(shape))
    if batch.numel() == 0:
        return batch.reshape(shape).clone()
    if normalizer.background is not None:
        sky = sky_levels_tensor(
            batch, mode=normalizer.background, sigma=normalizer.background_sigma, annulus=normalizer.annulus
        )
        batch = batch - sky.to(torch.float32)[..., None, None]
    nb = batch.shape[1] if normalizer.per_band else 1
    flat = batch.reshape(batch.shape[0], nb, -1)
    if normalizer.interval == "percentile":
        lo, hi = _percentile_limits(flat, normalizer)
    else:
        lo, hi = _minmax_limits(flat)
    hi = torch.where(hi > lo, hi, lo + 1.0)
    if normalizer.background is not None:  # the sky is the bottom of the range
        lo = torch.zeros_like(lo)
        hi = torch.where(hi > 0, hi, 1.0)
    lo, hi = lo[..., None, None], hi[..., None, None]
    out = (batch - lo) / (hi - lo)
    out = torch.nan_to_num(out.clamp_(0.0, 1.0), nan=0.0)
    return _stretch(out, normalizer).reshape(shape)
