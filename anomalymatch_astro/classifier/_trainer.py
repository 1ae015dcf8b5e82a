"""The FixMatch training loop; EMA, history/logging and checkpoints are callbacks.

The loop only samples batches, augments them, runs the network and steps the
optimiser; the loss is `~anomalymatch_astro.classifier.fixmatch_loss` and anything
else that happens around a step is a `Callback`.
"""

import logging
import math

import torch

from ..utils import progress_bar
from ._augment import strong_augment, weak_augment
from ._fixmatch import fixmatch_loss

__all__ = [
    "Callback",
    "EMACallback",
    "HistoryCallback",
    "CheckpointCallback",
    "FixMatchTrainer",
    "make_optimizer",
    "adapt_batchnorm",
]

log = logging.getLogger(__name__)


class Callback:
    """Base class of trainer callbacks; override any of the hooks.

    The hooks get the `FixMatchTrainer`, whose ``model``, ``ema_model``,
    ``optimizer``, ``config`` and ``step`` they may read (and the EMA callback
    writes).
    """

    def on_train_begin(self, trainer):
        """Called once before the first step."""

    def on_step_end(self, trainer, step, stats):
        """Called after every optimiser step with the step number (from 1) and the loss stats."""

    def on_train_end(self, trainer):
        """Called once after the last step."""


class EMACallback(Callback):
    """Keep ``trainer.ema_model`` an exponential moving average of ``trainer.model``.

    Parameters are averaged with ``decay``; buffers (BatchNorm running statistics)
    are copied, as in FixMatch / USB.
    """

    def __init__(self, decay):
        self.decay = float(decay)

    @torch.no_grad()
    def on_step_end(self, trainer, step, stats):
        d = self.decay
        for ema_p, p in zip(trainer.ema_model.parameters(), trainer.model.parameters()):
            ema_p.mul_(d).add_(p.detach(), alpha=1.0 - d)
        for ema_b, b in zip(trainer.ema_model.buffers(), trainer.model.buffers()):
            ema_b.copy_(b)


class HistoryCallback(Callback):
    """Append each step's stats (with ``step`` and ``lr``) to a list; log every ``log_every`` steps."""

    def __init__(self, history, *, log_every=10):
        self.history = history
        self.log_every = max(1, int(log_every))

    def on_step_end(self, trainer, step, stats):
        row = {"step": int(step), "lr": float(trainer.optimizer.param_groups[0]["lr"]), **stats}
        self.history.append(row)
        if step % self.log_every == 0 or step == trainer.iterations:
            log.info(
                "step %d/%d loss %.4f (sup %.4f, unsup %.4f) mask rate %.3f",
                step,
                trainer.iterations,
                stats["loss"],
                stats["loss_x"],
                stats["loss_u"],
                stats["mask_rate"],
            )


class CheckpointCallback(Callback):
    """Save the classifier to ``path`` every ``every`` steps and at the end of training.

    Parameters
    ----------
    classifier : AnomalyClassifier
        The classifier being trained (its `~AnomalyClassifier.save` is called).
    path : str or os.PathLike
        Checkpoint directory (overwritten each time).
    every : int, optional
        Steps between checkpoints.
    """

    def __init__(self, classifier, path, *, every=50):
        self.classifier = classifier
        self.path = path
        self.every = max(1, int(every))

    def on_step_end(self, trainer, step, stats):
        if step % self.every == 0 and step != trainer.iterations:
            self.classifier.save(self.path, overwrite=True)

    def on_train_end(self, trainer):
        self.classifier.save(self.path, overwrite=True)


def make_optimizer(model, config):
    """SGD (Nesterov) with weight decay only on conv/linear weights, and a lower backbone learning rate.

    The head learns at ``config.lr`` (times ``config.probe_lr_factor`` when it is
    warm-started from a probe), the backbone ``config.backbone_lr_factor`` times slower.
    """
    head_ids = {id(p) for p in model.get_classifier().parameters()}
    groups = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        is_head = id(p) in head_ids
        decay = p.ndim > 1
        key = (is_head, decay)
        groups.setdefault(key, []).append(p)
    param_groups = []
    base = config.lr * (config.probe_lr_factor if config.head_init == "probe" else 1.0)
    for (is_head, decay), params in sorted(groups.items(), key=lambda kv: (not kv[0][0], not kv[0][1])):
        lr = base if is_head else base * config.backbone_lr_factor
        param_groups.append(
            {"params": params, "lr": lr, "initial_lr": lr, "weight_decay": config.weight_decay if decay else 0.0}
        )
    return torch.optim.SGD(param_groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)


@torch.no_grad()
def adapt_batchnorm(model, batches, *, momentum):
    """Re-estimate every BatchNorm's running statistics on ``batches``, then set ``momentum``.

    Parameters
    ----------
    model : torch.nn.Module
    batches : iterable of `torch.Tensor`
        Network inputs.
    momentum : float
        The BatchNorm momentum to leave in place afterwards (PyTorch convention).
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for x in batches:
        model(x)
    for m in bns:
        m.momentum = float(momentum)
    model.train(was_training)
    return len(bns)


class FixMatchTrainer:
    """Run FixMatch steps on prepared tensors.

    Parameters
    ----------
    model, ema_model : torch.nn.Module
        The trained network and its EMA copy (same architecture).
    config : ClassifierConfig
        Hyper-parameters.
    standardize : callable
        Maps a batch of normalised pixels (B, C, S, S) to the network input
        (mean/std of the pretrained weights).
    generator : `torch.Generator`
        All sampling and augmentation randomness.
    device : torch.device
        Where the network runs.
    """

    def __init__(self, model, ema_model, config, *, standardize, generator, device):
        self.model = model
        self.ema_model = ema_model
        self.config = config
        self.standardize = standardize
        self.generator = generator
        self.device = device
        self.optimizer = make_optimizer(model, config)
        self.step = 0
        self.iterations = 0

    def _sample_labelled(self, y):
        counts = torch.bincount(y, minlength=2).clamp_min(1).float()
        weights = (1.0 / counts)[y]
        return torch.multinomial(weights, self.config.batch_size, replacement=True, generator=self.generator)

    def _set_lr(self, k):
        factor = math.cos(7.0 * math.pi * k / (16.0 * max(1, self.iterations)))
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor

    def fit(self, x_l, y_l, x_u, *, iterations, callbacks=(), progress=True):
        """Train for ``iterations`` steps.

        Parameters
        ----------
        x_l : `torch.Tensor`
            (L, C, S, S) normalised labelled images (CPU).
        y_l : `torch.Tensor`
            (L,) int64 labels, 1 = anomaly.
        x_u : `torch.Tensor`
            (U, C, S, S) normalised unlabelled images (CPU); may be empty.
        iterations : int
            Number of steps.
        callbacks : sequence of Callback
            Called around the steps.
        progress : bool
            Show a progress bar.
        """
        cfg = self.config
        g = self.generator
        self.iterations = int(iterations)
        callbacks = list(callbacks)
        for cb in callbacks:
            cb.on_train_begin(self)
        self.model.train()
        if cfg.bn_mode == "frozen":
            for module in self.model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        n_u = int(cfg.mu * cfg.batch_size) if len(x_u) else 0
        bar = progress_bar(
            range(1, self.iterations + 1), total=self.iterations, desc="FixMatch", progress=progress, unit="step"
        )
        for k in bar:
            self._set_lr(k - 1)
            idx = self._sample_labelled(y_l)
            xl = weak_augment(x_l[idx].to(self.device), generator=g, rotate=cfg.weak_rotate, max_shift=cfg.weak_shift)
            yl = y_l[idx].to(self.device)
            parts = [xl]
            if n_u:
                uidx = torch.randint(len(x_u), (n_u,), generator=g)
                xu = x_u[uidx].to(self.device)
                parts.append(weak_augment(xu, generator=g, rotate=cfg.weak_rotate, max_shift=cfg.weak_shift))
                parts.append(
                    strong_augment(
                        xu,
                        generator=g,
                        n_ops=cfg.strong_ops,
                        magnitude=cfg.strong_magnitude,
                        cutout=cfg.cutout,
                        rotate=cfg.weak_rotate,
                        max_shift=cfg.weak_shift,
                    )
                )
            logits = self.model(self.standardize(torch.cat(parts)))
            logits_l = logits[: len(idx)]
            logits_w, logits_s = logits[len(idx) : len(idx) + n_u], logits[len(idx) + n_u :]
            loss, stats = fixmatch_loss(logits_l, yl, logits_w, logits_s, tau=cfg.tau, lambda_u=cfg.lambda_u)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            for cb in callbacks:
                cb.on_step_end(self, k, stats)
            if progress:
                bar.set_postfix(loss=f"{stats['loss']:.3f}", mask=f"{stats['mask_rate']:.2f}")
        bar.close()
        self.model.eval()
        for cb in callbacks:
            cb.on_train_end(self)
        return self
