import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.classifier import AnomalyClassifier, Callback, prepare_batch
from anomalymatch_astro.normalization import Normalizer
from anomalymatch_astro.utils.exceptions import (
    BandMismatchError,
    CheckpointError,
    InvalidInputError,
    LabelError,
    UnknownIDError,
)


@pytest.fixture(scope="module")
def trained(rings, make_labels):
    cs, truth = rings
    labels = make_labels(cs, truth)
    clf = AnomalyClassifier(pretrained=False, image_size=24, batch_size=4, mu=2, seed=0, head_init="small")
    clf.fit(cs, labels, iterations=3, progress=False)
    return clf, cs, truth, labels


def test_fit_history_and_scores(trained):
    clf, cs, truth, _ = trained
    assert len(clf.history) == 3
    assert {"loss", "loss_x", "loss_u", "mask_rate", "step"} <= set(clf.history[0])
    scores = clf.score(cs, batch_size=7)
    assert scores.shape == (len(cs),) and scores.dtype == np.float64
    assert np.all((scores >= 0) & (scores <= 1))
    emb = clf.embed(cs, batch_size=16)
    assert emb.shape == (len(cs), clf.ema_model.num_features) and emb.dtype == np.float32


def test_pretrained_separates_a_simple_set(rings, make_labels):
    cs, truth = rings
    labels = make_labels(cs, truth)
    clf = AnomalyClassifier(image_size=32, batch_size=8, mu=1, seed=0)
    clf.fit(cs, labels, iterations=2, progress=False)
    unl = ~np.isin(cs.ids, list(labels))
    assert roc_auc_score(truth[unl], clf.score(cs)[unl]) >= 0.9


def test_embed_before_fit_is_the_pretrained_backbone(rings):
    cs, _ = rings
    clf = AnomalyClassifier(image_size=32, seed=0)
    emb = clf.embed(cs[:4])
    assert emb.shape == (4, 1280) and np.isfinite(emb).all()


def test_embed_with_stages(rings):
    cs, _ = rings
    clf = AnomalyClassifier(image_size=32, seed=0)
    head_only = clf.embed(cs[:5])
    widths = clf.feature_widths(stages=(-2, -1))
    assert widths == [1280, 112, 320]  # EfficientNet-Lite0: head features, stages 4 and 5
    multi = clf.embed(cs[:5], stages=(-2, -1))
    assert multi.shape == (5, sum(widths))
    np.testing.assert_allclose(multi[:, :1280], head_only, rtol=1e-5, atol=1e-6)  # one pass, same head block
    # the pooled stage block is the mean of that stage's feature map
    with torch.inference_mode():
        x = clf.prepare_batch(cs[:5].data).to(clf.device)
        maps = clf.ema_model.forward_intermediates(clf._standardize(x), indices=[4], intermediates_only=True)
    np.testing.assert_allclose(multi[:, 1280 + 112 :], maps[0].mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    assert clf.embed(cs[:0], stages=(-1,)).shape == (0, 1280 + 320)
    with pytest.raises(InvalidInputError, match="feature stages"):
        clf.embed(cs[:2], stages=(5,))


def test_save_load_round_trip(trained, tmp_path):
    clf, cs, _, labels = trained
    clf.save(tmp_path / "m")
    info = json.loads((tmp_path / "m" / "config.json").read_text())
    for key in (
        "backbone",
        "bands",
        "normalizer",
        "image_size",
        "config",
        "package_version",
        "labels_hash",
        "model_hash",
    ):
        assert key in info
    assert info["bands"] == ["g", "r"]
    loaded = AnomalyClassifier.load(tmp_path / "m")
    assert loaded.model_hash == clf.model_hash
    np.testing.assert_array_equal(loaded.score(cs), clf.score(cs))
    lazy_path = tmp_path / "c.h5"
    cs.to_hdf5(lazy_path)
    np.testing.assert_allclose(
        loaded.score(CutoutSet.from_hdf5(lazy_path), batch_size=5), clf.score(cs), rtol=1e-6, atol=1e-7
    )


def test_model_hash_changes_with_weights(trained):
    clf, *_ = trained
    before = clf.model_hash
    with torch.no_grad():
        clf.ema_model.get_classifier().bias[0] += 1e-3
    try:
        assert clf.model_hash != before
    finally:
        with torch.no_grad():
            clf.ema_model.get_classifier().bias[0] -= 1e-3


def test_tampered_or_missing_checkpoint(trained, tmp_path):
    clf, *_ = trained
    path = tmp_path / "m"
    clf.save(path)
    raw = bytearray((path / "model.safetensors").read_bytes())
    raw[-5] ^= 0xFF
    (path / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="modified or corrupted"):
        AnomalyClassifier.load(path)
    clf.save(path, overwrite=True)
    info = json.loads((path / "config.json").read_text())
    info["image_size"] = 99
    (path / "config.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="hash"):
        AnomalyClassifier.load(path)
    (path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        AnomalyClassifier.load(path)


def test_band_normalisation_and_size_mismatch(trained, caplog, make_labels):
    clf, cs, _, _ = trained
    swapped = CutoutSet.from_arrays(cs.data[:, ::-1], bands=("r", "g"))
    with pytest.raises(BandMismatchError, match="order"):
        clf.score(swapped)
    other = CutoutSet.from_arrays(
        cs.data[:3], bands=("g", "r"), meta={"normalizer": Normalizer(stretch="log").to_dict()}
    )
    with pytest.raises(CheckpointError, match="normalised"):
        clf.score(other)
    big = CutoutSet.from_arrays(np.repeat(np.repeat(cs.data[:3], 2, axis=2), 2, axis=3), bands=("g", "r"))
    with caplog.at_level("INFO", logger="anomalymatch_astro.classifier"):
        assert clf.score(big).shape == (3,)
    assert "resized" in caplog.text
    strict = AnomalyClassifier(pretrained=False, image_size=24, strict_size=True, mu=1, batch_size=2, head_init="small")
    strict.fit(cs, make_labels(cs, (np.arange(len(cs)) % 2)), iterations=0, progress=False)
    with pytest.raises(CheckpointError, match="strict_size"):
        strict.score(big)


def test_label_errors_list_ids(rings):
    cs, _ = rings
    clf = AnomalyClassifier(pretrained=False, image_size=16)
    with pytest.raises(UnknownIDError) as info:
        clf.fit(cs, {"nope": "anomaly", cs.ids[0]: "normal"}, iterations=0, progress=False)
    assert info.value.ids == ["nope"]
    with pytest.raises(LabelError, match="no object is labelled 'anomaly'"):
        clf.fit(cs, {cs.ids[0]: "normal"}, iterations=0, progress=False)


def test_label_file_duplicates_and_contradictions(rings, tmp_path):
    cs, _ = rings
    clf = AnomalyClassifier(pretrained=False, image_size=16)
    a, b = cs.ids[0], cs.ids[1]
    dup = tmp_path / "dup.csv"
    dup.write_text(f"id,label\n{a},anomaly\n{a},anomaly\n{b},normal\n")
    with pytest.raises(LabelError) as info:
        clf.fit(cs, dup, iterations=0, progress=False)
    assert info.value.ids == [a]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"id,label\n{a},anomaly\n{a},normal\n{b},normal\n")
    with pytest.raises(LabelError, match="contradictory") as info:
        clf.fit(cs, bad, iterations=0, progress=False)
    assert info.value.ids == [a]


def test_callbacks_and_unlabeled_set(rings, make_labels):
    cs, truth = rings
    calls = []

    class Count(Callback):
        def on_step_end(self, trainer, step, stats):
            calls.append((step, stats["mask_rate"]))

    clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=2, mu=1, head_init="small")
    clf.fit(
        cs[:12],
        make_labels(cs[:12], truth[:12], 1, 2),
        unlabeled=cs[12:20],
        iterations=2,
        progress=False,
        callbacks=[Count()],
    )
    assert [c[0] for c in calls] == [1, 2]
    with pytest.raises(BandMismatchError):
        clf.fit(
            cs[:12],
            make_labels(cs[:12], truth[:12], 1, 2),
            unlabeled=CutoutSet.from_arrays(cs.data[:4], bands=("x", "y")),
            iterations=1,
            progress=False,
        )


def test_public_inference_path_equals_score(trained):
    clf, cs, _, _ = trained
    x = clf.prepare_batch(cs.data)
    free = prepare_batch(cs.data, normalizer=clf.normalizer, image_size=clf.image_size)
    torch.testing.assert_close(x, free, rtol=0, atol=0)
    assert tuple(x.shape) == (len(cs), 2, 24, 24) and x.dtype == torch.float32
    with clf.inference() as predict:
        p = predict(x)
        assert torch.is_inference_mode_enabled()
    assert p.dtype == torch.float32 and p.shape == (len(cs),)
    np.testing.assert_array_equal(p.cpu().numpy().astype(np.float64), clf.score(cs, batch_size=len(cs), progress=False))


def test_inference_layout_restored_and_precision_checked(trained):
    clf, cs, _, _ = trained
    weight = next(p for p in clf.ema_model.parameters() if p.ndim == 4)
    with clf.inference(channels_last=True, precision="fp32") as predict:
        assert weight.is_contiguous(memory_format=torch.channels_last)
        channels_last = predict(clf.prepare_batch(cs.data[:6])).cpu().numpy()
    assert weight.is_contiguous()
    np.testing.assert_allclose(channels_last, clf.score(cs[:6], progress=False), rtol=1e-5, atol=1e-6)
    with pytest.raises(InvalidInputError, match="precision"), clf.inference(precision="fp8"):
        pass
    with pytest.raises(InvalidInputError, match="not trained"), AnomalyClassifier(pretrained=False).inference():
        pass


def test_public_checks(trained):
    clf, cs, _, _ = trained
    clf.check_bands(("g", "r"))
    clf.check_cutouts(cs)
    with pytest.raises(BandMismatchError, match="order"):
        clf.check_bands(("r", "g"))
    other = CutoutSet.from_arrays(
        cs.data[:2], bands=("g", "r"), meta={"normalizer": Normalizer(stretch="log").to_dict()}
    )
    with pytest.raises(CheckpointError, match="normalised"):
        clf.check_cutouts(other)


def test_save_is_atomic(trained, tmp_path, monkeypatch):
    clf, cs, _, _ = trained
    path = tmp_path / "m"
    clf.save(path)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    before = {name: (path / name).read_bytes() for name in ("config.json", "model.safetensors")}

    import safetensors.torch

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        clf.save(path, overwrite=True)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]  # no temporary left
    assert {name: (path / name).read_bytes() for name in before} == before
    monkeypatch.undo()
    np.testing.assert_array_equal(AnomalyClassifier.load(path).score(cs, progress=False), clf.score(cs, progress=False))
