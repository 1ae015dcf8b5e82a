"""`ActiveLearningSession`: candidates -> labels -> retrain, durable on disk.

A session ties together a CutoutSet, a durable label store, the cached embeddings
with a fast head, and an `~anomalymatch_astro.AnomalyClassifier` trained with
FixMatch.  With a ``workdir`` everything survives a crash or restart::

    workdir/
      session.json      format, cutout file, ids checksum, settings, embedding key, cycle
      labels.sqlite     every label event (WAL, one transaction per label() call)
      embeddings.h5     cached backbone embeddings (EmbeddingCache)
      scores.h5         the last scores (ids, score, per-model scores, cycle), written atomically
      model/            the last FixMatch classifier (AnomalyClassifier.save), swapped in atomically
"""

import dataclasses
import json
import logging
import os
import shutil
import time

import h5py
import numpy as np

from ..embeddings import HEADS, EmbeddingCache, compute_embeddings, embedding_key, fit_pca, make_head, rank_normalize
from ..utils import parse_labels
from ..utils._hashing import ids_digest
from ..utils._labels import label_word
from ..utils.exceptions import CheckpointError, InvalidInputError, LabelError, UnknownIDError
from ._labels import LabelStore
from ._strategies import (
    STRATEGIES,
    decision_threshold,
    select_diverse,
    select_mix,
    select_similar,
    select_top,
    select_uncertain,
)

__all__ = ["ActiveLearningSession", "TrainResult", "MODES", "DEFAULT_HEAD"]

log = logging.getLogger(__name__)

#: Training modes of `ActiveLearningSession.train`.
MODES = ("fast", "fixmatch", "both")

#: The head used by the "fast" mode unless another is chosen (see the embeddings user guide).
DEFAULT_HEAD = "ensemble"

_FORMAT = "anomalymatch_astro.ActiveLearningSession"
_FORMAT_VERSION = 1


def _write_json_atomic(path, obj):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_state(path):
    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, ValueError) as exc:  # ValueError: not JSON, not UTF-8
        state = exc
    if not isinstance(state, dict):
        msg = (
            f"{path} is not a readable session file ({state}); it is written atomically, so it was "
            "changed by hand or the disk is damaged: restore it, or use a new workdir (the labels in "
            "labels.sqlite can be imported with labels=...)"
        )
        raise CheckpointError(msg)
    return state


def _auroc(y, s):
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def combine_scores(parts):
    """The session's combined ranking: the mean of each model's rank-normalised scores.

    Each model's scores are replaced by their ranks scaled to [0, 1] (0 = least,
    1 = most anomalous) and the ranks are averaged, so models with different
    calibration (a saturated FixMatch softmax, a balanced logistic probe) weigh the
    same.  A single model's scores are returned unchanged.

    Parameters
    ----------
    parts : dict
        ``{model name: scores (N,)}``.

    Returns
    -------
    numpy.ndarray
        (N,) float64 in [0, 1].
    """
    parts = [np.asarray(v, dtype=np.float64) for v in parts.values()]
    if len(parts) == 1:
        return parts[0]
    return np.mean([rank_normalize(p) for p in parts], axis=0)


@dataclasses.dataclass
class TrainResult:
    """What one `ActiveLearningSession.train` call did.

    Attributes
    ----------
    mode : str
        ``"fast"``, ``"fixmatch"`` or ``"both"``.
    cycle : int
        The session's cycle counter after this training.
    seconds : float
        Wall time of the whole call.
    n_anomalies, n_normals : int
        Labels used.
    timings : dict
        Seconds per part (``embeddings``, ``fast``, ``fixmatch``, ``save``).
    metrics : dict
        Per model: ``train_auroc`` (AUROC on the labelled objects, an optimistic
        sanity check) and for the combination ``threshold`` (the boundary used by
        the uncertainty strategy).
    """

    mode: str
    cycle: int
    seconds: float
    n_anomalies: int
    n_normals: int
    timings: dict
    metrics: dict

    def as_dict(self):
        """A plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)


class ActiveLearningSession:
    """An active-learning session: train, show candidates, take labels, retrain.

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet`
        The objects to rank.
    labels : mapping, Table or path, optional
        Start labels ``{id: "anomaly" | "normal"}`` (or a Table/CSV with ``id``,
        ``label``), stored with source ``"import"``.  When reopening a workdir,
        only labels that differ from the stored ones are recorded.
    classifier : `~anomalymatch_astro.AnomalyClassifier`, optional
        The FixMatch classifier (also the embedding backbone).  Default: the one
        saved in ``workdir/model`` when reopening, else a new
        ``AnomalyClassifier()`` created on first use.
    workdir : str or os.PathLike, optional
        Where the session lives (created if needed).  Without one, labels are
        kept in memory and nothing is saved.
    user : str, optional
        Default user name recorded with each label (default: the login name).
    default_mode : {"fast", "both", "fixmatch"}, optional
        Mode of `train` when none is given.  Default: the one recorded in the
        workdir, else ``"fast"``: on the
        benchmark sets the fast head ranked at least as well as FixMatch and as
        the combination of both (see the embeddings user guide); use ``"both"``
        when FixMatch can train long enough (a GPU) to add to it.
    head : str or head object, optional
        The fast head: ``"ensemble"`` (default, unless the workdir records
        another: mean rank of the logistic probe
        and the kNN head, the best on the benchmark sets), ``"logistic"``,
        ``"knn"``, ``"spreading"``, or any object with ``fit(embeddings, labels)``
        / ``score(embeddings)``.
    rotation_average : bool, optional
        Embed every cutout as the mean of its 8 rotations and flips (default: True, because
        the sky has no up; 8x the one-off embedding cost).  The benchmark ranks the ensemble
        head on these embeddings best or level on every set (morphology, digits, the mock
        survey, the lens set; docs/benchmarks.rst).  Set False for images with a natural
        orientation.
    feature_stages : sequence of int, optional
        Backbone stages whose pooled feature maps are appended to the head features
        (default ``(-2, -1)``, the last two; ``()`` for the head features alone).  The
        ``"ensemble"`` head then fits its members on each level separately and averages
        their ranks: mid-level features (shapes, textures) added 0.01-0.02 AUROC on the
        digits and morphology sets (docs/benchmarks.rst).  Ignored for classifiers without
        ``feature_widths`` (stand-in embedders).
    batch_size : int, optional
        Batch size for embedding and scoring.

    Examples
    --------
    A session with a stand-in embedder (any object with ``embed`` and
    ``model_hash`` works for the fast mode):

    >>> import numpy as np
    >>> from anomalymatch_astro import CutoutSet
    >>> from anomalymatch_astro.active_learning import ActiveLearningSession
    >>> class Flat:
    ...     model_hash = "flat"
    ...     def embed(self, cutouts, *, batch_size=256):
    ...         return cutouts.data.reshape(len(cutouts), -1)
    >>> rng = np.random.default_rng(0)
    >>> data = rng.normal(size=(60, 1, 4, 4)); data[:6] += 3
    >>> cs = CutoutSet.from_arrays(data)
    >>> s = ActiveLearningSession(cs, classifier=Flat(), default_mode="fast", user="me",
    ...                           labels={"obj00": "anomaly", "obj10": "normal", "obj11": "normal"})
    >>> s.train(progress=False).cycle
    1
    >>> top = s.candidates(3)              # a QTable: id, score, rank
    >>> set(top["id"]) <= {"obj01", "obj02", "obj03", "obj04", "obj05"}
    True
    >>> s.label({"obj01": "anomaly"})
    >>> s.labels["obj01"]
    'anomaly'
    """

    def __init__(
        self,
        cutouts,
        *,
        labels=None,
        classifier=None,
        workdir=None,
        user=None,
        default_mode=None,
        head=None,
        rotation_average=True,
        feature_stages=(-2, -1),
        batch_size=256,
    ):
        if not (hasattr(cutouts, "ids") and hasattr(cutouts, "iter_batches")):
            msg = f"cutouts must be a CutoutSet, got {type(cutouts).__name__}"
            raise InvalidInputError(msg)
        self.cutouts = cutouts
        self.user = user
        if default_mode is not None:
            self._check_mode(default_mode)
        if isinstance(head, str):
            make_head(head)  # validate the name now
        self.default_mode = default_mode or "fast"
        self.head = DEFAULT_HEAD if head is None else head
        self.rotation_average = bool(rotation_average)
        self.feature_stages = tuple(int(x) for x in feature_stages)
        self._blocks = None
        self.batch_size = int(batch_size)
        self.workdir = None if workdir is None else os.path.abspath(os.fspath(workdir))
        self._classifier = classifier
        self._ids = np.asarray(cutouts.ids).astype(str)
        self._row = {obj_id: i for i, obj_id in enumerate(self._ids)}
        self._embeddings = None
        self._center_vec = None
        self._pca = None
        self._scores = None
        self._parts = {}
        self._threshold = 0.5
        self._last_mode = None
        self._state = {}

        if self.workdir is not None:
            os.makedirs(self.workdir, exist_ok=True)
            self._store = LabelStore(os.path.join(self.workdir, "labels.sqlite"))
            self._open_workdir(default_mode, head)
        else:
            self._store = LabelStore()
        if labels is not None:
            new = parse_labels(labels, known_ids=self._ids)
            current = self._store.current()
            changed = {k: v for k, v in new.items() if current.get(k) != v}
            if changed:
                self._store.add(changed, source="import", user=self.user, cycle=self.cycle)

    # ------------------------------------------------------------------ persistence
    def _path(self, name):
        return os.path.join(self.workdir, name)

    def _open_workdir(self, default_mode, head):
        path = self._path("session.json")
        if os.path.exists(path):
            state = _read_state(path)
            if state.get("format") != _FORMAT:
                msg = f"{path} is not an anomalymatch_astro session file"
                raise CheckpointError(msg)
            if default_mode is None and state.get("default_mode") in MODES:
                self.default_mode = state["default_mode"]
            if head is None and state.get("head") in HEADS:
                self.head = state["head"]
            if state.get("ids_sha256") != ids_digest(self._ids):
                msg = (
                    f"the workdir {self.workdir!r} belongs to a different CutoutSet ({state.get('n')} "
                    f"objects, other ids); open it with the same cutouts or use a new workdir"
                )
                raise InvalidInputError(msg)
            self._state = state
        else:
            cutouts_path = getattr(self.cutouts, "path", None)
            self._state = {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "cutouts_path": os.path.abspath(cutouts_path) if cutouts_path else None,
                "n": len(self._ids),
                "ids_sha256": ids_digest(self._ids),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            self._save_state()
        unknown = sorted(set(self._store.current()) - set(self._row))
        if unknown:
            msg = f"{len(unknown)} labelled id(s) in {self.workdir!r} are not in the cutouts: {unknown[:10]}"
            raise UnknownIDError(msg, ids=unknown)
        # the last model
        if self._classifier is None:
            for name in ("model", "model.old"):
                if os.path.isdir(self._path(name)):
                    from ..classifier import AnomalyClassifier

                    self._classifier = AnomalyClassifier.load(self._path(name))
                    break
        # the last scores
        cycle = int(self._store.get_meta("cycle", 0))
        spath = self._path("scores.h5")
        if os.path.exists(spath):
            try:
                with h5py.File(spath, "r") as f:
                    ids = f["ids"].asstr()[...]
                    if len(ids) == len(self._ids) and np.array_equal(ids, self._ids):
                        self._scores = np.asarray(f["score"][...], dtype=np.float64)
                        self._parts = {k: np.asarray(f["parts"][k][...], dtype=np.float64) for k in f.get("parts", {})}
                        self._threshold = float(f.attrs.get("threshold", 0.5))
                        self._last_mode = str(f.attrs.get("mode", "")) or None
                        cycle = max(cycle, int(f.attrs.get("cycle", 0)))
            except (OSError, KeyError) as exc:
                log.warning("could not read the saved scores %s (%s); train again", spath, exc)
        self._store.set_meta("cycle", cycle)

    def _save_state(self):
        if self.workdir is None:
            return
        state = dict(self._state)
        state["cycle"] = self.cycle
        state["default_mode"] = self.default_mode
        state["head"] = self.head if isinstance(self.head, str) else type(self.head).__name__
        state["rotation_average"] = self.rotation_average
        state["feature_stages"] = list(self.feature_stages)
        self._state = state
        _write_json_atomic(self._path("session.json"), state)

    @classmethod
    def open(cls, workdir, **kwargs):
        """Reopen a session from its workdir, reading the CutoutSet file recorded in ``session.json``.

        Parameters
        ----------
        workdir : str or os.PathLike
            The session's workdir.
        **kwargs
            Passed on to the constructor (``classifier``, ``user``, ``head`` ...).

        Returns
        -------
        ActiveLearningSession
        """
        from ..cutouts import CutoutSet

        path = os.path.join(os.fspath(workdir), "session.json")
        if not os.path.exists(path):
            msg = f"{os.fspath(workdir)!r} holds no session (no session.json)"
            raise CheckpointError(msg)
        state = _read_state(path)
        cpath = state.get("cutouts_path")
        if not cpath:
            msg = (
                "this session was made from in-memory cutouts, so their file is unknown; use "
                "ActiveLearningSession(cutouts, workdir=...) with the same cutouts"
            )
            raise CheckpointError(msg)
        kwargs.setdefault("rotation_average", state.get("rotation_average", False))
        kwargs.setdefault("feature_stages", tuple(state.get("feature_stages", ())))
        return cls(CutoutSet.from_hdf5(cpath), workdir=workdir, **kwargs)

    def close(self):
        """Close the label database (the session is unusable afterwards)."""
        self._store.close()

    # ------------------------------------------------------------------ properties
    @property
    def classifier(self):
        """The FixMatch classifier (created on first use when none was given)."""
        if self._classifier is None:
            from ..classifier import AnomalyClassifier

            self._classifier = AnomalyClassifier()
        return self._classifier

    @property
    def cycle(self):
        """Number of completed trainings (labels record the cycle they were made in)."""
        return int(self._store.get_meta("cycle", 0))

    @property
    def labels(self):
        """The current labels, ``{id: "anomaly" | "normal"}``."""
        return {k: label_word(v) for k, v in self._store.current().items()}

    @property
    def label_store(self):
        """The `LabelStore` (SQLite) behind the session."""
        return self._store

    @property
    def scores(self):
        """The combined scores of the last training, aligned with the cutouts (None before)."""
        return None if self._scores is None else self._scores.copy()

    @property
    def model_scores(self):
        """The last scores of each model, ``{"fast": ..., "fixmatch": ...}`` (those that ran)."""
        return {k: v.copy() for k, v in self._parts.items()}

    @property
    def threshold(self):
        """The decision boundary on `scores` used by the uncertainty strategy."""
        return self._threshold

    def labelled_mask(self):
        """Boolean mask of the labelled objects, aligned with the cutouts."""
        mask = np.zeros(len(self._ids), dtype=bool)
        rows = [self._row[i] for i in self._store.current()]
        mask[rows] = True
        return mask

    def label_array(self):
        """Labels as an int array aligned with the cutouts: 1 anomaly, 0 normal, -1 unlabelled."""
        y = np.full(len(self._ids), -1, dtype=np.int64)
        for obj_id, value in self._store.current().items():
            y[self._row[obj_id]] = value
        return y

    # ------------------------------------------------------------------ labels
    def label(self, labels, *, source="human", user=None):
        """Record labels (one committed transaction).

        Parameters
        ----------
        labels : mapping or Table
            ``{id: "anomaly" | "normal"}`` (1 / 0 work too).
        source : {"human", "import", "oracle"}, optional
        user : str, optional
            Overrides the session's user for these labels.

        Raises
        ------
        UnknownIDError
            When an id is not in the cutouts (nothing is written).
        LabelError
            Malformed labels (nothing is written).
        """
        parsed = parse_labels(labels, known_ids=self._ids)
        if parsed:
            self._store.add(parsed, source=source, user=self.user if user is None else user, cycle=self.cycle)

    def undo(self):
        """Remove the newest label event (restoring the previous label of that id).

        Returns
        -------
        dict or None
            The removed event (``id``, ``label`` 1/0, ``time``, ``user``, ``cycle``,
            ``source``), or None when there was nothing to undo.
        """
        return self._store.undo()

    def history(self):
        """Every label event, oldest first.

        Returns
        -------
        `~astropy.table.Table`
            Columns ``seq``, ``id``, ``label``, ``time``, ``user``, ``cycle``, ``source``.
        """
        return self._store.history()

    # ------------------------------------------------------------------ embeddings
    @property
    def embeddings(self):
        """The cached backbone embeddings (N, D) float32, computed on first use.

        They are computed once with the classifier as it is at that moment
        (pretrained backbone when it is not fitted yet), stored in
        ``workdir/embeddings.h5`` and reused by every later cycle, even after
        FixMatch changed the classifier's weights; the key is kept in
        ``session.json``.
        """
        if self._embeddings is not None:
            return self._embeddings
        cache_path = self._path("embeddings.h5") if self.workdir else None
        key = self._state.get("embedding_key")
        if key is not None and cache_path is not None:
            emb = EmbeddingCache(cache_path).load(key)
            if emb is not None and len(emb) == len(self._ids):
                self._embeddings = emb
                self._blocks = self._state.get("embedding_blocks")
                return emb
        clf = self.classifier
        stages = self.feature_stages if hasattr(clf, "feature_widths") else ()
        key = embedding_key(self.cutouts, clf, rotation_average=self.rotation_average, stages=stages)
        if stages and not hasattr(getattr(clf, "ema_model", None), "forward_intermediates"):
            log.warning(
                "the backbone does not expose its feature stages (timm forward_intermediates; "
                "a newer timm has it): the fast head uses the head features alone"
            )
            stages = ()
            key = embedding_key(self.cutouts, clf, rotation_average=self.rotation_average)
        self._embeddings = compute_embeddings(
            self.cutouts,
            clf,
            cache_path=cache_path,
            rotation_average=self.rotation_average,
            stages=stages,
            batch_size=self.batch_size,
        )
        self._blocks = clf.feature_widths(stages) if stages else None
        if self.workdir is not None:
            self._state["embedding_key"] = key
            self._state["embedding_blocks"] = self._blocks
            self._save_state()
        return self._embeddings

    def _center(self):
        if self._center_vec is None:  # the embeddings' centre for cosine geometry
            from ._strategies import _column_mean

            self._center_vec = _column_mean(self.embeddings)
        return self._center_vec

    def _pca64(self):
        if self._pca is None:
            emb = self.embeddings
            key = self._state.get("embedding_key")
            cache = EmbeddingCache(self._path("embeddings.h5")) if (self.workdir and key) else None
            k = int(min(64, emb.shape[1], len(emb)))
            self._pca = cache.load_pca(key, k) if cache is not None else None
            if self._pca is None:
                self._pca = fit_pca(emb, k)
                if cache is not None:
                    cache.save_pca(key, *self._pca)
        return self._pca

    def _make_head(self):
        if not isinstance(self.head, str):
            return self.head
        if self.head == "spreading":
            return make_head("spreading", pca=self._pca64())
        if self.head == "ensemble" and self._blocks:
            return make_head("ensemble", blocks=self._blocks)  # members on each feature level
        return make_head(self.head)

    # ------------------------------------------------------------------ training
    @staticmethod
    def _check_mode(mode):
        if mode not in MODES:
            msg = f"mode must be one of {MODES}, got {mode!r}"
            raise InvalidInputError(msg)
        return mode

    def train(self, *, mode=None, iterations=None, progress=True):
        """Train on the current labels, score every object, save, and advance the cycle.

        Parameters
        ----------
        mode : {"fast", "fixmatch", "both"}, optional
            ``"fast"``: the fast head on cached embeddings (seconds);
            ``"fixmatch"``: `AnomalyClassifier.fit` (minutes); ``"both"``: both,
            combined by `combine_scores` (mean of rank-normalised scores).
            Default: the session's ``default_mode``.
        iterations : int, optional
            FixMatch steps (default: the classifier's configuration).
        progress : bool, optional
            Show progress bars.

        Returns
        -------
        TrainResult
        """
        mode = self._check_mode(self.default_mode if mode is None else mode)
        t0 = time.perf_counter()
        y = self.label_array()
        n1, n0 = int((y == 1).sum()), int((y == 0).sum())
        if n1 == 0 or n0 == 0:
            msg = (
                f"training needs at least one anomaly and one normal; the session has {n1} anomalies "
                f"and {n0} normals (label a few of each with session.label)"
            )
            raise LabelError(msg)
        lab = y >= 0
        timings, metrics, parts = {}, {}, {}
        if mode in ("fast", "both"):
            t = time.perf_counter()
            emb = self.embeddings
            timings["embeddings"] = time.perf_counter() - t
            t = time.perf_counter()
            head = self._make_head()
            head.fit(emb, y)
            parts["fast"] = np.asarray(head.score(emb), dtype=np.float64)
            timings["fast"] = time.perf_counter() - t
            metrics["fast"] = {
                "head": getattr(head, "name", type(head).__name__),
                "train_auroc": _auroc(y[lab], parts["fast"][lab]),
            }
        if mode in ("fixmatch", "both"):
            t = time.perf_counter()
            clf = self.classifier
            words = {self._ids[i]: label_word(y[i]) for i in np.flatnonzero(lab)}
            clf.fit(self.cutouts, words, iterations=iterations, progress=progress)
            parts["fixmatch"] = np.asarray(
                clf.score(self.cutouts, batch_size=self.batch_size, progress=progress), dtype=np.float64
            )
            timings["fixmatch"] = time.perf_counter() - t
            metrics["fixmatch"] = {"train_auroc": _auroc(y[lab], parts["fixmatch"][lab])}
        scores = combine_scores(parts)
        threshold = decision_threshold(scores, y)
        metrics["combined"] = {"train_auroc": _auroc(y[lab], scores[lab]), "threshold": threshold}

        cycle = self.cycle + 1
        t = time.perf_counter()
        if self.workdir is not None:
            if "fixmatch" in parts:
                self._save_model()
            self._save_scores(scores, parts, threshold, mode, cycle)
        timings["save"] = time.perf_counter() - t
        self._scores, self._parts, self._threshold, self._last_mode = scores, parts, threshold, mode
        self._store.set_meta("cycle", cycle)
        self._save_state()
        result = TrainResult(
            mode=mode,
            cycle=cycle,
            seconds=time.perf_counter() - t0,
            n_anomalies=n1,
            n_normals=n0,
            timings=timings,
            metrics=metrics,
        )
        log.info("cycle %d trained (%s) in %.1f s on %d anomalies + %d normals", cycle, mode, result.seconds, n1, n0)
        return result

    def _save_model(self):
        final = self._path("model")
        tmp = self._path(f"model.tmp{os.getpid()}")
        old = self._path("model.old")
        for name in os.listdir(self.workdir):  # left by a run killed while saving (any pid)
            if name.startswith("model.tmp"):
                shutil.rmtree(self._path(name), ignore_errors=True)
        self.classifier.save(tmp)
        if os.path.exists(old):
            shutil.rmtree(old)
        if os.path.exists(final):
            os.replace(final, old)
        os.replace(tmp, final)
        if os.path.exists(old):
            shutil.rmtree(old)

    def _save_scores(self, scores, parts, threshold, mode, cycle):
        final = self._path("scores.h5")
        tmp = f"{final}.tmp{os.getpid()}"
        for name in os.listdir(self.workdir):  # left by a run killed while saving (any pid)
            if name.startswith("scores.h5.tmp"):
                os.remove(self._path(name))
        with h5py.File(tmp, "w") as f:
            f.create_dataset("ids", data=self._ids.astype(object), dtype=h5py.string_dtype())
            f.create_dataset("score", data=scores)
            grp = f.create_group("parts")
            for name, values in parts.items():
                grp.create_dataset(name, data=values)
            f.attrs["cycle"] = int(cycle)
            f.attrs["mode"] = mode
            f.attrs["threshold"] = float(threshold)
            f.attrs["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.replace(tmp, final)

    # ------------------------------------------------------------------ candidates
    def _rank_of(self, rows):
        if self._scores is None:
            return np.zeros(len(rows), dtype=np.int64)
        key = np.where(np.isfinite(self._scores), -self._scores, np.inf)
        order = np.argsort(key, kind="stable")
        ranks = np.empty(len(order), dtype=np.int64)
        ranks[order] = np.arange(1, len(order) + 1)
        return ranks[rows]

    def candidates(self, n, *, strategy="top", like=None, pool=None):
        """The next ``n`` unlabelled objects to look at.

        Parameters
        ----------
        n : int
            How many (fewer when fewer unlabelled objects remain).
        strategy : {"top", "uncertainty", "diversity", "mix", "similar"}, optional
            See :ref:`active-learning-strategies`: highest score; closest to the
            decision boundary; k-center greedy in embedding space within the
            top-scored ``pool``; a blend (half top, a quarter each of uncertainty
            and diversity); nearest neighbours in embedding space of ``like``.
        like : str or list of str, optional
            For ``"similar"``: the object id(s) to find more of.
        pool : int, optional
            For ``"diversity"`` and ``"mix"``: size of the top-scored pool (default ``max(5 n, 50)``).

        Returns
        -------
        `~astropy.table.QTable`
            Columns ``id``, ``score`` (NaN before training), ``rank`` (1 = highest
            score over all objects; 0 before training), and ``similarity`` for
            ``"similar"``; in presentation order.  Pixels: ``session.cutouts[table["id"]]``.
        """
        from astropy.table import QTable

        if strategy not in STRATEGIES:
            msg = f"strategy must be one of {STRATEGIES}, got {strategy!r}"
            raise InvalidInputError(msg)
        n = int(n)
        if n < 0:
            msg = f"n must be >= 0, got {n}"
            raise InvalidInputError(msg)
        exclude = self.labelled_mask()
        extra = {}
        if strategy == "similar":
            if like is None:
                msg = 'strategy="similar" needs like=<id> or like=[ids]'
                raise InvalidInputError(msg)
            query = self.cutouts.index_of([like] if isinstance(like, str) else list(like))
            rows, sim = select_similar(self.embeddings, query, n, exclude=exclude, center=self._center())
            extra["similarity"] = sim
        else:
            if self._scores is None:
                msg = f'strategy {strategy!r} needs scores; call session.train() first (or use "similar")'
                raise InvalidInputError(msg)
            if strategy == "top":
                rows = select_top(self._scores, n, exclude=exclude)
            elif strategy == "uncertainty":
                rows = select_uncertain(self._scores, n, exclude=exclude, threshold=self._threshold)
            elif strategy == "diversity":
                rows = select_diverse(
                    self._scores, self.embeddings, n, exclude=exclude, pool=pool, center=self._center()
                )
            else:
                rows = select_mix(
                    self._scores,
                    self.embeddings,
                    n,
                    exclude=exclude,
                    threshold=self._threshold,
                    pool=pool,
                    center=self._center(),
                )
        rows = np.asarray(rows, dtype=np.int64)
        table = QTable()
        table["id"] = self._ids[rows] if len(rows) else np.array([], dtype=str)
        table["score"] = self._scores[rows] if self._scores is not None else np.full(len(rows), np.nan)
        table["rank"] = self._rank_of(rows)
        for name, values in extra.items():
            table[name] = values
        table.meta["strategy"] = strategy
        table.meta["cycle"] = self.cycle
        return table

    # ------------------------------------------------------------------ output
    def provenance(self):
        """Provenance of the current scores (for table metadata)."""
        from ..utils._version import __version__

        prov = {
            "anomalymatch_astro_version": __version__,
            "cycle": self.cycle,
            "mode": self._last_mode,
            "combination": "mean of rank-normalised scores" if len(self._parts) > 1 else "single model",
            "head": self.head if isinstance(self.head, str) else type(self.head).__name__,
            "n_labelled": int(self.labelled_mask().sum()),
        }
        clf = self._classifier
        if clf is not None:
            prov["model_hash"] = getattr(clf, "model_hash", None)
            config = getattr(clf, "config", None)
            if dataclasses.is_dataclass(config):
                prov["classifier_config"] = json.dumps(dataclasses.asdict(config), default=str)
        if self._state.get("embedding_key"):
            prov["embedding_model_hash"] = self._state["embedding_key"].get("model_hash")
        return prov

    def to_table(self):
        """The catalogue: one row per cutout with id, SkyCoord, score, rank and labels.

        Built by `~anomalymatch_astro.catalogs.scores_to_table`; scores are NaN
        before the first training.  Provenance (cycle, mode, model hash ...) is in ``meta``.

        Returns
        -------
        `~astropy.table.QTable`
        """
        from ..catalogs import scores_to_table

        scores = self._scores if self._scores is not None else np.full(len(self._ids), np.nan)
        return scores_to_table(
            self.cutouts, scores, label_records=self._store.current_records(), provenance=self.provenance()
        )

    def __repr__(self):
        where = self.workdir or "memory"
        return (
            f"<ActiveLearningSession: {len(self._ids)} objects, {len(self._store)} labelled, "
            f"cycle {self.cycle}, {where}>"
        )
