"""The FixMatch loss as a small pure function (Sohn et al. 2020; USB's split)."""

import torch
import torch.nn.functional as F

__all__ = ["fixmatch_loss"]


def fixmatch_loss(logits_l, targets_l, logits_u_weak, logits_u_strong, *, tau=0.95, lambda_u=1.0):
    """Supervised cross-entropy plus the confidence-masked pseudo-label loss.

    The weak view of each unlabelled image gives a hard pseudo-label when its
    largest softmax probability is at least ``tau``; the strong view is trained
    towards it.  No gradient flows through the weak view.

    Parameters
    ----------
    logits_l : `torch.Tensor`
        (B, K) logits of the labelled images.
    targets_l : `torch.Tensor`
        (B,) integer labels.
    logits_u_weak, logits_u_strong : `torch.Tensor`
        (U, K) logits of the weak and strong views of the unlabelled images.
    tau : float, optional
        Confidence threshold.
    lambda_u : float, optional
        Weight of the unsupervised term.

    Returns
    -------
    loss : `torch.Tensor`
        Scalar ``loss_x + lambda_u * loss_u``.
    stats : dict
        Floats: ``loss``, ``loss_x`` (supervised), ``loss_u`` (unsupervised),
        ``mask_rate`` (fraction of unlabelled images above ``tau``),
        ``pseudo_anomaly_rate`` (fraction of those pseudo-labelled class 1).

    Examples
    --------
    >>> import torch
    >>> from anomalymatch_astro.classifier import fixmatch_loss
    >>> loss, stats = fixmatch_loss(torch.zeros(2, 2), torch.tensor([0, 1]),
    ...                             torch.zeros(4, 2), torch.zeros(4, 2), tau=0.95, lambda_u=1.0)
    >>> round(float(loss), 4), stats["mask_rate"]
    (0.6931, 0.0)
    """
    loss_x = F.cross_entropy(logits_l, targets_l)
    if logits_u_weak.shape[0] == 0:
        loss_u = logits_l.sum() * 0.0
        mask_rate = 0.0
        pseudo_rate = 0.0
    else:
        with torch.no_grad():
            probs = torch.softmax(logits_u_weak.detach().float(), dim=-1)
            max_p, pseudo = probs.max(dim=-1)
            mask = (max_p >= tau).to(logits_u_strong.dtype)
        loss_u = (F.cross_entropy(logits_u_strong, pseudo, reduction="none") * mask).mean()
        mask_rate = float(mask.mean())
        n_mask = float(mask.sum())
        pseudo_rate = float(((pseudo == 1).to(mask.dtype) * mask).sum() / n_mask) if n_mask else 0.0
    loss = loss_x + lambda_u * loss_u
    stats = {
        "loss": float(loss.detach()),
        "loss_x": float(loss_x.detach()),
        "loss_u": float(loss_u.detach()),
        "mask_rate": mask_rate,
        "pseudo_anomaly_rate": pseudo_rate,
    }
    return loss, stats
