"""Tampered and damaged checkpoints through AnomalyClassifier.load; pickles are never executed."""

import hashlib
import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.classifier import AnomalyClassifier, create_backbone
from anomalymatch_astro.utils.exceptions import CheckpointError

from .conftest import FUZZ, check

MARKER = "pickle_was_executed"


class _Evil:
    """Unpickling this creates a marker file: proof that a pickle was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    cs = CutoutSet.from_arrays(rng.normal(size=(8, 1, 16, 16)).astype(np.float32), bands=["r"])
    clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=2, mu=1, seed=0, head_init="small")
    clf.fit(cs, {"obj0": "anomaly", "obj1": "normal", "obj2": "normal"}, iterations=1, progress=False)
    path = tmp_path_factory.mktemp("ckpt") / "model"
    clf.save(path)
    yield path, clf.model_hash
    torch.set_num_threads(old)


def _copy(saved, tmp_path_factory):
    src, _ = saved
    dst = tmp_path_factory.mktemp("tampered") / "model"
    shutil.copytree(src, dst)
    return dst


def _reseal(path):
    """What someone who edits the weights and fixes config.json's sha256 would do."""
    info = json.loads((path / "config.json").read_text())
    info["weights_sha256"] = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    (path / "config.json").write_text(json.dumps(info))


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=False), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=5,
)
KEYS = [
    "backbone",
    "bands",
    "image_size",
    "mean",
    "std",
    "normalizer",
    "config",
    "seed",
    "cutout_shape",
    "format",
    "model_hash",
    "weights_sha256",
    "n_fits",
    "format_version",
]


@settings(FUZZ, max_examples=30)
@given(
    key=st.sampled_from(KEYS),
    value=st.one_of(JSON_VALUES, st.just("DELETE")),
    raw=st.one_of(st.none(), st.binary(max_size=40)),
)
def test_tampered_config(saved, tmp_path_factory, key, value, raw):
    path = _copy(saved, tmp_path_factory)
    if raw is not None and raw[:1] == b"\x00":
        (path / "config.json").write_bytes(raw)
    else:
        info = json.loads((path / "config.json").read_text())
        if value == "DELETE":
            info.pop(key, None)
        else:
            info[key] = value
        (path / "config.json").write_text(json.dumps(info))
    clf = check("checkpoint config.json", AnomalyClassifier.load, path, device="cpu")
    if clf is not None:  # accepted only when the model is exactly the saved one
        assert clf.model_hash == saved[1]


@settings(FUZZ, max_examples=30)
@given(
    edit=st.one_of(
        st.tuples(st.just("truncate"), st.floats(0, 1)),
        st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8)),
        st.tuples(st.just("garbage"), st.binary(max_size=128)),
        st.tuples(st.just("scale"), st.floats(-2, 2)),
    ),
    reseal=st.booleans(),
)
def test_tampered_weights(saved, tmp_path_factory, edit, reseal):
    from safetensors.torch import load_file, save_file

    path = _copy(saved, tmp_path_factory)
    weights = path / "model.safetensors"
    kind, arg = edit
    if kind == "truncate":
        os.truncate(weights, int(arg * os.path.getsize(weights)))
    elif kind == "flip":
        content = bytearray(weights.read_bytes())
        for where, value in arg:
            content[int(where * (len(content) - 1))] = value
        weights.write_bytes(bytes(content))
    elif kind == "garbage":
        weights.write_bytes(arg)
    else:  # a well-formed file with other weights
        state = load_file(str(weights))
        name = sorted(state)[0]
        state[name] = state[name] * arg + 0.5
        save_file(state, str(weights))
    if reseal:
        _reseal(path)
    clf = check("checkpoint model.safetensors", AnomalyClassifier.load, path, device="cpu")
    if clf is not None:
        assert clf.model_hash == saved[1]


def test_pickle_in_place_of_safetensors_is_refused_unexecuted(saved, tmp_path_factory):
    path = _copy(saved, tmp_path_factory)
    marker = path.parent / MARKER
    (path / "model.safetensors").write_bytes(pickle.dumps({"state_dict": _Evil(marker)}))
    _reseal(path)  # even with a matching sha256 in config.json
    with pytest.raises(CheckpointError, match="model.safetensors"):
        AnomalyClassifier.load(path, device="cpu")
    assert not marker.exists()
    # a torch-style zip pickle too
    torch.save({"w": _Evil(marker)}, path / "model.safetensors")
    _reseal(path)
    with pytest.raises(CheckpointError):
        AnomalyClassifier.load(path, device="cpu")
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("how", ["pickle", "torch"])
def test_pickle_weights_path_is_refused_unexecuted(tmp_path, how):
    marker = tmp_path / MARKER
    weights = tmp_path / "weights.pth"
    if how == "pickle":
        weights.write_bytes(pickle.dumps({"w": _Evil(marker)}))
    else:
        torch.save({"w": _Evil(marker)}, weights)
    with pytest.raises(CheckpointError, match="weights.pth"):
        create_backbone("tf_efficientnet_lite0", in_chans=1, pretrained=True, weights_path=weights)
    assert not marker.exists()


def test_every_torch_load_is_weights_only():
    import anomalymatch_astro

    root = os.path.dirname(anomalymatch_astro.__file__)
    calls = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name)) as f:
                    for lineno, line in enumerate(f, 1):
                        if "torch.load(" in line or "pickle.load" in line:
                            calls.append((name, lineno, line.strip()))
    assert calls, "expected the one torch.load of the offline weights conversion"
    for name, lineno, line in calls:
        assert "weights_only=True" in line, f"{name}:{lineno}: {line}"
        assert "pickle.load" not in line
