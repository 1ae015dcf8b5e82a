"""`SessionScorer`: score new cutouts the way a session ranks its own (for mining a survey).

A session's fast heads rank objects *relative to each other* (the ensemble averages
rank-normalised member scores; the "both" mode averages the ranks of two models), so a
batch of new cutouts cannot be ranked on its own: its scores would depend on what else is
in the batch.  A `SessionScorer` instead places each new cutout in the session's own
population: each member's (or model's) score is turned into its rank among the session's
cutouts, exactly as the session's rank normalisation does for them.  A cutout's score
therefore depends on that cutout alone, is comparable across cells and workers, and for
the session's own cutouts equals the session's score.
"""

import hashlib
import json

import numpy as np

from ..embeddings import EnsembleHead, compute_embeddings
from ..utils.exceptions import InvalidInputError, LabelError

__all__ = ["SessionScorer", "session_scorer", "reference_rank", "rowwise"]


def reference_rank(reference, values):
    """The rank of each value among sorted ``reference`` scores, scaled to [0, 1] as by ``rank_normalize``.

    A value equal to reference entries gets their mean rank, so a reference entry gets
    exactly its `~anomalymatch_astro.embeddings.rank_normalize` value; other values fall
    between their neighbours' ranks (clipped to [0, 1]).

    Parameters
    ----------
    reference : numpy.ndarray
        The sorted reference scores (N,).
    values : array-like
        Scores to place.

    Returns
    -------
    numpy.ndarray
        float64 in [0, 1].

    Examples
    --------
    >>> reference_rank(np.array([0.1, 0.2, 0.3]), [0.2, 0.25, 5.0]).tolist()
    [0.5, 0.75, 1.0]
    """
    reference = np.asarray(reference, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n = len(reference)
    if n < 2:
        return np.full(len(values), 0.5)
    less = np.searchsorted(reference, values, side="left")
    equal = np.searchsorted(reference, values, side="right") - less
    rank = less + (equal - 1) / 2.0
    return np.clip(rank, 0, n - 1) / (n - 1)


def rowwise(score, x):
    """``score`` applied to each row of ``x`` alone: a row's result never depends on the other rows.

    Matrix products (BLAS) may round a row differently with other rows beside it; scoring one
    row at a time makes a cutout's score the same in any batch, on any worker.
    """
    x = np.asarray(x)
    return np.array([float(np.asarray(score(x[i : i + 1]), dtype=np.float64)[0]) for i in range(len(x))])


class SessionScorer:
    """Scores new cutouts as an `ActiveLearningSession` ranks its own (picklable, for Dask workers).

    Made by `ActiveLearningSession.scorer`; call it on a `~anomalymatch_astro.CutoutSet`.
    New cutouts are embedded with the session's classifier and embedding settings
    (rotation averaging, feature stages, centre views, residual profile), scored by the session's fast head fitted on
    the session's labels and/or by its FixMatch classifier, and each member's or model's
    score is ranked among the session's own cutouts (`reference_rank`) where the session
    ranks them, so that the score of a cutout does not depend on the batch it came in.

    Attributes
    ----------
    mode : str
        ``"fast"``, ``"fixmatch"`` or ``"both"``.
    scorer_id : str
        A digest of the model, head, labels and settings (changes when any of them does).
    """

    def __init__(
        self,
        *,
        classifier,
        mode,
        head=None,
        references=None,
        rotation_average=True,
        stages=(),
        zoom=(),
        profile=False,
        batch_size=256,
        scorer_id="",
    ):
        self.classifier = classifier
        self.mode = mode
        self.head = head
        self.references = references or {}
        self.rotation_average = bool(rotation_average)
        self.stages = tuple(stages)
        self.zoom = tuple(zoom)
        self.profile = bool(profile)
        self.batch_size = int(batch_size)
        self.scorer_id = scorer_id

    def __repr__(self):
        return f"<SessionScorer mode={self.mode} id={self.scorer_id}>"

    def _fast(self, cutouts):
        emb = compute_embeddings(
            cutouts,
            self.classifier,
            cache_path=None,
            rotation_average=self.rotation_average,
            stages=self.stages,
            zoom=getattr(self, "zoom", ()),  # a scorer pickled before zoom existed has none
            profile=getattr(self, "profile", False),
            batch_size=self.batch_size,
            progress=False,
        )
        if isinstance(self.head, EnsembleHead):
            members = [
                reference_rank(self.references[f"member{k}"], rowwise(h.score, emb[:, cols]))
                for k, (cols, h) in enumerate(self.head.members)
            ]
            return np.mean(members, axis=0)
        return rowwise(self.head.score, emb)

    def __call__(self, cutouts):
        """Scores (N,) float64 of ``cutouts``, on the session's scale."""
        if len(cutouts) == 0:
            return np.zeros(0)
        parts = {}
        if self.mode in ("fast", "both"):
            parts["fast"] = self._fast(cutouts)
        if self.mode in ("fixmatch", "both"):
            parts["fixmatch"] = np.asarray(
                self.classifier.score(cutouts, batch_size=self.batch_size, progress=False), dtype=np.float64
            )
        if len(parts) == 1:
            return next(iter(parts.values()))
        return np.mean([reference_rank(self.references[name], s) for name, s in parts.items()], axis=0)


def _built_hash(clf, cutouts):
    """``clf.model_hash``, building a lazily built classifier first (on one cutout) when it has no network yet."""
    try:
        return getattr(clf, "model_hash", None)
    except InvalidInputError:
        if len(cutouts) == 0:
            raise
        clf.embed(cutouts[:1], batch_size=1)
        return clf.model_hash


def session_scorer(session, *, mode=None):
    """The `SessionScorer` of ``session`` (see `ActiveLearningSession.scorer`)."""
    from ._training import fit_fast_head

    mode = session._check_mode(mode or session.last_train_mode or session.default_mode)
    y = session.label_array()
    if mode in ("fast", "both") and ((y == 1).sum() == 0 or (y == 0).sum() == 0):
        msg = "the session needs at least one anomaly and one normal label to fit its head; label some first"
        raise LabelError(msg)
    if mode in ("fixmatch", "both") and "fixmatch" not in session._parts:
        msg = f"mode {mode!r} needs a FixMatch training of the session first (session.train(mode={mode!r}))"
        raise LabelError(msg)
    head, refs = None, {}
    clf = session.classifier
    if mode in ("fast", "both"):
        emb = session._compute_embeddings(progress=False)
        key = session._workdir.embedding_key if session._workdir is not None and not session._given_embeddings else None
        made_with = (key or {}).get("model_hash")
        if made_with and made_with != _built_hash(clf, session.cutouts):
            if "fixmatch" in session._parts:
                msg = (
                    "the session's embeddings were made with an earlier state of its classifier (before FixMatch "
                    f"changed it), so new cutouts cannot be embedded the same way for mode {mode!r}; "
                    "use mode='fixmatch'"
                )
            else:
                msg = (
                    f"the session's embeddings were made with another classifier than the one it holds now ({clf!r}), "
                    "so new cutouts would not be embedded the same way: reopen the session with the classifier "
                    "it was made with, e.g. ActiveLearningSession.open(workdir, classifier=AnomalyClassifier("
                    "pretrained=False)) (a search of 'anomalymatch-astro search' records its classifier settings "
                    "in search.json; 'anomalymatch-astro mine --session' uses them)"
                )
            raise InvalidInputError(msg)
        head = session._make_head()
        fast, _ = fit_fast_head(head, emb, y)
        if isinstance(head, EnsembleHead):
            for k, (cols, h) in enumerate(head.members):
                refs[f"member{k}"] = np.sort(rowwise(h.score, emb[:, cols]))
        refs["fast"] = np.sort(fast)
    if mode in ("fixmatch", "both"):
        refs["fixmatch"] = np.sort(np.asarray(session._parts["fixmatch"], dtype=np.float64))
    # the stages the embeddings were made with: none when the backbone could not give them (one block per view)
    views, stages = 1 + len(session.zoom), session.feature_stages
    n_blocks = len(session._blocks or ()) - int(session.profile)
    if not (stages and hasattr(clf, "feature_widths") and n_blocks == views * (1 + len(stages))):
        stages = ()
    ident = {
        "model": _built_hash(clf, session.cutouts),
        "mode": mode,
        "head": session.head if isinstance(session.head, str) else type(session.head).__name__,
        "labels": sorted(session.labels.items()),
        "rotation_average": session.rotation_average,
        "stages": list(stages),
        **({"zoom": list(session.zoom)} if session.zoom else {}),
        **({"profile": True} if session.profile else {}),
    }
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return SessionScorer(
        classifier=clf,
        mode=mode,
        head=head,
        references=refs,
        rotation_average=session.rotation_average,
        stages=stages,
        zoom=session.zoom,
        profile=session.profile,
        batch_size=session.batch_size,
        scorer_id=f"session-{digest}",
    )
