"""Augmentations for sky images, in torch on float N-band batches (no PIL, no uint8).

The sky has no "up": the weak view is a random flip, a rotation by any angle and a
small shift, done in one `torch.nn.functional.affine_grid` /
`~torch.nn.functional.grid_sample` pass with reflection padding.  The strong view
adds RandAugment-style operations that make sense for science images: per-band
stretch, contrast and brightness jitter, gamma, Gaussian noise, a PSF-like blur,
sharpening, and a cutout square.  The strong ops run batched in few kernels: runs of the
per-band affine ops are composed into one multiply-add, the noise is one fused multiply-add,
blur and sharpen one grouped convolution each.  All randomness comes from an explicit
`torch.Generator`, so a seed fixes every view.

Inputs are batches (B, C, H, W) of normalised pixels (roughly in [0, 1], as made by
`~anomalymatch_astro.normalization.Normalizer`).
"""

import math

import torch
import torch.nn.functional as F

__all__ = ["weak_augment", "strong_augment", "STRONG_OPS"]


def _uniform(shape, lo, hi, generator, device):
    return (torch.rand(shape, generator=generator) * (hi - lo) + lo).to(device)


def weak_augment(x, *, generator=None, rotate=True, max_shift=0.0625, flip=True):
    """Random flip, rotation by any angle and shift of each image of a batch.

    Parameters
    ----------
    x : `torch.Tensor`
        (B, C, H, W) float batch.
    generator : `torch.Generator`, optional
        Source of randomness (CPU generator).
    rotate : bool, optional
        Rotate by a uniform random angle in [0, 360) degrees.
    max_shift : float, optional
        Largest shift as a fraction of the image size.
    flip : bool, optional
        Mirror half of the images.

    Returns
    -------
    `torch.Tensor`
        Same shape and dtype as ``x``.

    Examples
    --------
    >>> import torch
    >>> from anomalymatch_astro.classifier import weak_augment
    >>> g = torch.Generator().manual_seed(0)
    >>> weak_augment(torch.rand(2, 3, 16, 16), generator=g).shape
    torch.Size([2, 3, 16, 16])
    """
    b = x.shape[0]
    if b == 0:
        return x
    dev = x.device
    angle = _uniform((b,), 0.0, 2 * math.pi, generator, dev) if rotate else torch.zeros(b, device=dev)
    sign = (
        torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0).to(dev) if flip else torch.ones(b, device=dev)
    )
    shift = _uniform((b, 2), -2 * max_shift, 2 * max_shift, generator, dev)  # grid units span 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(b, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0] = cos * sign
    theta[:, 0, 1] = -sin
    theta[:, 1, 0] = sin * sign
    theta[:, 1, 1] = cos
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gaussian_blur(x, sigma, keep=None):
    """Blur each image with its own Gaussian sigma (B,) in pixels (separable, reflect padding).

    One grouped convolution per axis for the whole batch; images where ``keep`` (B,) is True
    get a delta kernel, i.e. come out unchanged.
    """
    b, c, h, w = x.shape
    radius = int(min(max(1, math.ceil(3 * float(sigma.max()))), (min(h, w) - 1) // 2 or 1))
    if keep is not None:
        sigma = torch.where(keep, 0.0, sigma)  # clamped to 1e-3 below: exp(-0.5 (t / 1e-3)^2) is a delta
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None, :] / sigma[:, None].clamp_min(1e-3)) ** 2)
    k = k / k.sum(1, keepdim=True)  # (B, K)
    k = k.repeat_interleave(c, 0)  # (B*C, K)
    y = x.reshape(1, b * c, h, w)
    mode = "reflect" if radius < min(h, w) else "replicate"
    y = F.pad(y, (radius, radius, 0, 0), mode=mode)
    y = F.conv2d(y, k[:, None, None, :], groups=b * c)
    y = F.pad(y, (0, 0, radius, radius), mode=mode)
    y = F.conv2d(y, k[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


def _op_brightness(x, m, g):
    b, c = x.shape[:2]
    return x + _uniform((b, c, 1, 1), -0.2 * m, 0.2 * m, g, x.device)


def _op_contrast(x, m, g):
    b, c = x.shape[:2]
    f = _uniform((b, c, 1, 1), 1 - 0.6 * m, 1 + 0.6 * m, g, x.device)
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * f + mean


def _op_band_scale(x, m, g):
    b, c = x.shape[:2]
    return x * _uniform((b, c, 1, 1), 1 - 0.4 * m, 1 + 0.4 * m, g, x.device)


def _op_gamma(x, m, g):
    b = x.shape[0]
    gamma = torch.exp(_uniform((b, 1, 1, 1), -0.7 * m, 0.7 * m, g, x.device))
    return x.clamp_min(0.0) ** gamma


def _op_noise(x, m, g):
    b = x.shape[0]
    sigma = _uniform((b, 1, 1, 1), 0.0, 0.15 * m, g, x.device)
    return x + sigma * torch.randn(x.shape, generator=g).to(x.device)


def _op_blur(x, m, g):
    sigma = _uniform((x.shape[0],), 0.3, 0.3 + 1.7 * m, g, x.device)
    return _gaussian_blur(x, sigma)


def _op_sharpen(x, m, g):
    b = x.shape[0]
    a = _uniform((b, 1, 1, 1), 0.0, 1.5 * m, g, x.device)
    blurred = _gaussian_blur(x, torch.full((b,), 1.0, device=x.device))
    return x + a * (x - blurred)


#: The strong operations, by name.
STRONG_OPS = {
    "brightness": _op_brightness,
    "contrast": _op_contrast,
    "band_scale": _op_band_scale,
    "gamma": _op_gamma,
    "noise": _op_noise,
    "blur": _op_blur,
    "sharpen": _op_sharpen,
}


def _cutout(x, frac, g):
    b, c, h, w = x.shape
    size_h, size_w = max(1, round(frac * h)), max(1, round(frac * w))
    cy = (torch.rand(b, generator=g) * h).floor().to(x.device)
    cx = (torch.rand(b, generator=g) * w).floor().to(x.device)
    yy = torch.arange(h, device=x.device)[None, :, None]
    xx = torch.arange(w, device=x.device)[None, None, :]
    inside = ((yy - cy[:, None, None]).abs() <= size_h / 2) & ((xx - cx[:, None, None]).abs() <= size_w / 2)
    fill = x.mean(dim=(2, 3), keepdim=True)
    return torch.where(inside[:, None], fill, x)


def strong_augment(x, *, generator=None, n_ops=2, magnitude=0.5, cutout=0.25, rotate=True, max_shift=0.0625):
    """The weak view plus ``n_ops`` random photometric / PSF ops per image and a cutout square.

    Parameters
    ----------
    x : `torch.Tensor`
        (B, C, H, W) float batch of normalised pixels.
    generator : `torch.Generator`, optional
        Source of randomness (CPU generator).
    n_ops : int, optional
        Ops drawn (without repetition) for each image from ``STRONG_OPS``.
    magnitude : float, optional
        Strength 0-1 of the ops.
    cutout : float, optional
        Side of the square filled with the image mean, as a fraction of the size.
    rotate, max_shift : optional
        Passed to `weak_augment`.

    Returns
    -------
    `torch.Tensor`
        Same shape and dtype, finite, clipped to [0, 1].

    Examples
    --------
    >>> import torch
    >>> from anomalymatch_astro.classifier import strong_augment
    >>> g = torch.Generator().manual_seed(0)
    >>> y = strong_augment(torch.rand(4, 2, 16, 16), generator=g)
    >>> y.shape, bool(torch.isfinite(y).all())
    (torch.Size([4, 2, 16, 16]), True)
    """
    x = weak_augment(x, generator=generator, rotate=rotate, max_shift=max_shift)
    b = x.shape[0]
    if b == 0:
        return x
    names = list(STRONG_OPS)
    n_ops = min(int(n_ops), len(names))
    if n_ops > 0:
        # each image picks n_ops distinct ops: the n_ops smallest of a random key per op
        keys = torch.rand(b, len(names), generator=generator)
        chosen = keys.argsort(dim=1)[:, :n_ops]
        picked = torch.zeros(b, len(names), dtype=torch.bool).scatter_(1, chosen, True).to(x.device)
        order = torch.randperm(len(names), generator=generator).tolist()
        x = _apply_ops(x, [(names[k], picked[:, k]) for k in order], magnitude, generator)
    x = x.clamp(0.0, 1.0)
    if cutout > 0:
        x = _cutout(x, cutout, generator)
    return x


def _apply_ops(x, ops, m, g):
    """The picked ops in order, each once on the whole batch (identity for images that did not pick it).

    Runs of the per-band affine ops (brightness, band scale, contrast) are composed into one
    scale and offset per image and band and applied in one pass; the noise is one fused
    multiply-add; blur and sharpen are one grouped convolution each (a delta kernel for the
    images that did not pick them).  The random draws are those of the `STRONG_OPS`, in order.
    """
    b, c = x.shape[:2]
    scale = offset = None  # pending x * scale + offset, per (image, band)
    mean0 = None

    def flush(x, scale, offset):
        return x if scale is None else torch.addcmul(offset, x, scale)

    for name, sel in ops:
        if not bool(sel.any()):
            continue
        s4 = sel[:, None, None, None]
        if name in ("brightness", "band_scale", "contrast"):
            if scale is None:
                scale = torch.ones(b, c, 1, 1, device=x.device, dtype=x.dtype)
                offset = torch.zeros_like(scale)
                mean0 = x.mean(dim=(2, 3), keepdim=True)
            if name == "brightness":
                offset = offset + torch.where(s4, _uniform((b, c, 1, 1), -0.2 * m, 0.2 * m, g, x.device), 0.0)
            elif name == "band_scale":
                f = torch.where(s4, _uniform((b, c, 1, 1), 1 - 0.4 * m, 1 + 0.4 * m, g, x.device), 1.0)
                scale, offset = scale * f, offset * f
            else:  # contrast about the current mean: x' = x f + mean (1 - f)
                f = torch.where(s4, _uniform((b, c, 1, 1), 1 - 0.6 * m, 1 + 0.6 * m, g, x.device), 1.0)
                mean = mean0 * scale + offset
                scale, offset = scale * f, offset * f + mean * (1 - f)
            continue
        x = flush(x, scale, offset)
        scale = offset = None
        if name == "gamma":
            gamma = torch.exp(_uniform((b, 1, 1, 1), -0.7 * m, 0.7 * m, g, x.device))
            x = torch.where(s4, x.clamp_min(0.0) ** gamma, x)
        elif name == "noise":
            sigma = torch.where(s4, _uniform((b, 1, 1, 1), 0.0, 0.15 * m, g, x.device), 0.0)
            x = torch.addcmul(x, sigma, torch.randn(x.shape, generator=g).to(x.device))
        elif name == "blur":
            sigma = _uniform((b,), 0.3, 0.3 + 1.7 * m, g, x.device)
            x = _gaussian_blur(x, sigma, keep=~sel)
        elif name == "sharpen":
            a = torch.where(s4, _uniform((b, 1, 1, 1), 0.0, 1.5 * m, g, x.device), 0.0)
            x = x + a * (x - _gaussian_blur(x, torch.full((b,), 1.0, device=x.device), keep=~sel))
        else:  # an op added to STRONG_OPS without a fused version
            x = torch.where(s4, STRONG_OPS[name](x, m, g), x)
    return flush(x, scale, offset)
