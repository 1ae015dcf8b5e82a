"""Fast heads: small scikit-learn models trained on cached embeddings.

Every head has the same two methods:

``fit(embeddings, labels)``
    ``embeddings`` float (N, D); ``labels`` int (N,) with 1 = anomaly, 0 = normal
    and -1 = unlabelled (the semi-supervised head uses the unlabelled rows, the
    others ignore them except for feature statistics).  Returns the head.
``score(embeddings)``
    (N,) float in [0, 1], higher = more anomalous.

They are built to be cheap on large embedding matrices with a few hundred labels
(timings in the benchmarks page): standardisation is folded into the weights instead
of copying the matrix, similarities are one matrix product against the labelled rows, and the
graph of the label-spreading head is built on a few thousand anchors only.
"""

import logging

import numpy as np

from ..utils.exceptions import InvalidInputError, LabelError

__all__ = [
    "LogisticHead",
    "KNNHead",
    "LabelSpreadingHead",
    "EnsembleHead",
    "fit_pca",
    "HEADS",
    "make_head",
    "rank_normalize",
]

log = logging.getLogger(__name__)


def _check(embeddings, labels=None):
    x = np.asarray(embeddings)
    if x.ndim != 2:
        msg = f"embeddings must be 2-d (N, D), got shape {x.shape}"
        raise InvalidInputError(msg)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if labels is None:
        return x
    y = np.asarray(labels).astype(np.int64).ravel()
    if y.shape != (len(x),):
        msg = f"{len(y)} labels for {len(x)} embeddings; give one label (1, 0 or -1) per row"
        raise InvalidInputError(msg)
    if not np.isin(y, (-1, 0, 1)).all():
        msg = "labels must be 1 (anomaly), 0 (normal) or -1 (unlabelled)"
        raise LabelError(msg)
    if not (y == 1).any() or not (y == 0).any():
        msg = "a head needs at least one anomaly and one normal among the labels"
        raise LabelError(msg)
    return x, y


def _column_stats(x, max_rows=8192, seed=0):
    """Mean and std per column, on a row sample when ``x`` is large (cheap, no full copy)."""
    if len(x) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(x), max_rows, replace=False))
        x = x[rows]
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    std[std < 1e-12] = 1.0
    return mean, std


def fit_pca(embeddings, *, n_components=64, max_rows=10_000, seed=0):
    """A PCA of ``embeddings`` fitted on at most ``max_rows`` random rows.

    Parameters
    ----------
    embeddings : array-like, shape (N, D)
    n_components : int, optional
        Components kept (capped at min(rows, D)).
    max_rows : int, optional
        Rows sampled for the fit.
    seed : int, optional
        Seed of the sample and of the randomised SVD.

    Returns
    -------
    mean : numpy.ndarray
        (D,) float32.
    components : numpy.ndarray
        (k, D) float32; project with ``(x - mean) @ components.T``.
    """
    from sklearn.decomposition import PCA

    x = _check(embeddings)
    if len(x) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(x), max_rows, replace=False))
        x = x[rows]
    k = int(min(n_components, x.shape[0], x.shape[1]))
    pca = PCA(n_components=k, svd_solver="randomized" if k < min(x.shape) // 2 else "full", random_state=seed)
    pca.fit(np.asarray(x, dtype=np.float32))
    return pca.mean_.astype(np.float32), pca.components_.astype(np.float32)


class LogisticHead:
    """The linear probe: class-balanced logistic regression on standardised embeddings.

    Parameters
    ----------
    C : float, optional
        Inverse L2 regularisation strength of `sklearn.linear_model.LogisticRegression`.
    class_weight : str or dict, optional
        ``"balanced"`` (default) weighs the rare anomalies up to the normals.
    max_iter : int, optional
        Solver iterations.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro.embeddings import LogisticHead
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 8)); x[:20, 0] += 4
    >>> y = np.full(200, -1); y[:5] = 1; y[100:120] = 0
    >>> s = LogisticHead().fit(x, y).score(x)
    >>> bool(s[:20].mean() > s[20:].mean())
    True
    """

    name = "logistic"

    def __init__(self, *, C=0.1, class_weight="balanced", max_iter=2000):
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.coef_ = None
        self.intercept_ = None

    def fit(self, embeddings, labels):
        """Fit on the labelled rows (feature statistics from all rows); returns self."""
        from sklearn.linear_model import LogisticRegression

        x, y = _check(embeddings, labels)
        mean, std = _column_stats(x)
        lab = y >= 0
        xl = (np.asarray(x[lab], dtype=np.float64) - mean) / std
        model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter)
        model.fit(xl, y[lab])
        w = model.coef_[0] / std
        self.coef_ = w.astype(np.float32)
        self.intercept_ = float(model.intercept_[0] - mean @ w)
        return self

    def decision_function(self, embeddings):
        """Signed distance to the boundary (log-odds)."""
        if self.coef_ is None:
            msg = "fit the head before scoring"
            raise InvalidInputError(msg)
        x = _check(embeddings)
        return np.asarray(x @ self.coef_, dtype=np.float64) + self.intercept_

    def score(self, embeddings):
        """P(anomaly) per row, (N,) in [0, 1]."""
        z = np.clip(self.decision_function(embeddings), -50, 50)
        return 1.0 / (1.0 + np.exp(-z))


def _unit_rows(x, center):
    x = np.asarray(x, dtype=np.float32) - center
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    norm[norm < 1e-12] = 1.0
    return x / norm


def _mean_topk(sim, k):
    k = int(min(k, sim.shape[1]))
    if k == sim.shape[1]:
        return sim.mean(axis=1)
    part = np.partition(sim, sim.shape[1] - k, axis=1)[:, -k:]
    return part.mean(axis=1)


class KNNHead:
    """Similarity to the labelled anomalies against similarity to the labelled normals.

    For each object: the mean cosine similarity (of centred embeddings) to its
    ``k`` most similar labelled anomalies minus the same to its ``k`` most similar
    labelled normals; the difference (in [-2, 2]) is mapped to [0, 1] by
    ``(d + 2) / 4``, so 0.5 means "equally close to both".

    Parameters
    ----------
    k : int, optional
        Neighbours per class.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro.embeddings import KNNHead
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 8)); x[:20, 0] += 4
    >>> y = np.full(200, -1); y[:5] = 1; y[100:120] = 0
    >>> s = KNNHead(k=3).fit(x, y).score(x)
    >>> bool(s[:20].mean() > s[20:].mean())
    True
    """

    name = "knn"

    def __init__(self, *, k=5):
        self.k = k
        self._center = None
        self._anom = None
        self._norm = None

    def fit(self, embeddings, labels):
        """Remember the (centred, unit-length) labelled embeddings; returns self."""
        x, y = _check(embeddings, labels)
        self._center = _column_stats(x)[0].astype(np.float32)
        self._anom = _unit_rows(x[y == 1], self._center)
        self._norm = _unit_rows(x[y == 0], self._center)
        return self

    def decision_function(self, embeddings):
        """Similarity difference in [-2, 2]."""
        if self._anom is None:
            msg = "fit the head before scoring"
            raise InvalidInputError(msg)
        x = _check(embeddings)
        out = np.empty(len(x), dtype=np.float64)
        refs = np.concatenate([self._anom, self._norm]).T  # (D, n_anomalies + n_normals)
        offset = self._center @ refs
        n_a = len(self._anom)
        for start in range(0, len(x), 4096):
            block = np.asarray(x[start : start + 4096], dtype=np.float32)
            # cosine similarity of the centred rows, without a centred copy of the block
            diff_sq = (
                np.einsum("ij,ij->i", block, block) - 2.0 * (block @ self._center) + float(self._center @ self._center)
            )
            norm = np.sqrt(np.maximum(diff_sq, 1e-24))[:, None]
            sim = (block @ refs - offset) / norm
            out[start : start + len(block)] = _mean_topk(sim[:, :n_a], self.k) - _mean_topk(sim[:, n_a:], self.k)
        return out

    def score(self, embeddings):
        """Scores in [0, 1]."""
        return np.clip((self.decision_function(embeddings) + 2.0) / 4.0, 0.0, 1.0)


class LabelSpreadingHead:
    """Semi-supervised: label spreading over a kNN graph of PCA-reduced embeddings.

    To stay fast on 100k objects the graph is built on *anchors*: every labelled
    object plus ``n_anchors`` random unlabelled ones.  Labels are spread over the
    anchors' kNN graph (`sklearn.semi_supervised.LabelSpreading`); every object is
    then scored by the class-balanced anomaly share of its ``n_neighbors`` nearest
    anchors, weighted by similarity.

    Parameters
    ----------
    n_components : int, optional
        PCA dimensions (the PCA is fitted once and reused while the same array is scored).
    n_anchors : int, optional
        Unlabelled anchors in the graph.
    n_neighbors : int, optional
        Neighbours in the graph and in the extension to all objects.
    alpha : float, optional
        Clamping factor of label spreading (0: keep the labels, 1: replace them).
    pca : tuple, optional
        A precomputed ``(mean, components)`` from `fit_pca` (e.g. kept in the embedding cache).
    seed : int, optional
        Seed of the anchor sample and the PCA.
    """

    name = "spreading"

    def __init__(self, *, n_components=64, n_anchors=1500, n_neighbors=10, alpha=0.2, pca=None, seed=0):
        self.n_components = n_components
        self.n_anchors = n_anchors
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.pca = pca
        self.seed = seed
        self._proj_cache = (None, None)
        self._anchors = None
        self._anchor_p = None

    def _project(self, x):
        if self._proj_cache[0] is x:
            return self._proj_cache[1]
        if self.pca is None:
            self.pca = fit_pca(x, n_components=self.n_components, seed=self.seed)
        mean, comps = self.pca
        z = _unit_rows(np.asarray(x, dtype=np.float32) @ comps.T, mean @ comps.T)
        self._proj_cache = (x, z)
        return z

    def fit(self, embeddings, labels):
        """Spread the labels over the anchor graph; returns self."""
        from sklearn.semi_supervised import LabelSpreading

        x, y = _check(embeddings, labels)
        z = self._project(x)
        rng = np.random.default_rng(self.seed)
        lab = np.flatnonzero(y >= 0)
        unl = np.flatnonzero(y < 0)
        if len(unl) > self.n_anchors:
            unl = np.sort(rng.choice(unl, self.n_anchors, replace=False))
        rows = np.concatenate([lab, unl])
        k = int(min(self.n_neighbors, len(rows) - 1))
        model = LabelSpreading(kernel="knn", n_neighbors=max(k, 1), alpha=self.alpha, max_iter=100)
        model.fit(z[rows], y[rows])
        dist = np.asarray(model.label_distributions_, dtype=np.float64)
        col = {c: i for i, c in enumerate(model.classes_)}
        f1, f0 = dist[:, col[1]], dist[:, col[0]]
        # class balance: compare each class's share of its own total mass
        p1 = f1 / max(f1.sum(), 1e-12)
        p0 = f0 / max(f0.sum(), 1e-12)
        self._anchors = z[rows]
        self._anchor_p = p1 / np.maximum(p1 + p0, 1e-300)
        return self

    def score(self, embeddings):
        """Scores in [0, 1]: similarity-weighted anomaly share of the nearest anchors."""
        if self._anchors is None:
            msg = "fit the head before scoring"
            raise InvalidInputError(msg)
        z = self._project(_check(embeddings))
        k = int(min(self.n_neighbors, len(self._anchors)))
        out = np.empty(len(z), dtype=np.float64)
        for start in range(0, len(z), 16384):
            sim = z[start : start + 16384] @ self._anchors.T
            idx = np.argpartition(sim, sim.shape[1] - k, axis=1)[:, -k:]
            s = np.take_along_axis(sim, idx, axis=1)
            w = np.exp((s - s.max(axis=1, keepdims=True)) / 0.1)
            out[start : start + len(s)] = (w * self._anchor_p[idx]).sum(axis=1) / w.sum(axis=1)
        return out


def rank_normalize(scores):
    """Ranks of ``scores`` scaled to [0, 1] (ties share the mean rank).

    The common scale on which scores of different heads or models are averaged.

    Parameters
    ----------
    scores : array-like, shape (N,)
        Any scores; only their order matters.

    Returns
    -------
    numpy.ndarray, shape (N,)
        0 for the lowest score, 1 for the highest (0.5 for every object when N < 2).

    Examples
    --------
    >>> from anomalymatch_astro.embeddings import rank_normalize
    >>> rank_normalize([0.2, 10.0, -3.0]).tolist()
    [0.5, 1.0, 0.0]
    """
    s = scores
    from scipy.stats import rankdata

    s = np.asarray(s, dtype=np.float64)
    if len(s) < 2:
        return np.full(len(s), 0.5)
    return (rankdata(s) - 1.0) / (len(s) - 1.0)


class EnsembleHead:
    """Mean of the rank-normalised scores of several heads, optionally on several feature blocks.

    Parameters
    ----------
    heads : list, optional
        The member heads (default: `LogisticHead` and `KNNHead`).  Without ``blocks``
        they all see the whole embedding.
    blocks : sequence of int, optional
        Widths of consecutive column blocks of the embeddings (e.g. ``[1280, 112, 320]``:
        the head features and two mid-level stages, see
        `~anomalymatch_astro.AnomalyClassifier.feature_widths`).  Then a fresh copy of
        the default members (or of ``heads``) is fitted on each block and all their ranks
        are averaged, so every level of features has the same say, whatever its width.

    Notes
    -----
    Ranks are taken over the rows scored together, so scores of different calls are
    not comparable; score all objects in one call.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro.embeddings import EnsembleHead
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 12)); x[:10, 8:] += 3   # anomalies differ in the last block only
    >>> labels = np.full(200, -1); labels[:3] = 1; labels[50:80] = 0
    >>> head = EnsembleHead(blocks=[8, 4]).fit(x, labels)   # 2 members on each of 2 blocks
    >>> scores = head.score(x)
    >>> len(head.members), bool(scores[3:10].mean() > 0.8 > np.median(scores))
    (4, True)
    """

    name = "ensemble"

    def __init__(self, heads=None, *, blocks=None):
        import copy

        self.heads = list(heads) if heads is not None else [LogisticHead(), KNNHead()]
        self._pristine = [copy.deepcopy(head) for head in self.heads]
        self.blocks = None if blocks is None else [int(b) for b in blocks]
        if self.blocks is not None and (not self.blocks or min(self.blocks) < 1):
            msg = f"blocks must be positive widths, got {blocks!r}"
            raise InvalidInputError(msg)
        self.members = []

    def _slices(self, embeddings):
        if self.blocks is None:
            return [slice(None)]
        if sum(self.blocks) != embeddings.shape[1]:
            msg = (
                f"the blocks {self.blocks} add up to {sum(self.blocks)} columns, but the embeddings have "
                f"{embeddings.shape[1]}; compute them with the same stages"
            )
            raise InvalidInputError(msg)
        edges = np.concatenate([[0], np.cumsum(self.blocks)])
        return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]

    def fit(self, embeddings, labels):
        """Fit every member (on every block); returns self."""
        import copy

        embeddings = np.asarray(embeddings)
        slices = self._slices(embeddings)
        # copies of the members as they were given, never fitted: a fitted head keeps state of its
        # block (the label-spreading head's PCA) that must not carry over to another block, also
        # when the same EnsembleHead is fitted again in a later cycle
        fresh = [[copy.deepcopy(head) for head in self._pristine] for _ in slices[1:]]
        self.members = []
        for i, cols in enumerate(slices):
            for j, head in enumerate(self.heads):
                member = head if i == 0 else fresh[i - 1][j]
                self.members.append((cols, member.fit(embeddings[:, cols], labels)))
        return self

    def score(self, embeddings):
        """Mean rank score in [0, 1]."""
        embeddings = np.asarray(embeddings)
        if not self.members:
            msg = "the head is not fitted; call fit() first"
            raise InvalidInputError(msg)
        return np.mean([rank_normalize(h.score(embeddings[:, cols])) for cols, h in self.members], axis=0)


#: Head names accepted by `make_head` and by the session's ``head=`` argument.
HEADS = {"logistic": LogisticHead, "knn": KNNHead, "spreading": LabelSpreadingHead, "ensemble": EnsembleHead}


def make_head(name, **kwargs):
    """A new head by name (``"logistic"``, ``"knn"``, ``"spreading"``, ``"ensemble"``).

    Examples
    --------
    >>> from anomalymatch_astro.embeddings import make_head
    >>> make_head("knn", k=3).k
    3
    """
    if not isinstance(name, str):
        return name
    try:
        cls = HEADS[name]
    except KeyError:
        msg = f"unknown head {name!r}; choose one of {sorted(HEADS)}"
        raise InvalidInputError(msg) from None
    return cls(**kwargs)
