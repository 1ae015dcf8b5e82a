"""The FixMatch semi-supervised anomaly classifier (timm / torch).

`AnomalyClassifier` trains a binary (normal / anomaly) classifier on a few
labelled and many unlabelled cutouts with FixMatch, scores cutouts with its EMA
model, and saves itself as safetensors + JSON.  It owns its whole inference path
(`AnomalyClassifier.check_cutouts`, `AnomalyClassifier.prepare_batch` / `prepare_batch`,
`AnomalyClassifier.inference`), which `anomalymatch_astro.scoring` calls.  The pieces are public too: the
hyper-parameters (`ClassifierConfig`), the pure loss (`fixmatch_loss`), the sky
augmentations (`weak_augment`, `strong_augment`), the trainer callbacks and the
offline ImageNet weights (`create_backbone`, `convert_lukemelas_state_dict`).
"""

from ._augment import STRONG_OPS, strong_augment, weak_augment
from ._backbones import (
    OFFLINE_WEIGHTS,
    cache_dir,
    convert_lukemelas_state_dict,
    create_backbone,
    offline_weights_file,
    set_bn_momentum,
)
from ._classifier import AnomalyClassifier
from ._config import ClassifierConfig
from ._fixmatch import fixmatch_loss
from ._inference import prepare_batch
from ._trainer import Callback, CheckpointCallback, EMACallback, FixMatchTrainer, HistoryCallback

__all__ = [
    "AnomalyClassifier",
    "ClassifierConfig",
    "prepare_batch",
    "fixmatch_loss",
    "weak_augment",
    "strong_augment",
    "STRONG_OPS",
    "Callback",
    "EMACallback",
    "HistoryCallback",
    "CheckpointCallback",
    "FixMatchTrainer",
    "create_backbone",
    "convert_lukemelas_state_dict",
    "offline_weights_file",
    "set_bn_momentum",
    "cache_dir",
    "OFFLINE_WEIGHTS",
]
