"""Candidate-selection strategies: which unlabelled objects to show the user next.

All functions work on plain arrays aligned with the CutoutSet and return row
numbers; labelled rows (``exclude``) are never returned.

``top``
    Highest score first (what AnomalyMatch offers).
``uncertainty``
    Closest to the decision boundary.  The boundary is the score threshold that
    best separates the labelled anomalies from the labelled normals (highest
    balanced accuracy, midpoint of the best interval), so it works for any score
    scale, including combined rank scores.
``diversity``
    k-center greedy in embedding space (cosine distance of centred embeddings)
    within the ``pool`` top-scored unlabelled objects, starting from the
    top-scored one: each pick is the pool member farthest from all picks so far.
``mix``
    ``ceil(n/2)`` by ``top``, then the rest split between ``uncertainty`` and
    ``diversity`` (uncertainty gets the odd one), duplicates skipped and filled by
    the next in each list.
``similar``
    "Find more like this": nearest neighbours (cosine similarity of centred
    embeddings, maximum over the query objects) of given objects.

Every strategy takes ``systems=``: one system id per object (fragments of one
galaxy, close neighbours; see `~anomalymatch_astro.catalogs.group_systems`).  With
it, at most one object per system is returned: the first of its system in the
strategy's order (``diversity`` picks among the top-scored object of each system).
"""

import numpy as np

from ..utils.exceptions import InvalidInputError

__all__ = [
    "STRATEGIES",
    "select_top",
    "select_uncertain",
    "select_diverse",
    "select_mix",
    "select_similar",
    "decision_threshold",
    "unit_embeddings",
    "first_per_system",
]

#: Strategy names accepted by `ActiveLearningSession.candidates`.
STRATEGIES = ("top", "uncertainty", "diversity", "mix", "similar")


def _available(n_total, exclude):
    mask = np.ones(n_total, dtype=bool)
    if exclude is not None:
        exclude = np.asarray(exclude)
        if exclude.dtype == bool:
            mask &= ~exclude
        else:
            mask[exclude.astype(np.int64)] = False
    return mask


def _order_desc(values, mask):
    rows = np.flatnonzero(mask)
    key = np.where(np.isfinite(values[rows]), -values[rows], np.inf)
    return rows[np.argsort(key, kind="stable")]


def _check_systems(systems, n_total):
    """``systems`` as an int array of one id per object, or None."""
    if systems is None:
        return None
    systems = np.asarray(systems)
    if systems.shape != (n_total,) or systems.dtype.kind not in "iu":
        msg = f"systems must hold one integer system id per object ({n_total}), got {systems.dtype} {systems.shape}"
        raise InvalidInputError(msg)
    return systems


def first_per_system(rows, systems):
    """The rows (in their order) that come first in their system; all of them when ``systems`` is None.

    Parameters
    ----------
    rows : array-like of int
        Rows in presentation order.
    systems : array-like of int or None
        One system id per object (indexed by row).

    Returns
    -------
    numpy.ndarray
        The subsequence of ``rows`` keeping the first row of each system.

    Examples
    --------
    >>> from anomalymatch_astro.active_learning import first_per_system
    >>> first_per_system([3, 2, 0, 1], [0, 0, 1, 1]).tolist()  # rows 0, 1 are one system, rows 2, 3 another
    [3, 0]
    """
    rows = np.asarray(rows, dtype=np.int64)
    if systems is None or len(rows) == 0:
        return rows
    _, first = np.unique(np.asarray(systems)[rows], return_index=True)
    return rows[np.sort(first)]


def select_top(scores, n, *, exclude=None, systems=None):
    """Rows of the ``n`` highest-scored objects not in ``exclude`` (one per system with ``systems``)."""
    scores = np.asarray(scores, dtype=np.float64)
    systems = _check_systems(systems, len(scores))
    return first_per_system(_order_desc(scores, _available(len(scores), exclude)), systems)[:n]


def decision_threshold(scores, labels):
    """The score threshold that best separates labelled anomalies (1) from normals (0).

    Maximises the balanced accuracy of ``score > t``; among equally good
    thresholds the middle one is taken.  Falls back to 0.5 without both classes.

    Examples
    --------
    >>> from anomalymatch_astro.active_learning import decision_threshold
    >>> float(decision_threshold([0.1, 0.2, 0.6, 0.8], [0, 0, 1, 1]))
    0.4
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    ok = np.isfinite(s) & (y >= 0)
    s, y = s[ok], y[ok]
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    if n1 == 0 or n0 == 0:
        return 0.5
    values = np.unique(s)
    cands = np.concatenate([[values[0] - 1e-9], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-9]])
    order = np.argsort(s)
    s_sorted, y_sorted = s[order], y[order]
    below = np.searchsorted(s_sorted, cands, side="right")  # count <= t
    cum1 = np.concatenate([[0], np.cumsum(y_sorted == 1)])
    cum0 = np.concatenate([[0], np.cumsum(y_sorted == 0)])
    tpr = (n1 - cum1[below]) / n1
    tnr = cum0[below] / n0
    bal = (tpr + tnr) / 2
    best = np.flatnonzero(bal >= bal.max() - 1e-12)
    return float(np.median(cands[best])) if len(best) % 2 else float(cands[best[len(best) // 2]])


def select_uncertain(scores, n, *, exclude=None, threshold=0.5, systems=None):
    """Rows of the ``n`` objects whose score is closest to ``threshold`` (one per system with ``systems``)."""
    scores = np.asarray(scores, dtype=np.float64)
    systems = _check_systems(systems, len(scores))
    dist = np.abs(scores - threshold)
    rows = _order_desc(-np.where(np.isfinite(dist), dist, np.inf), _available(len(scores), exclude))
    return first_per_system(rows, systems)[:n]


def unit_embeddings(embeddings, *, center=None):
    """Centred, unit-length rows (cosine geometry); ``center`` defaults to the column mean."""
    x = np.asarray(embeddings, dtype=np.float32)
    if center is None:
        center = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    center = np.asarray(center, dtype=np.float32)
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, len(x), 4096):  # in cache-sized blocks, without full-size temporaries
        block = out[start : start + 4096]
        np.subtract(x[start : start + 4096], center, out=block)
        norm = np.sqrt(np.einsum("ij,ij->i", block, block))[:, None]
        norm[norm < 1e-12] = 1.0
        block /= norm
    return out


def _column_mean(x):
    x = np.asarray(x)
    if len(x) > 8192:
        rows = np.sort(np.random.default_rng(0).choice(len(x), 8192, replace=False))
        x = x[rows]
    return x.mean(axis=0, dtype=np.float64).astype(np.float32)


def select_diverse(scores, embeddings, n, *, exclude=None, pool=None, center=None, systems=None):
    """k-center greedy picks among the ``pool`` top-scored available objects.

    Distances are cosine distances of centred embeddings; only the pool's rows are
    normalised, so no copy of all embeddings is made.

    Parameters
    ----------
    scores : array-like (N,)
    embeddings : array-like (N, D)
        The embeddings (raw; centred by ``center`` and normalised here).
    n : int
    exclude : array-like, optional
        Rows (or a boolean mask) never to return.
    pool : int, optional
        Size of the top-scored pool (default ``max(5 n, 50)``).
    center : array-like (D,), optional
        Centre of the embeddings (default: the column mean of a sample of rows).
    systems : array-like of int, optional
        One system id per object: the pool holds the top-scored object of each system.

    Returns
    -------
    numpy.ndarray
        Rows, first the top-scored of the pool.
    """
    ordered = select_top(scores, len(scores), exclude=exclude, systems=systems)
    pool = max(5 * n, 50) if pool is None else int(pool)
    cand = ordered[: max(pool, n)]
    if len(cand) <= n:
        return cand
    center = _column_mean(embeddings) if center is None else center
    x = unit_embeddings(np.asarray(embeddings)[cand], center=center)
    picks = [0]
    mind = np.linalg.norm(x - x[0], axis=1)
    mind[0] = -np.inf
    while len(picks) < n:
        j = int(np.argmax(mind))
        picks.append(j)
        mind = np.minimum(mind, np.linalg.norm(x - x[j], axis=1))
        mind[picks] = -np.inf
    return cand[np.asarray(picks)]


def select_mix(scores, embeddings, n, *, exclude=None, threshold=0.5, pool=None, center=None, systems=None):
    """``ceil(n/2)`` top-scored, the rest from uncertainty and diversity (see module docs).

    With ``systems``, each list keeps one object per system and a system already
    chosen from one list is skipped in the others.
    """
    systems = _check_systems(systems, len(np.asarray(scores)))
    n_top = (n + 1) // 2
    n_rest = n - n_top
    n_unc = (n_rest + 1) // 2
    lists = [
        (select_top(scores, len(scores), exclude=exclude, systems=systems), n_top),
        (select_uncertain(scores, len(scores), exclude=exclude, threshold=threshold, systems=systems), n_unc),
    ]
    if embeddings is not None:
        diverse = select_diverse(
            scores, embeddings, max(n, 1), exclude=exclude, pool=pool, center=center, systems=systems
        )
        lists.append((diverse, n_rest - n_unc))
    else:
        lists[1] = (lists[1][0], n_rest)
    key = (lambda r: int(r)) if systems is None else (lambda r: int(systems[r]))
    chosen, seen = [], set()
    for rows, quota in lists:
        taken = 0
        for r in rows:
            if taken >= quota:
                break
            if key(r) not in seen:
                seen.add(key(r))
                chosen.append(int(r))
                taken += 1
    if len(chosen) < n:  # fill from the top list
        for r in lists[0][0]:
            if len(chosen) >= n:
                break
            if key(r) not in seen:
                seen.add(key(r))
                chosen.append(int(r))
    return np.asarray(chosen, dtype=np.int64)


def select_similar(embeddings, query_rows, n, *, exclude=None, center=None, systems=None):
    """The ``n`` objects most similar to the objects ``query_rows`` (which are excluded).

    Similarity is the cosine similarity of centred embeddings, computed in blocks
    without a normalised copy of all embeddings.

    Parameters
    ----------
    embeddings : array-like (N, D)
    query_rows : sequence of int
    n : int
    exclude : array-like, optional
    center : array-like (D,), optional
        Centre of the embeddings (default: the column mean of a sample of rows).
    systems : array-like of int, optional
        One system id per object: at most one object (the most similar) per system.

    Returns
    -------
    rows : numpy.ndarray
    similarity : numpy.ndarray
        Cosine similarity to the nearest query object.
    """
    query_rows = np.atleast_1d(np.asarray(query_rows, dtype=np.int64))
    if len(query_rows) == 0:
        msg = "give at least one object id in like= to find similar objects"
        raise InvalidInputError(msg)
    x = np.asarray(embeddings)
    systems = _check_systems(systems, len(x))
    center = _column_mean(x) if center is None else np.asarray(center, dtype=np.float32)
    q = unit_embeddings(x[query_rows], center=center)
    sim = np.full(len(x), -np.inf)
    for start in range(0, len(x), 4096):
        block = unit_embeddings(x[start : start + 4096], center=center)
        sim[start : start + len(block)] = (block @ q.T).max(axis=1)
    mask = _available(len(x), exclude)
    mask[query_rows] = False
    rows = first_per_system(_order_desc(sim, mask), systems)[:n]
    return rows, sim[rows]
