"""Training set-up of `AnomalyClassifier`: head initialisation, BatchNorm re-estimation, probe warm start."""

import logging

import numpy as np
import torch

from ._augment import weak_augment
from ._trainer import adapt_batchnorm

log = logging.getLogger(__name__)


def init_head_small(model, *, std):
    """Initialise the classifier head with small normal weights (``std``) and zero biases."""
    head = model.get_classifier()
    with torch.no_grad():
        torch.nn.init.normal_(head.weight, std=std)
        torch.nn.init.zeros_(head.bias)


def adapt_bn(clf, x_l, x_u, generator, *, n_batches=8):
    """Re-estimate the BatchNorm statistics of model and EMA on weak views of the training images."""
    pool = torch.cat([x_l, x_u]) if len(x_u) else x_l
    size = max(2, min(len(pool), clf.config.batch_size * (1 + clf.config.mu)))
    batches = []
    for _ in range(n_batches):
        idx = torch.randint(len(pool), (size,), generator=generator)
        v = weak_augment(
            pool[idx].to(clf.device),
            generator=generator,
            rotate=clf.config.weak_rotate,
            max_shift=clf.config.weak_shift,
        )
        batches.append(clf._standardize(v))
    adapt_batchnorm(clf.model, batches, momentum=clf.config.bn_momentum)
    clf.ema_model.load_state_dict(clf.model.state_dict())
    log.info("BatchNorm statistics re-estimated on %d training images", n_batches * size)


def probe_head(clf, x_l, y_l):
    """Fit a class-balanced logistic regression on frozen pooled features and copy it into the heads."""
    from sklearn.linear_model import LogisticRegression

    with torch.inference_mode():
        feats = [
            clf._features(clf.ema_model, x_l[i : i + 256].to(clf.device)).float().cpu() for i in range(0, len(x_l), 256)
        ]
    f = torch.cat(feats).numpy().astype(np.float64)
    y = y_l.numpy()
    mu = f.mean(0)
    sd = f.std(0) + 1e-3
    lr = LogisticRegression(C=clf.config.probe_c, class_weight="balanced", max_iter=2000)
    lr.fit((f - mu) / sd, y)
    w = lr.coef_[0] / sd
    b = float(lr.intercept_[0] - np.sum(lr.coef_[0] * mu / sd))
    z = f @ w + b
    scale = min(1.0, clf.config.probe_max_logit / max(float(np.abs(z).max()), 1e-12))
    weight = torch.tensor(np.stack([-w, w]) * scale / 2.0, dtype=torch.float32)
    bias = torch.tensor([-b * scale / 2.0, b * scale / 2.0], dtype=torch.float32)
    for model in (clf.model, clf.ema_model):
        head = model.get_classifier()
        with torch.no_grad():
            head.weight.copy_(weight.to(head.weight.device, head.weight.dtype))
            head.bias.copy_(bias.to(head.bias.device, head.bias.dtype))
    log.info("head warm-started from a linear probe (C=%g, scale %.3g)", clf.config.probe_c, scale)
