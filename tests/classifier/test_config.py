import pytest

from anomalymatch_astro.classifier import AnomalyClassifier, ClassifierConfig
from anomalymatch_astro.utils.exceptions import InvalidInputError


def test_defaults_follow_the_recipe():
    cfg = ClassifierConfig()
    assert (cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay) == (0.0075, 0.9, True, 7.5e-4)
    assert (cfg.tau, cfg.lambda_u, cfg.mu, cfg.batch_size, cfg.ema_decay) == (0.95, 1.0, 5, 16, 0.99)
    assert cfg.bn_momentum == 0.01


def test_frozen_and_round_trip():
    cfg = ClassifierConfig(tau=0.9)
    with pytest.raises(AttributeError):
        cfg.tau = 0.5
    assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(mu=2).mu == 2


@pytest.mark.parametrize(
    "bad", [dict(tau=0), dict(bn_momentum=0.99 + 1), dict(head_init="big"), dict(tta=3), dict(bn_mode="x")]
)
def test_invalid_values(bad):
    with pytest.raises(InvalidInputError):
        ClassifierConfig(**bad)


def test_unknown_override():
    with pytest.raises(InvalidInputError, match="unknown ClassifierConfig"):
        AnomalyClassifier(pretrained=False, learning_rate=1.0)
    assert AnomalyClassifier(pretrained=False, tau=0.8).config.tau == 0.8
