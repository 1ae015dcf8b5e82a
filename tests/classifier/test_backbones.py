import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anomalymatch_astro.classifier import (
    OFFLINE_WEIGHTS,
    convert_lukemelas_state_dict,
    create_backbone,
    offline_weights_file,
)
from anomalymatch_astro.utils.exceptions import CheckpointError, InvalidInputError


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # no network: any socket connection attempt fails the test
    import socket

    def guard(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", guard)


@pytest.mark.parametrize("name", list(OFFLINE_WEIGHTS))
def test_key_mapping_is_exact(name):
    import importlib

    import timm

    module, cls = OFFLINE_WEIGHTS[name]
    path = getattr(importlib.import_module(module), cls).get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    converted = convert_lukemelas_state_dict(state, model_name=name)
    target = timm.create_model(name, pretrained=False).state_dict()
    assert set(converted) == set(target)
    assert all(converted[k].shape == target[k].shape for k in target)


def test_offline_lite0_classifies_coffee_as_espresso():
    from skimage.data import coffee

    model = create_backbone("tf_efficientnet_lite0", in_chans=3, num_classes=1000).eval()
    x = torch.from_numpy(coffee().astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.inference_mode():
        probs = model((x - 0.5) / 0.5).softmax(-1)[0]
    assert int(probs.argmax()) == 967  # espresso
    assert float(probs[967]) > 0.5
    assert model.pretrained_cfg["mean"] == (0.5, 0.5, 0.5)


def test_n_band_stem_and_cached_file():
    model = create_backbone("tf_efficientnet_lite0", in_chans=5, num_classes=2)
    assert model.conv_stem.weight.shape[1] == 5
    assert str(offline_weights_file("tf_efficientnet_lite0")).endswith(".safetensors")


def test_no_offline_weights_is_a_clear_error():
    with pytest.raises(CheckpointError, match="pretrained=False"):
        create_backbone("resnet18", in_chans=3, pretrained=True)
    with pytest.raises(InvalidInputError, match="not a timm model"):
        create_backbone("no_such_net", in_chans=3, pretrained=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        create_backbone("resnet18", in_chans=3, weights_path="/nonexistent/w.safetensors")


def test_user_weights_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    src = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    path = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    model = create_backbone("resnet18", in_chans=3, num_classes=2, weights_path=path)
    assert torch.equal(model.conv1.weight, src.conv1.weight)
