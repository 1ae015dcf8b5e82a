"""What one training of the session does: fit the fast head and/or FixMatch, combine their scores."""

import dataclasses

import numpy as np

from ..embeddings import rank_normalize
from ..utils import label_word

__all__ = ["TrainResult", "combine_scores", "fit_fast_head", "fit_fixmatch", "train_auroc"]


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
