"""`ClassifierConfig`: every training and scoring hyper-parameter in one frozen dataclass.

The config is saved in every checkpoint (``config.json``) and in the metadata of
score tables, so a result always says how it was made.
"""

import dataclasses
import json
from dataclasses import dataclass

from ..utils.exceptions import InvalidInputError

__all__ = ["ClassifierConfig"]

_HEAD_INITS = ("probe", "small")
_BN_MODES = ("adapt", "frozen", "train")


@dataclass(frozen=True)
class ClassifierConfig:
    """Hyper-parameters of the FixMatch anomaly classifier.

    The defaults follow AnomalyMatch / FixMatch (SGD with Nesterov momentum,
    tau 0.95, lambda_u 1, mu 5, 16 labelled images per batch, EMA 0.99), plus a
    warm start of the 2-class head from a linear probe, which makes short runs
    on few labels at least as good as the probe.

    Parameters
    ----------
    iterations : int
        Default number of FixMatch steps of `AnomalyClassifier.fit`.
    batch_size : int
        Labelled images per step (drawn class-balanced, so the few anomalies
        are oversampled).
    mu : int
        Unlabelled images per labelled image in a step (each seen weakly and
        strongly augmented).
    tau : float
        Confidence threshold for a pseudo-label (max softmax of the weak view).
    lambda_u : float
        Weight of the unsupervised (pseudo-label) loss.
    lr : float
        Learning rate of the head (SGD, cosine decay to ``cos(7 pi / 16)`` of it).
    backbone_lr_factor : float
        The backbone learns at ``lr * backbone_lr_factor``.
    probe_lr_factor : float
        With a probe warm-started head (``head_init="probe"``) all learning rates
        are multiplied by this: the head is already good and is fine-tuned, not
        learnt from scratch (measured on digits: 0.0075 on the head undoes the
        probe in a few steps, 0.00075 improves on it).
    momentum : float
        SGD momentum (Nesterov).
    nesterov : bool
        Use Nesterov momentum.
    weight_decay : float
        L2 weight decay on conv / linear weights only (never on BatchNorm
        parameters or biases).
    ema_decay : float
        Decay of the exponential moving average of the weights; the EMA model is
        the one that scores and embeds.
    bn_momentum : float
        Momentum of every BatchNorm layer, in **PyTorch's convention**:
        ``running = (1 - m) * running + m * batch``.  0.01 here is TensorFlow's /
        Keras's 0.99.
    bn_mode : {"frozen", "adapt", "train"}
        How BatchNorm statistics are treated.  ``"frozen"`` (default) keeps
        every BatchNorm layer in evaluation mode while training (the pretrained
        running statistics stay fixed, so the probe-initialised head sees the
        same features in training and scoring; the affine parameters are still
        learnt); ``"adapt"`` re-estimates the
        running statistics of the pretrained backbone on the training images
        (weak views) before training, so that the features seen in training and
        in scoring agree, then trains as usual (``bn_momentum``); ``"train"`` is plain PyTorch
        training (``bn_momentum``).
    head_init : {"probe", "small"}
        ``"probe"`` warm-starts the 2-class head from a class-balanced logistic
        regression on frozen pooled features of the labelled images;
        ``"small"`` initialises it with tiny random weights (std
        ``head_init_std``) and zero bias, so that at step 0 hardly any
        unlabelled image passes ``tau``.
    head_init_std : float
        Std of the weights of a ``"small"`` head.
    probe_c : float
        Inverse L2 regularisation strength of the probe (on standardised features).
    probe_max_logit : float
        The probe head is scaled down (never up) so that the largest absolute
        logit difference on the labelled images is at most this, keeping the
        warm-started head calibrated (pseudo-labels not all at p=1).
    weak_shift : float
        Largest random shift of the weak augmentation, as a fraction of the size.
    weak_rotate : bool
        Rotate weak views by any angle (the sky has no up).
    strong_ops : int
        Number of random photometric / PSF ops per strong view (RandAugment N).
    strong_magnitude : float
        Strength of the strong ops, 0-1 (RandAugment M).
    cutout : float
        Side of the cutout square of a strong view, as a fraction of the size
        (0 disables it).
    tta : int
        Test-time augmentation when scoring: 1 (none), 4 (the four 90 degree
        rotations) or 8 (rotations and their mirror images); probabilities are
        averaged.
    max_unlabeled : int
        At most this many unlabelled images (a seeded random subset) are
        prepared for training; the rest are not used.
    strict_size : bool
        If true, applying the model to cutouts of another size than it was
        trained on fails instead of resizing them.
    drop_rate : float
        Dropout before the head.

    Examples
    --------
    >>> from anomalymatch_astro.classifier import ClassifierConfig
    >>> cfg = ClassifierConfig(iterations=50)
    >>> cfg.tau, cfg.bn_momentum
    (0.95, 0.01)
    >>> ClassifierConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    iterations: int = 100
    batch_size: int = 16
    mu: int = 5
    tau: float = 0.95
    lambda_u: float = 1.0
    lr: float = 0.0075
    backbone_lr_factor: float = 0.1
    probe_lr_factor: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 7.5e-4
    ema_decay: float = 0.99
    bn_momentum: float = 0.01
    bn_mode: str = "frozen"
    head_init: str = "probe"
    head_init_std: float = 0.01
    probe_c: float = 1.0
    probe_max_logit: float = 4.0
    weak_shift: float = 0.0625
    weak_rotate: bool = True
    strong_ops: int = 2
    strong_magnitude: float = 0.5
    cutout: float = 0.25
    tta: int = 1
    max_unlabeled: int = 20000
    strict_size: bool = False
    drop_rate: float = 0.0

    def __post_init__(self):
        checks = [
            (self.iterations >= 0, "iterations must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.mu >= 0, "mu must be >= 0"),
            (0.0 < self.tau <= 1.0, "tau must be in (0, 1]"),
            (self.lambda_u >= 0, "lambda_u must be >= 0"),
            (
                self.lr >= 0 and self.backbone_lr_factor >= 0 and self.probe_lr_factor >= 0,
                "lr, backbone_lr_factor and probe_lr_factor must be >= 0",
            ),
            (0.0 <= self.ema_decay < 1.0, "ema_decay must be in [0, 1)"),
            (
                0.0 < self.bn_momentum <= 1.0,
                "bn_momentum must be in (0, 1] (PyTorch convention: 0.01 == TensorFlow's 0.99)",
            ),
            (self.bn_mode in _BN_MODES, f"bn_mode must be one of {_BN_MODES}"),
            (self.head_init in _HEAD_INITS, f"head_init must be one of {_HEAD_INITS}"),
            (self.head_init_std > 0, "head_init_std must be > 0"),
            (self.probe_c > 0 and self.probe_max_logit > 0, "probe_c and probe_max_logit must be > 0"),
            (0.0 <= self.weak_shift < 0.5, "weak_shift must be in [0, 0.5)"),
            (self.strong_ops >= 0, "strong_ops must be >= 0"),
            (0.0 <= self.strong_magnitude <= 1.0, "strong_magnitude must be in [0, 1]"),
            (0.0 <= self.cutout < 1.0, "cutout must be in [0, 1)"),
            (self.tta in (1, 4, 8), "tta must be 1, 4 or 8"),
            (self.max_unlabeled >= 0, "max_unlabeled must be >= 0"),
            (0.0 <= self.drop_rate < 1.0, "drop_rate must be in [0, 1)"),
        ]
        for ok, text in checks:
            if not ok:
                msg = f"invalid ClassifierConfig: {text}"
                raise InvalidInputError(msg)

    def replace(self, **changes):
        """A copy with some fields changed.

        Unknown names raise `~anomalymatch_astro.utils.exceptions.InvalidInputError`.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            msg = f"unknown ClassifierConfig setting(s) {unknown}; known: {sorted(names)}"
            raise InvalidInputError(msg)
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """The settings as a JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, settings):
        """Rebuild a config from `to_dict` output.

        Unknown keys raise `~anomalymatch_astro.utils.exceptions.InvalidInputError`.
        """
        return cls().replace(**dict(settings))

    def to_json(self):
        """The settings as a JSON string (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)
