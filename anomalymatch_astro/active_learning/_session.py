"""`ActiveLearningSession`: candidates -> labels -> retrain, durable on disk.

A session ties together a CutoutSet, a durable label store, the cached embeddings
with a fast head, and an `~anomalymatch_astro.AnomalyClassifier` trained with
FixMatch.  With a ``workdir`` everything survives a crash or restart; what is kept
there, and how, is `SessionWorkdir`'s business (``_workdir.py``).
"""

import dataclasses
import json
import logging
import time

import numpy as np

from ..catalogs import rank_systems
from ..embeddings import check_zoom, fit_pca, make_head
from ..utils import label_word, parse_labels
from ..utils.exceptions import InvalidInputError, LabelError, UnknownIDError
from ._candidates import candidate_table, session_systems
from ._labels import LabelStore
from ._scorer import session_scorer
from ._strategies import _column_mean, decision_threshold
from ._training import TrainResult, combine_scores, fit_fast_head, fit_fixmatch, session_embeddings, train_auroc
from ._workdir import MODES, SessionWorkdir, recorded_cutouts_path

__all__ = ["ActiveLearningSession", "TrainResult", "MODES", "DEFAULT_HEAD", "combine_scores"]

log = logging.getLogger(__name__)

#: The head used by the "fast" mode unless another is chosen (see the embeddings user guide).
DEFAULT_HEAD = "ensemble"

#: Defaults of the embedding settings for a new session.
DEFAULT_ROTATION_AVERAGE = True
DEFAULT_FEATURE_STAGES = (-2, -1)
DEFAULT_ZOOM = (0.5,)
DEFAULT_PROFILE = True


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
        workdir, else ``"fast"`` (see the embeddings user guide); use ``"both"``
        when FixMatch can train long enough (a GPU) to add to it.
    head : str or head object, optional
        The fast head: ``"ensemble"`` (default, unless the workdir records
        another: mean rank of the logistic probe and the kNN head),
        ``"logistic"``, ``"knn"``, ``"spreading"``, or any object with
        ``fit(embeddings, labels)`` / ``score(embeddings)``.
    rotation_average : bool, optional
        Embed every cutout as the mean of its 8 rotations and flips (default: the
        value recorded in the workdir, else True, because the sky has no up; 8x the
        one-off embedding cost).  Set False for images with a natural orientation.
    feature_stages : sequence of int, optional
        Backbone stages whose pooled feature maps are appended to the head features
        (default: the value recorded in the workdir, else ``(-2, -1)``, the last two;
        ``()`` for the head features alone).  The ``"ensemble"`` head then fits its
        members on each level separately and averages their ranks (see
        docs/benchmarks.rst).  Ignored for classifiers without ``feature_widths``
        (stand-in embedders).
    zoom : sequence of float, optional
        Centre views appended to the embeddings: for each fraction, the embeddings of the
        central part of every cutout (``0.5``: the central half, shown at twice the scale)
        as more feature levels beside the full view (`~anomalymatch_astro.embeddings.compute_embeddings`;
        one more embedding pass per view).  Default: the value recorded in the workdir, else
        ``(0.5,)``; ``()``: the full cutouts alone.  Helps when the object is small in a crowded field
        (docs/benchmarks.rst, "Real sky").
    profile : bool, optional
        Append the radial residual profile of every cutout
        (`~anomalymatch_astro.embeddings.profile_features`: per band and elliptical annulus, the
        faint structure a smooth galaxy at the centre does not explain) as one more feature
        level.  Default: the value recorded in the workdir, else True (better on every set
        measured, docs/benchmarks.rst, "Real sky"); False for the network's features alone.
    batch_size : int, optional
        Batch size for embedding and scoring.
    embeddings : array-like, optional
        Precomputed embeddings (N, D) of these cutouts, one row per cutout, made
        with this session's classifier and settings (for example another session's
        `embeddings`); they are used instead of computing (or loading) them and are
        not written to the workdir.
    embedding_blocks : list of int, optional
        The widths of the feature levels in ``embeddings`` (another session's
        `embedding_blocks`); None for a single level.
    systems : None, False, str, array-like, `~astropy.units.Quantity` or dict, optional
        How cutouts are grouped into systems (fragments of one object, close
        neighbours), which `candidates` shows one entry each.  Default: the cutouts'
        ``system`` column when they have one, else
        `~anomalymatch_astro.catalogs.group_systems` on their sky positions with its
        default radius (an eighth of the cutout side); no grouping for cutouts without
        sky positions or pixel scale.  ``False``: no grouping.  A column name, or one
        system id per cutout: that grouping.  An angle: the linking radius.  A dict:
        keyword arguments of `~anomalymatch_astro.catalogs.group_systems` (``radius``,
        ``segmentation``, ``wcs``, ``parents``, ``factor``, ``pixel_scale``).  The
        grouping is computed once per session (on first use) and is not stored in the
        workdir: give the same ``systems`` when reopening one.

    Notes
    -----
    Reopening a workdir restores every setting it records (``default_mode``, ``head``,
    ``rotation_average``, ``feature_stages``, ``zoom``, ``profile``); an explicit ``default_mode`` or
    ``head`` replaces the recorded one, while an embedding setting that differs from the one
    the cached embeddings were made with raises
    `~anomalymatch_astro.utils.exceptions.InvalidInputError`.

    Examples
    --------
    A session with a stand-in embedder (any object with ``embed`` and
    ``model_hash`` works for the fast mode; 4-pixel noise images have no galaxy profile):

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
    >>> s = ActiveLearningSession(cs, classifier=Flat(), default_mode="fast", user="me", profile=False,
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
        rotation_average=None,
        feature_stages=None,
        zoom=None,
        profile=None,
        batch_size=256,
        embeddings=None,
        embedding_blocks=None,
        systems=None,
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
        self.batch_size = int(batch_size)
        self._classifier = classifier
        self._ids = np.asarray(cutouts.ids).astype(str)
        self._row = {obj_id: i for i, obj_id in enumerate(self._ids)}
        self._embeddings, self._blocks = None, None
        self._given_embeddings = embeddings is not None or embedding_blocks is not None
        if self._given_embeddings:
            self._embeddings, self._blocks = self._check_embeddings(embeddings, embedding_blocks)
        self._center_vec = None
        self._pca = None
        self._scores = None
        self._parts = {}
        self._threshold = 0.5
        self._last_mode = None
        self._systems_spec = systems
        self._systems_done = False
        self._systems = None
        if systems is not None:  # an explicit grouping is checked (and computed) now
            self._get_systems()

        settings = {
            "default_mode": default_mode,
            "head": head,
            "rotation_average": rotation_average,
            "feature_stages": feature_stages,
            "zoom": None if zoom is None else check_zoom(zoom),
            "profile": None if profile is None else bool(profile),
        }
        # checked before the workdir is touched: a typo in the labels leaves no workdir behind
        new_labels = None if labels is None else parse_labels(labels, known_ids=self._ids)
        self._workdir = None if workdir is None else SessionWorkdir(workdir)
        self._store = None
        try:
            self._open_store(settings, new_labels)
        except BaseException:
            if self._store is not None:
                self._store.close()
            if self._workdir is not None:
                self._workdir.discard()  # a new workdir that failed to start is removed, an old one kept
            raise

    def _open_store(self, settings, new_labels):
        """Open (or start) the workdir and the label store, restore the settings, add the start labels."""
        if self._workdir is not None:
            cutouts_path = getattr(self.cutouts, "path", None)
            self._workdir.open(self._ids, cutouts_path=cutouts_path)
            settings = self._workdir.restore_settings(**settings)
        self.default_mode = settings["default_mode"] or "fast"
        self.head = DEFAULT_HEAD if settings["head"] is None else settings["head"]
        ra, stages = settings["rotation_average"], settings["feature_stages"]
        self.rotation_average = DEFAULT_ROTATION_AVERAGE if ra is None else bool(ra)
        self.feature_stages = tuple(int(x) for x in (DEFAULT_FEATURE_STAGES if stages is None else stages))
        self.zoom = check_zoom(DEFAULT_ZOOM if settings["zoom"] is None else settings["zoom"])
        self.profile = DEFAULT_PROFILE if settings["profile"] is None else bool(settings["profile"])

        if self._workdir is not None:
            self._store = LabelStore(self._workdir.label_store_path)
            self._restore_workdir()
        else:
            self._store = LabelStore()
        if new_labels is not None:
            current = self._store.current()
            changed = {k: v for k, v in new_labels.items() if current.get(k) != v}
            if changed:
                self._store.add(changed, source="import", user=self.user, cycle=self.cycle)

    def _check_embeddings(self, embeddings, blocks):
        if embeddings is None:
            msg = "embedding_blocks describes the levels of embeddings=...; pass both, or neither"
            raise InvalidInputError(msg)
        emb = np.asarray(embeddings)
        if emb.ndim != 2 or emb.shape[0] != len(self._ids):
            msg = (
                f"embeddings must be an (N, D) array with one row per cutout (N = {len(self._ids)}), "
                f"got shape {emb.shape}; compute them for these cutouts (e.g. another session's .embeddings)"
            )
            raise InvalidInputError(msg)
        if not np.issubdtype(emb.dtype, np.floating):
            emb = emb.astype(np.float32)
        if blocks is not None:
            blocks = [int(b) for b in blocks]
            if any(b <= 0 for b in blocks) or sum(blocks) != emb.shape[1]:
                msg = (
                    f"embedding_blocks must be positive widths adding up to the embedding width "
                    f"{emb.shape[1]}, got {blocks}"
                )
                raise InvalidInputError(msg)
        return emb, blocks

    # ------------------------------------------------------------------ persistence
    @property
    def workdir(self):
        """The absolute path of the session's workdir (None for an in-memory session)."""
        return None if self._workdir is None else self._workdir.path

    def _restore_workdir(self):
        """Check the labels, reload the last model and scores, and record a new workdir's settings."""
        wd = self._workdir
        unknown = sorted(set(self._store.current()) - set(self._row))
        if unknown:
            msg = f"{len(unknown)} labelled id(s) in {wd.path!r} are not in the cutouts: {unknown[:10]}"
            raise UnknownIDError(msg, ids=unknown)
        if not wd.existed:
            self._save_state()
        if self._classifier is None:
            self._classifier = wd.load_model()
        cycle = int(self._store.get_meta("cycle", default=0))
        saved = wd.load_scores(self._ids)
        if saved is not None:
            self._scores, self._parts = saved["scores"], saved["parts"]
            self._threshold, self._last_mode = saved["threshold"], saved["mode"]
            cycle = max(cycle, saved["cycle"])
        self._store.set_meta("cycle", cycle)

    def _save_state(self):
        if self._workdir is None:
            return
        self._workdir.save_state(
            cycle=self.cycle,
            default_mode=self.default_mode,
            head=self.head if isinstance(self.head, str) else type(self.head).__name__,
            rotation_average=self.rotation_average,
            feature_stages=list(self.feature_stages),
            zoom=list(self.zoom),
            profile=self.profile,
        )

    @classmethod
    def open(cls, workdir, **kwargs):
        """Reopen a session from its workdir, reading the CutoutSet file recorded in ``session.json``.

        Parameters
        ----------
        workdir : str or os.PathLike
            The session's workdir.
        **kwargs
            Passed on to the constructor (``classifier``, ``user``, ``head`` ...); the
            settings recorded in the workdir are restored by the constructor.

        Returns
        -------
        ActiveLearningSession
        """
        from ..cutouts import CutoutSet

        return cls(CutoutSet.from_hdf5(recorded_cutouts_path(workdir)), workdir=workdir, **kwargs)

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
        return int(self._store.get_meta("cycle", default=0))

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
    def last_train_mode(self):
        """The mode (``"fast"``, ``"fixmatch"`` or ``"both"``) of the training behind `scores` (None before)."""
        return self._last_mode

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
    def label(self, labels, *, source="human", user=None, members=False):
        """Record labels (one committed transaction).

        Labelling an object labels that object only, also when it stands for a system
        of several cutouts in `candidates`; its other members stay unlabelled (and the
        system comes back with its next member) unless ``members=True``.

        Parameters
        ----------
        labels : mapping or Table
            ``{id: "anomaly" | "normal"}`` (1 / 0 work too).
        source : {"human", "import", "oracle"}, optional
        user : str, optional
            Overrides the session's user for these labels.
        members : bool, optional
            Also give each label to the unlabelled other members of the object's system
            (see `ActiveLearningSession.systems`); labelled members keep their label.

        Raises
        ------
        UnknownIDError
            When an id is not in the cutouts (nothing is written).
        LabelError
            Malformed labels (nothing is written).
        """
        parsed = parse_labels(labels, known_ids=self._ids)
        systems = self._get_systems() if members else None
        if parsed and systems is not None:
            labelled = self.labelled_mask()
            for obj_id, value in list(parsed.items()):
                for row in np.flatnonzero(systems == systems[self._row[obj_id]]):
                    other = str(self._ids[row])
                    if not labelled[row] and other not in parsed:
                        parsed[other] = value
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
        """The backbone embeddings (N, D) float32 of the cutouts, computed on first use.

        Unless given to the constructor (``embeddings=``), they are computed once with
        the classifier as it is at that moment (pretrained backbone when it is not
        fitted yet), stored in ``workdir/embeddings.h5`` and reused by every later
        cycle, even after FixMatch changed the classifier's weights; the key is kept
        in ``session.json``.  Pass them to another session on the same cutouts with
        ``ActiveLearningSession(cutouts, embeddings=s.embeddings, embedding_blocks=s.embedding_blocks)``.
        """
        return self._compute_embeddings(progress=True)

    def _compute_embeddings(self, *, progress):
        if self._embeddings is None:
            self._embeddings, self._blocks = session_embeddings(self, progress=progress)
        return self._embeddings

    @property
    def embedding_blocks(self):
        """The widths of the feature levels in `embeddings` (list of int), or None for one level.

        Accessing it computes the embeddings when they are not there yet.
        """
        self.embeddings  # noqa: B018 (computes them, and their blocks, on first use)
        return None if self._blocks is None else list(self._blocks)

    def _center(self):
        if self._center_vec is None:  # the embeddings' centre for cosine geometry
            self._center_vec = _column_mean(self.embeddings)
        return self._center_vec

    def _pca64(self):
        if self._pca is None:
            emb = self.embeddings
            k = int(min(64, emb.shape[1], len(emb)))
            if self._workdir is not None and not self._given_embeddings:
                self._pca = self._workdir.pca(emb, k)
            else:
                self._pca = fit_pca(emb, n_components=k)
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
            ``"fixmatch"``: `~anomalymatch_astro.classifier.AnomalyClassifier.fit` (minutes); ``"both"``: both,
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
            emb = self._compute_embeddings(progress=progress)
            timings["embeddings"] = time.perf_counter() - t
            t = time.perf_counter()
            parts["fast"], metrics["fast"] = fit_fast_head(self._make_head(), emb, y)
            timings["fast"] = time.perf_counter() - t
        if mode in ("fixmatch", "both"):
            t = time.perf_counter()
            parts["fixmatch"], metrics["fixmatch"] = fit_fixmatch(
                self.classifier,
                self.cutouts,
                y,
                iterations=iterations,
                batch_size=self.batch_size,
                progress=progress,
            )
            timings["fixmatch"] = time.perf_counter() - t
        scores = combine_scores(parts)
        threshold = decision_threshold(scores, y)
        metrics["combined"] = {"train_auroc": train_auroc(y[lab], scores[lab]), "threshold": threshold}

        cycle = self.cycle + 1
        t = time.perf_counter()
        if self._workdir is not None:
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
        self._workdir.save_model(self.classifier)

    def _save_scores(self, scores, parts, threshold, mode, cycle):
        self._workdir.save_scores(self._ids, scores, parts, threshold=threshold, mode=mode, cycle=cycle)

    def scorer(self, *, mode=None):
        """A picklable `SessionScorer` of new cutouts on this session's scale (mode: the last training's)."""
        return session_scorer(self, mode=mode)

    # ------------------------------------------------------------------ candidates
    def _get_systems(self):
        return session_systems(self)

    @property
    def systems(self):
        """The system id of every cutout (int array aligned with the cutouts), or None without grouping.

        Computed once, on first use (see the ``systems`` parameter).
        """
        systems = self._get_systems()
        return None if systems is None else systems.copy()

    def candidates(self, n, *, strategy="top", like=None, pool=None, group=True):
        """The next ``n`` unlabelled objects to look at, one per system by default.

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
        group : bool, optional
            Show one object per system (see `ActiveLearningSession.systems`): the ``n`` candidates are ``n``
            distinct systems, each shown by its first unlabelled member in the
            strategy's order, with the others listed in ``members``.  ``"similar"``
            also leaves out the systems of the ``like`` objects.  ``False``: every
            object on its own.  Without systems (no sky positions) both are the same.

        Returns
        -------
        `~astropy.table.QTable`
            Columns ``id``, ``score`` (NaN before training), ``rank`` (1 = highest
            score over all objects; 0 before training), and ``similarity`` for
            ``"similar"``; in presentation order.  When grouped by system, also
            ``system`` (the system id), ``n_members`` (its other cutouts, labelled or
            not) and ``members`` (their ids, best score first, comma-separated).
            Pixels: ``session.cutouts[table["id"]]``.
        """
        return candidate_table(self, n, strategy, like, pool, group)

    # ------------------------------------------------------------------ output
    def provenance(self):
        """Provenance of the current scores (for table metadata)."""
        from ..utils._version import __version__

        prov = {
            "anomalymatch_astro_version": __version__,
            "cycle": self.cycle,
            "mode": self.last_train_mode,
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
        key = None if self._workdir is None or self._given_embeddings else self._workdir.embedding_key
        if key:
            prov["embedding_model_hash"] = key.get("model_hash")
        return prov

    def to_table(self):
        """The catalogue: one row per cutout with id, SkyCoord, score, rank and labels.

        Built by `~anomalymatch_astro.catalogs.scores_to_table`; scores are NaN
        before the first training.  Provenance (cycle, mode, model hash ...) is in ``meta``.
        With systems (see `ActiveLearningSession.systems`), also ``system``, ``system_rank`` (1 = the system of
        the best score), ``system_primary`` (the best-scored member of its system) and
        ``system_size``, as `~anomalymatch_astro.catalogs.group_systems` writes them.

        Returns
        -------
        `~astropy.table.QTable`
        """
        from ..catalogs import scores_to_table

        scores = self._scores if self._scores is not None else np.full(len(self._ids), np.nan)
        table = scores_to_table(
            self.cutouts, scores, label_records=self._store.current_records(), provenance=self.provenance()
        )
        systems = self._get_systems()
        if systems is not None:
            rows = self.cutouts.index_of([str(i) for i in table["id"]])
            rank, primary, size = rank_systems(systems, scores)
            spec = "system" if self._systems_spec is None else self._systems_spec
            own = isinstance(spec, str) and spec == "system" and "system" in table.colnames
            if not own:  # the cutouts' own system column, when the grouping came from it, is kept as it is
                table["system"] = systems[rows]
            table["system_rank"] = rank[rows]
            table["system_primary"] = primary[rows]
            table["system_size"] = size[rows]
        return table

    def __repr__(self):
        where = self.workdir or "memory"
        return (
            f"<ActiveLearningSession: {len(self._ids)} objects, {len(self._store)} labelled, "
            f"cycle {self.cycle}, {where}>"
        )
