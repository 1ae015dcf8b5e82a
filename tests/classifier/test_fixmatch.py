import math

import torch

from anomalymatch_astro.classifier import fixmatch_loss


def test_mask_and_pseudo_labels():
    logits_l = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    targets = torch.tensor([0, 1])
    weak = torch.tensor([[5.0, 0.0], [0.0, 5.0], [0.1, 0.0], [0.0, 0.2]])  # two confident, two not
    strong = torch.zeros(4, 2, requires_grad=True)
    loss, stats = fixmatch_loss(logits_l, targets, weak, strong, tau=0.95, lambda_u=2.0)
    assert stats["mask_rate"] == 0.5
    assert stats["pseudo_anomaly_rate"] == 0.5
    sup = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert math.isclose(stats["loss_x"], sup, rel_tol=1e-5)
    # unconfident strong logits zero: CE = log 2 for the 2 masked-in rows, mean over 4
    assert math.isclose(stats["loss_u"], 2 * math.log(2) / 4, rel_tol=1e-5)
    assert math.isclose(float(loss.detach()), sup + 2.0 * stats["loss_u"], rel_tol=1e-5)
    loss.backward()
    # no gradient into the rows below tau, gradient pushes confident rows towards their pseudo-label
    assert torch.all(strong.grad[2:] == 0)
    assert strong.grad[0, 0] < 0 and strong.grad[1, 1] < 0


def test_no_gradient_through_weak_view():
    weak = torch.tensor([[5.0, 0.0]], requires_grad=True)
    loss, _ = fixmatch_loss(
        torch.zeros(1, 2, requires_grad=True),
        torch.tensor([0]),
        weak,
        torch.zeros(1, 2, requires_grad=True),
        tau=0.5,
        lambda_u=1.0,
    )
    loss.backward()
    assert weak.grad is None


def test_empty_unlabelled_batch():
    loss, stats = fixmatch_loss(
        torch.zeros(2, 2), torch.tensor([0, 1]), torch.zeros(0, 2), torch.zeros(0, 2), tau=0.95, lambda_u=1.0
    )
    assert stats["mask_rate"] == 0.0 and math.isclose(float(loss), math.log(2), rel_tol=1e-6)
