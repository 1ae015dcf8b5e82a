import numpy as np
import pytest
import torch

from anomalymatch_astro.classifier import STRONG_OPS, strong_augment, weak_augment


def _batch(seed=0, b=6, c=3, s=24):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(b, c, s, s)
    yy, xx = torch.meshgrid(torch.arange(s) - (s - 1) / 2, torch.arange(s) - (s - 1) / 2, indexing="ij")
    blob = torch.exp(-0.5 * (yy**2 + (xx / 1.5) ** 2) / 1.5**2)
    x[:] = blob
    return x * torch.rand(b, c, 1, 1, generator=g)


@pytest.mark.parametrize("fn", [weak_augment, strong_augment])
def test_shape_dtype_finite(fn):
    x = _batch()
    y = fn(x, generator=torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    assert not torch.equal(x, y)


def test_strong_stays_in_unit_range_and_each_op_is_finite():
    x = _batch()
    y = strong_augment(x, generator=torch.Generator().manual_seed(2), n_ops=3, magnitude=1.0)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    for name, op in STRONG_OPS.items():
        out = op(x, 1.0, torch.Generator().manual_seed(3))
        assert out.shape == x.shape and torch.isfinite(out).all(), name


def test_rotation_preserves_flux_and_seed_reproducible():
    x = _batch()
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    y = weak_augment(x, generator=g1, max_shift=0.0)
    np.testing.assert_allclose(y.sum(dim=(2, 3)), x.sum(dim=(2, 3)), rtol=0.03)
    assert torch.equal(y, weak_augment(x, generator=g2, max_shift=0.0))
    # the elongated blob really turned: its second moments changed for most images
    yy = (torch.arange(24) - 11.5)[:, None]
    frac_y = lambda im: float((im * yy**2).sum() / im.sum())  # noqa: E731
    turned = sum(abs(frac_y(y[i, 0]) - frac_y(x[i, 0])) > 0.5 for i in range(len(x)))
    assert turned >= len(x) // 2


def test_works_for_any_number_of_bands():
    x = torch.rand(3, 5, 16, 16)
    assert strong_augment(x, generator=torch.Generator().manual_seed(0)).shape == (3, 5, 16, 16)
    assert weak_augment(torch.rand(0, 1, 16, 16)).shape == (0, 1, 16, 16)


def _per_op_reference(x, generator, n_ops, magnitude):
    """The strong view op by op (each op on the whole batch, then a select), as it was first written."""
    from anomalymatch_astro.classifier._augment import _cutout

    x = weak_augment(x, generator=generator)
    names = list(STRONG_OPS)
    keys = torch.rand(x.shape[0], len(names), generator=generator)
    picked = torch.zeros(x.shape[0], len(names), dtype=torch.bool).scatter_(1, keys.argsort(dim=1)[:, :n_ops], True)
    for k in torch.randperm(len(names), generator=generator).tolist():
        if picked[:, k].any():
            x = torch.where(picked[:, k, None, None, None], STRONG_OPS[names[k]](x, magnitude, generator), x)
    return _cutout(x.clamp(0.0, 1.0), 0.25, generator)


@pytest.mark.parametrize("n_ops", [1, 2, 3, 7])
def test_batched_strong_view_equals_op_by_op(n_ops):
    """Same seed, same transforms: the fused kernels draw the same numbers and give the same images."""
    x = torch.rand(32, 3, 20, 20)
    for seed in range(4):
        got = strong_augment(x, generator=torch.Generator().manual_seed(seed), n_ops=n_ops, magnitude=0.8)
        ref = _per_op_reference(x, torch.Generator().manual_seed(seed), n_ops, 0.8)
        torch.testing.assert_close(got, ref, rtol=0, atol=2e-6)
        again = strong_augment(x, generator=torch.Generator().manual_seed(seed), n_ops=n_ops, magnitude=0.8)
        assert torch.equal(got, again)
