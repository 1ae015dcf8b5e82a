"""Checkpoints of `AnomalyClassifier`: safetensors weights + a JSON description, and the model hash.

A checkpoint directory holds ``model.safetensors`` (the EMA weights) and ``config.json``
(backbone, bands, image size, normaliser, training config, package version, labels hash,
model hash and the sha256 of the weights file).  Nothing is pickled.
"""

import hashlib
import json
import logging
import os
from pathlib import Path

from ..normalization import Normalizer
from ..utils import atomic_path, read_json
from ..utils._version import __version__
from ..utils.exceptions import CheckpointError, InvalidInputError, OutputExistsError
from ._config import ClassifierConfig

log = logging.getLogger(__name__)

FORMAT = "anomalymatch_astro.AnomalyClassifier"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def sha256_file(path):
    """sha256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def description(clf):
    """What besides the weights defines the classifier's outputs (JSON-ready)."""
    return {
        "backbone": clf.backbone,
        "bands": list(clf.bands) if clf.bands else None,
        "image_size": clf.image_size,
        "mean": clf.mean,
        "std": clf.std,
        "normalizer": clf.normalizer.to_dict(),
        "config": clf.config.to_dict(),
        "cutout_shape": list(clf.cutout_shape) if clf.cutout_shape else None,
    }


def model_hash(clf):
    """sha256 (hex) over the EMA weights and `description`."""
    if clf.ema_model is None:
        msg = "the classifier has no model yet; call fit() first"
        raise InvalidInputError(msg)
    h = hashlib.sha256()
    for key, value in sorted(clf.ema_model.state_dict().items()):
        h.update(key.encode())
        h.update(str(value.dtype).encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    h.update(json.dumps(description(clf), sort_keys=True).encode())
    return h.hexdigest()


def save_checkpoint(clf, path, *, overwrite=False):
    """Write ``clf`` to the directory ``path`` (see `AnomalyClassifier.save`)."""
    if clf.ema_model is None:
        msg = "nothing to save: the classifier has no model yet; call fit() first"
        raise InvalidInputError(msg)
    path = Path(path)
    if path.exists() and not path.is_dir():
        msg = f"{os.fspath(path)!r} exists and is not a folder; a checkpoint is a folder, choose another path"
        raise InvalidInputError(msg)
    present = [name for name in (CONFIG, WEIGHTS) if (path / name).exists()]
    if present and not overwrite:
        msg = (
            f"{os.fspath(path)!r} already holds a saved model ({', '.join(present)}); pass overwrite=True "
            "to replace it, or choose another path (it is left as it was)"
        )
        raise OutputExistsError(msg)
    if path.is_dir():
        _write_checkpoint(clf, path)
        return
    # a new checkpoint is built in a folder beside and renamed into place once complete: a crash
    # leaves no half-made checkpoint behind
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        os.mkdir(tmp)
        _write_checkpoint(clf, Path(tmp))


def _write_checkpoint(clf, path):
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in clf.ema_model.state_dict().items()}
    # both files complete before either is swapped in (the inner block renames first: weights, then
    # config): a crash leaves the old pair, the new pair, or (between the two renames) a mismatch that
    # load() refuses, never a torn file
    with atomic_path(path / CONFIG) as cfg_tmp, atomic_path(path / WEIGHTS) as weights_tmp:
        save_file(tensors, weights_tmp, metadata={"format": FORMAT})
        info = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            **description(clf),
            "seed": clf.seed,
            "pretrained": clf.pretrained,
            "labels_hash": clf.labels_hash,
            "n_fits": clf.n_fits,
            "model_hash": model_hash(clf),
            "weights_sha256": sha256_file(weights_tmp),
        }
        Path(cfg_tmp).write_text(json.dumps(info, indent=2, sort_keys=True))
    log.info("saved classifier %s to %s", info["model_hash"][:12], path)


def _invalid(cfg_file, exc):
    msg = f"{os.fspath(cfg_file)!r} is incomplete or invalid ({type(exc).__name__}: {exc}); save the model again"
    return CheckpointError(msg)


def _read_description(path):
    cfg_file, weights = path / CONFIG, path / WEIGHTS
    for f in (cfg_file, weights):
        if not f.is_file():
            msg = f"{os.fspath(f)!r} is missing; {os.fspath(path)!r} is not a complete AnomalyClassifier checkpoint"
            raise CheckpointError(msg)
    info = read_json(cfg_file, error=CheckpointError)  # byte and nesting limits: never a RecursionError
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        msg = f"{os.fspath(cfg_file)!r} is not an AnomalyClassifier checkpoint description"
        raise CheckpointError(msg)
    if sha256_file(weights) != info.get("weights_sha256"):
        msg = (
            f"{os.fspath(weights)!r} does not match the sha256 recorded in config.json: the "
            "checkpoint was modified or corrupted; save the model again"
        )
        raise CheckpointError(msg)
    return info


def load_checkpoint(cls, path, *, device=None):
    """Read a checkpoint written by `save_checkpoint` into a new ``cls`` (see `AnomalyClassifier.load`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    cfg_file, weights = path / CONFIG, path / WEIGHTS
    info = _read_description(path)
    try:
        clf = cls(
            backbone=info["backbone"],
            pretrained=False,
            image_size=info["image_size"],
            seed=info["seed"],
            normalizer=Normalizer.from_dict(info["normalizer"]),
            device=device,
            config=ClassifierConfig.from_dict(info["config"]),
        )
        clf._build(tuple(info["bands"]), pretrained=False)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # incl. InvalidInputError
        raise _invalid(cfg_file, exc) from exc
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        msg = f"cannot read {os.fspath(weights)!r}: {exc}"
        raise CheckpointError(msg) from exc
    try:
        clf.ema_model.load_state_dict(state, strict=True)
        clf.model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        msg = f"the weights in {os.fspath(weights)!r} do not fit {info['backbone']!r}: {exc}"
        raise CheckpointError(msg) from exc
    try:
        clf.mean, clf.std = [float(v) for v in info["mean"]], [float(v) for v in info["std"]]
        clf.pretrained = bool(info.get("pretrained", False))
        shape = info.get("cutout_shape")
        clf.cutout_shape = tuple(int(v) for v in shape) if shape else None
        clf.labels_hash = info.get("labels_hash")
        clf.n_fits = int(info.get("n_fits", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise _invalid(cfg_file, exc) from exc
    if model_hash(clf) != info.get("model_hash"):
        msg = (
            f"the model hash of {os.fspath(path)!r} does not match config.json: the checkpoint was "
            "modified; save the model again"
        )
        raise CheckpointError(msg)
    return clf
