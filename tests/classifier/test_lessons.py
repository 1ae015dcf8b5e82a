"""The three silent regressions of AnomalyMatch's move to timm, pinned (BENCHMARKS.md)."""

import numpy as np
import torch

from anomalymatch_astro.classifier import AnomalyClassifier


def test_fresh_head_is_small_so_few_unlabelled_pass_tau(rings):
    cs, _ = rings
    # pretrained backbone, fresh 2-class head ("small" path, no probe warm start)
    clf = AnomalyClassifier(image_size=32, seed=0, head_init="small")
    clf._build(cs.bands)
    head = clf.model.get_classifier()
    assert float(head.weight.detach().std()) < 0.02 and float(head.bias.detach().abs().max()) == 0.0
    x = clf._prepare_set(cs)
    clf.model.train()
    with torch.no_grad():
        probs = clf.model(clf._standardize(x)).softmax(-1)
    passing = float((probs.max(-1).values >= 0.95).float().mean())
    assert passing < 0.05
    # timm's own init of the same head lets most images through: the test can fail
    import timm

    raw = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=2, in_chans=2)
    assert float(raw.get_classifier().weight.detach().std()) > 10 * float(head.weight.detach().std())


def test_bn_momentum_applied_to_every_batchnorm(rings, make_labels):
    cs, truth = rings
    clf = AnomalyClassifier(pretrained=False, image_size=16, bn_momentum=0.03, batch_size=2, mu=1, head_init="small")
    clf.fit(cs, make_labels(cs, truth, 1, 2), iterations=1, progress=False)
    for model in (clf.model, clf.ema_model):
        bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        assert len(bns) > 10
        assert all(m.momentum == 0.03 for m in bns)
    # and it really acts: one training-mode forward moves the running mean by m * (batch mean - old)
    plain = AnomalyClassifier(pretrained=False, image_size=16, bn_mode="train")
    plain._build(cs.bands)
    bn = plain.model.bn1
    before = bn.running_mean.clone()
    x = plain._standardize(plain._prepare_set(cs[:8]))
    with torch.no_grad():
        batch_mean = plain.model.conv_stem(x).mean(dim=(0, 2, 3))
        plain.model.train()(x)
    torch.testing.assert_close(bn.running_mean, before + 0.01 * (batch_mean - before), rtol=1e-4, atol=1e-6)
    default = AnomalyClassifier(pretrained=False, image_size=16)
    default._build(cs.bands)
    assert {m.momentum for m in default.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)} == {
        0.01
    }


def test_seed_is_applied(rings, make_labels):
    cs, truth = rings
    labels = make_labels(cs, truth, 2, 3)

    def run(seed):
        clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=2, mu=1, seed=seed, head_init="small")
        return clf.fit(cs, labels, iterations=2, progress=False).score(cs)

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
