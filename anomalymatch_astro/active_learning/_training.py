"""What one training of the session does: fit the fast head and/or FixMatch, combine their scores."""

import dataclasses
import logging

import numpy as np

from ..embeddings import rank_normalize
from ..utils import label_word

__all__ = ["TrainResult", "combine_scores", "fit_fast_head", "fit_fixmatch", "session_embeddings", "train_auroc"]

log = logging.getLogger(__name__)


def train_auroc(y, s):
    """AUROC of scores ``s`` on labels ``y`` (NaN with one class): an optimistic sanity check."""
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


def fit_fast_head(head, embeddings, y):
    """Fit ``head`` on the labelled embeddings and score every object.

    Parameters
    ----------
    head : object
        A fast head (``fit(embeddings, labels)`` / ``score(embeddings)``).
    embeddings : numpy.ndarray
        (N, D) embeddings.
    y : numpy.ndarray
        (N,) labels: 1 anomaly, 0 normal, -1 unlabelled.

    Returns
    -------
    scores : numpy.ndarray
        (N,) float64.
    metrics : dict
        ``head`` (its name) and ``train_auroc``.
    """
    head.fit(embeddings, y)
    scores = np.asarray(head.score(embeddings), dtype=np.float64)
    lab = y >= 0
    return scores, {"head": getattr(head, "name", type(head).__name__), "train_auroc": train_auroc(y[lab], scores[lab])}


def fit_fixmatch(classifier, cutouts, y, *, iterations=None, batch_size=256, progress=True):
    """Fit the FixMatch classifier on the labelled cutouts and score every object.

    Parameters
    ----------
    classifier : `~anomalymatch_astro.AnomalyClassifier`
        The classifier (fitted in place).
    cutouts : `~anomalymatch_astro.CutoutSet`
        All cutouts (the unlabelled ones are FixMatch's unlabelled data).
    y : numpy.ndarray
        (N,) labels: 1 anomaly, 0 normal, -1 unlabelled.
    iterations : int, optional
        FixMatch steps (default: the classifier's configuration).
    batch_size : int, optional
        Batch size for scoring.
    progress : bool, optional
        Show progress bars.

    Returns
    -------
    scores : numpy.ndarray
        (N,) float64.
    metrics : dict
        ``train_auroc``.
    """
    lab = y >= 0
    ids = np.asarray(cutouts.ids).astype(str)
    words = {ids[i]: label_word(y[i]) for i in np.flatnonzero(lab)}
    classifier.fit(cutouts, words, iterations=iterations, progress=progress)
    scores = np.asarray(classifier.score(cutouts, batch_size=batch_size, progress=progress), dtype=np.float64)
    return scores, {"train_auroc": train_auroc(y[lab], scores[lab])}


def session_embeddings(session, *, progress):
    """The embeddings of ``session``'s cutouts and their block widths: from its workdir, else computed.

    Computed once with the session's classifier as it is (the pretrained backbone when it is
    not fitted yet) and settings (rotation averaging, feature stages, zoom), then cached in the
    workdir, whose ``session.json`` records the key and the blocks.
    """
    from ..embeddings import compute_embeddings, embedding_key

    wd = session._workdir
    if wd is not None:
        cached = wd.cached_embeddings(len(session._ids))
        if cached is not None:
            return cached
    clf = session.classifier
    stages = session.feature_stages if hasattr(clf, "feature_widths") else ()
    if stages and not hasattr(getattr(clf, "ema_model", None), "forward_intermediates"):
        embedding_key(session.cutouts, clf)  # the model hash of an unfitted classifier builds its network
        if not hasattr(getattr(clf, "ema_model", None), "forward_intermediates"):
            log.warning(
                "the backbone does not expose its feature stages (timm forward_intermediates; "
                "a newer timm has it): the fast head uses the head features alone"
            )
            stages = ()
    settings = {
        "rotation_average": session.rotation_average,
        "stages": stages,
        "zoom": session.zoom,
        "profile": session.profile,
    }
    key = embedding_key(session.cutouts, clf, **settings)
    log.info("embedding the %d cutouts once (cached for every later cycle)", len(session._ids))
    emb = compute_embeddings(
        session.cutouts,
        clf,
        cache_path=None if wd is None else wd.embeddings_path,
        batch_size=session.batch_size,
        progress=progress,
        **settings,
    )
    blocks = _view_blocks(session.cutouts, clf, stages, session.zoom, emb.shape[1], session.profile)
    if wd is not None:
        wd.record_embeddings(key, blocks)
        session._save_state()
    return emb, blocks


def _view_blocks(cutouts, clf, stages, zoom, width, profile=False):
    """The block widths of embeddings with these stages, centre views and profile (None for a single block)."""
    if profile:  # the residual profile is the last block
        from ..embeddings import profile_width

        extra = profile_width(len(cutouts.bands))
        return (_view_blocks(cutouts, clf, stages, zoom, width - extra) or [width - extra]) + [extra]
    if not stages and not zoom:
        return None
    if hasattr(clf, "feature_widths"):  # every view is resized to the network's input: the same widths
        return [int(b) for b in clf.feature_widths(stages=stages)] * (1 + len(zoom))
    from ..embeddings import center_crop

    # a stand-in embedder's width may depend on the image size: measured on one cutout per centre view
    crops = [int(clf.embed(center_crop(cutouts[:1], f), batch_size=1).shape[1]) for f in zoom]
    return [width - sum(crops), *crops]
