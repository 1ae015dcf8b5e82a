"""Ranking metrics for anomaly scores against a known truth.

All metrics rank objects by score, highest first.  Where scores tie at the edge
of a top-k list, the count is the expected value under a random order of the
tied objects (so a constant score gives the base rate, never a lucky order).
"""

import logging
from collections.abc import Mapping

import numpy as np
from astropy.table import Table
from sklearn.metrics import average_precision_score, roc_auc_score

from ..utils.exceptions import InvalidInputError, UnknownIDError

__all__ = ["evaluate", "EvaluationResult", "summarize", "top_k_hits"]

log = logging.getLogger(__name__)


def _as_truth(is_anomaly, n):
    truth = np.asarray(is_anomaly)
    if truth.ndim != 1:
        msg = f"is_anomaly must be one-dimensional, got shape {truth.shape}"
        raise InvalidInputError(msg)
    if truth.shape[0] != n:
        msg = f"scores and is_anomaly differ in length ({n} vs {truth.shape[0]}); give one truth value per score"
        raise InvalidInputError(msg)
    if truth.dtype == bool:
        return truth
    if truth.dtype.kind in "iuf" and np.all(np.isin(truth, [0, 1])):
        return truth.astype(bool)
    msg = "is_anomaly must be boolean (or 0/1): True for an anomaly, False for a normal object"
    raise InvalidInputError(msg)


def _as_scores(scores):
    scores = np.asarray(scores)
    if scores.ndim != 1:
        msg = f"scores must be one-dimensional (one score per object), got shape {scores.shape}"
        raise InvalidInputError(msg)
    if scores.dtype.kind not in "iuf":
        msg = f"scores must be numeric, got dtype {scores.dtype}"
        raise InvalidInputError(msg)
    scores = scores.astype(float)
    bad = ~np.isfinite(scores)
    if bad.any():
        where = np.flatnonzero(bad)[:10].tolist()
        msg = (
            f"{int(bad.sum())} scores are NaN or infinite (rows {where}...); score every object "
            "or drop those rows from scores and is_anomaly"
        )
        raise InvalidInputError(msg)
    return scores


def _exclude_mask(exclude, n, ids):
    if exclude is None:
        return np.zeros(n, dtype=bool)
    if isinstance(exclude, Mapping):  # e.g. a label dict {id: "anomaly"}
        exclude = list(exclude)
    arr = np.asarray(exclude)
    if arr.size == 0:
        return np.zeros(n, dtype=bool)
    if arr.dtype == bool:
        if arr.shape != (n,):
            msg = f"a boolean exclude mask must have one value per score ({n}), got shape {arr.shape}"
            raise InvalidInputError(msg)
        return arr.copy()
    if arr.dtype.kind in "iu":
        if arr.min() < -n or arr.max() >= n:
            msg = f"exclude holds row indices outside 0..{n - 1}"
            raise InvalidInputError(msg)
        mask = np.zeros(n, dtype=bool)
        mask[arr] = True
        return mask
    if arr.dtype.kind in "US":
        if ids is None:
            msg = "exclude lists object ids: pass ids= (one id per score) so they can be found"
            raise InvalidInputError(msg)
        ids = np.asarray(ids).astype(str)
        if ids.shape != (n,):
            msg = f"ids must have one entry per score ({n}), got {ids.shape[0]}"
            raise InvalidInputError(msg)
        wanted = arr.astype(str)
        unknown = sorted(str(i) for i in set(wanted) - set(ids))
        if unknown:
            msg = f"{len(unknown)} excluded ids are not among the scored objects: {unknown[:10]}"
            raise UnknownIDError(msg, ids=unknown)
        return np.isin(ids, wanted)
    msg = "exclude must be a boolean mask, row indices, or object ids (with ids=)"
    raise InvalidInputError(msg)


def top_k_hits(scores, is_anomaly, k):
    """Expected number of anomalies among the ``k`` highest scores.

    Ties at the cut are shared out: the tied objects contribute their anomaly
    fraction times the places left.

    Parameters
    ----------
    scores : array-like
        One score per object (higher = more anomalous).
    is_anomaly : array-like of bool
        Truth.
    k : int
        Length of the top list (capped at the number of objects).

    Returns
    -------
    float

    Examples
    --------
    >>> top_k_hits([0.9, 0.8, 0.8, 0.1], [True, True, False, False], 2)
    1.5
    """
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(is_anomaly, dtype=bool)
    k = int(min(k, len(scores)))
    if k <= 0:
        return 0.0
    cut = np.sort(scores)[::-1][k - 1]
    above = scores > cut
    tied = scores == cut
    n_above = int(above.sum())
    hits = float(truth[above].sum())
    if k > n_above:
        hits += (k - n_above) * float(truth[tied].sum()) / float(tied.sum())
    return hits


class EvaluationResult(dict):
    """The metrics of `evaluate`: a dict (``result["auroc"]``) that also converts to a table.

    Examples
    --------
    >>> from anomalymatch_astro.evaluation import evaluate
    >>> t = evaluate([0.9, 0.2, 0.7, 0.4], [True, False, False, True]).to_table()
    >>> len(t), float(t["auroc"][0])
    (1, 0.75)
    """

    def to_table(self):
        """The metrics as a one-row `~astropy.table.Table`, one column per metric, in order.

        Returns
        -------
        `~astropy.table.Table`
        """
        names = list(self)
        return Table(rows=[[self[name] for name in names]], names=names)

    def __repr__(self):
        return f"EvaluationResult({dict.__repr__(self)})"


def evaluate(scores, is_anomaly, *, exclude=None, k=100, ids=None):
    """Ranking metrics of anomaly scores against the truth.

    Objects in ``exclude`` (those already labelled at this point of the protocol)
    are removed first: the metrics describe how well the remaining, unlabelled
    objects are ranked.

    Parameters
    ----------
    scores : array-like of float
        One score per object, higher = more anomalous (e.g. P(anomaly)).
    is_anomaly : array-like of bool
        The truth, one per object (0/1 accepted).
    exclude : array-like or dict, optional
        Objects to leave out: a boolean mask, integer row indices, or object ids
        (a list, or a label dict ``{id: "anomaly" | "normal"}``) together with ``ids``.
    k : int, optional
        Length of the top list for ``recall_at_k`` and ``precision_at_k``.
    ids : array-like of str, optional
        Object ids, one per score; needed only when ``exclude`` holds ids.

    Returns
    -------
    EvaluationResult
        A dict (with `EvaluationResult.to_table` for a one-row table) of:

        ``auroc``
            Area under the ROC curve (`sklearn.metrics.roc_auc_score`).
        ``auprc``
            Average precision (`sklearn.metrics.average_precision_score`):
            the mean of the precision at each anomaly's rank; not the trapezoid rule.
        ``precision_at_1pct``
            Fraction of anomalies among the top 1% of scores
            (``n_top_1pct = max(1, n // 100)`` objects).
        ``recall_at_k``, ``precision_at_k``
            Fraction of all anomalies found in the top ``k``, and fraction of the
            top ``min(k, n)`` that are anomalies.
        ``found_in_first_100``
            Number of anomalies among the 100 highest scores.
        ``n``, ``n_anomalies``, ``anomaly_fraction``, ``n_excluded``, ``k``, ``n_top_1pct``
            What the numbers were measured on.

        Counts at tied scores are expected values under a random order of the ties.

    Raises
    ------
    `~anomalymatch_astro.utils.exceptions.InvalidInputError`
        NaN or infinite scores, lengths that differ, a truth that is not boolean,
        or only one class among the objects left.

    Examples
    --------
    >>> from anomalymatch_astro.evaluation import evaluate
    >>> m = evaluate([0.9, 0.2, 0.7, 0.4], [True, False, False, True])
    >>> m["auroc"], round(m["auprc"], 4), m["precision_at_1pct"]
    (0.75, 0.8333, 1.0)
    """
    scores = _as_scores(scores)
    n_all = scores.shape[0]
    truth = _as_truth(is_anomaly, n_all)
    drop = _exclude_mask(exclude, n_all, ids)
    scores, truth = scores[~drop], truth[~drop]
    n = int(scores.shape[0])
    n_anom = int(truth.sum())
    if n_anom == 0 or n_anom == n:
        what = "no anomalies" if n_anom == 0 else "no normal objects"
        msg = (
            f"there are {what} among the {n} objects left after excluding {int(drop.sum())}; "
            "the metrics need both classes (label fewer objects or use a larger set)"
        )
        raise InvalidInputError(msg)
    if int(k) != k or k < 1:
        msg = f"k must be a positive integer, got {k!r}"
        raise InvalidInputError(msg)
    k = int(k)
    n_top = max(1, n // 100)
    k_eff = min(k, n)
    hits_k = top_k_hits(scores, truth, k_eff)
    return EvaluationResult(
        auroc=float(roc_auc_score(truth, scores)),
        auprc=float(average_precision_score(truth, scores)),
        precision_at_1pct=top_k_hits(scores, truth, n_top) / n_top,
        recall_at_k=hits_k / n_anom,
        precision_at_k=hits_k / k_eff,
        found_in_first_100=top_k_hits(scores, truth, 100),
        n=n,
        n_anomalies=n_anom,
        anomaly_fraction=n_anom / n,
        n_excluded=int(drop.sum()),
        k=k,
        n_top_1pct=n_top,
    )


def summarize(results, *, by=None, metrics=None):
    """Mean and spread of metric dicts, e.g. over seeds, grouped by some keys.

    Parameters
    ----------
    results : list of dict
        Metric dicts (as from `evaluate`), each with the ``by`` keys added
        (e.g. ``{"dataset": "digits", "seed": 0, **evaluate(...)}``).
    by : str or list of str, optional
        Keys that define the groups (default: one group).
    metrics : list of str, optional
        Which numeric keys to summarise (default: the float metrics of `evaluate`
        found in every result).

    Returns
    -------
    `~astropy.table.Table`
        One row per group: the ``by`` columns, ``n_runs``, and ``<metric>_mean`` and
        ``<metric>_std`` (sample standard deviation, 0 for a single run).

    Examples
    --------
    >>> from anomalymatch_astro.evaluation import summarize
    >>> t = summarize([{"set": "a", "auroc": 0.8}, {"set": "a", "auroc": 0.9}], by="set")
    >>> round(float(t["auroc_mean"][0]), 3), int(t["n_runs"][0])
    (0.85, 2)
    """
    results = list(results)
    if not results or not all(isinstance(r, Mapping) for r in results):
        msg = "results must be a non-empty list of dicts (e.g. from evaluate)"
        raise InvalidInputError(msg)
    by = [] if by is None else ([by] if isinstance(by, str) else list(by))
    for key in by:
        missing = [i for i, r in enumerate(results) if key not in r]
        if missing:
            msg = f"results {missing[:10]} have no key {key!r} to group by"
            raise InvalidInputError(msg)
    if metrics is None:
        default = (
            "auroc",
            "auprc",
            "precision_at_1pct",
            "recall_at_k",
            "precision_at_k",
            "found_in_first_100",
            "anomaly_fraction",
        )
        metrics = [m for m in default if all(m in r for r in results)]
    else:
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        for m in metrics:
            if not all(m in r for r in results):
                msg = f"metric {m!r} is missing from some results"
                raise InvalidInputError(msg)
    groups = {}
    for r in results:
        groups.setdefault(tuple(r[key] for key in by), []).append(r)
    rows = []
    for key, members in groups.items():
        row = dict(zip(by, key))
        row["n_runs"] = len(members)
        for m in metrics:
            values = np.array([float(r[m]) for r in members])
            row[f"{m}_mean"] = float(values.mean())
            row[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    names = [*by, "n_runs", *(f"{m}_{s}" for m in metrics for s in ("mean", "std"))]
    return Table(rows=[[row[c] for c in names] for row in rows], names=names)
