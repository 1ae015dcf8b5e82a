"""Metric plots: ROC and precision-recall curves, and score histograms.

Figures are made with matplotlib's object API (`matplotlib.figure.Figure`), never
through pyplot's global state, so they work under any backend, in scripts and in
notebooks, and never pop up windows by themselves.
"""

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from ..utils.exceptions import InvalidInputError

__all__ = ["plot_roc_pr", "plot_score_histogram"]


def _as_scores(scores):
    scores = np.asarray(scores)
    if scores.ndim != 1 or scores.dtype.kind not in "iuf":
        msg = f"scores must be a 1-d numeric array (one score per object), got {scores.dtype} {scores.shape}"
        raise InvalidInputError(msg)
    scores = scores.astype(float)
    if not np.all(np.isfinite(scores)):
        msg = f"{int((~np.isfinite(scores)).sum())} scores are NaN or infinite; plot finite scores only"
        raise InvalidInputError(msg)
    return scores


def _as_truth(is_anomaly, n):
    truth = np.asarray(is_anomaly)
    if truth.ndim != 1 or truth.shape[0] != n:
        msg = f"is_anomaly must give one truth value per score: length {truth.shape} for {n} scores"
        raise InvalidInputError(msg)
    if truth.dtype != bool and not (truth.dtype.kind in "iuf" and np.all(np.isin(truth, [0, 1]))):
        msg = "is_anomaly must be boolean (or 0/1): True for an anomaly, False for a normal object"
        raise InvalidInputError(msg)
    return truth.astype(bool)


def _check(scores, is_anomaly=None):
    scores = _as_scores(scores)
    if is_anomaly is None:
        return scores, None
    truth = _as_truth(is_anomaly, scores.shape[0])
    if truth.all() or not truth.any():
        msg = "is_anomaly must contain both anomalies and normal objects to draw ROC/PR curves"
        raise InvalidInputError(msg)
    return scores, truth


def _axes_pair(ax):
    if ax is None:
        fig = Figure(figsize=(10.0, 4.4), layout="constrained")
        return fig, fig.subplots(1, 2)
    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != 2:
        msg = "ax must be a pair of matplotlib Axes (ROC, precision-recall), or None for a new figure"
        raise InvalidInputError(msg)
    return axes[0].figure, axes


def plot_roc_pr(scores, is_anomaly, *, ax=None, label=None):
    """Plot the ROC and precision-recall curves side by side.

    The legend gives the AUROC and the average precision (AP, the AUPRC used by
    `~anomalymatch_astro.evaluation.evaluate`).  Call it again with the same axes
    to overlay several methods or cycles.

    Parameters
    ----------
    scores : array-like of float
        One score per object, higher = more anomalous.
    is_anomaly : array-like of bool
        The truth.
    ax : pair of `~matplotlib.axes.Axes`, optional
        Axes for the ROC and the precision-recall curve; a new figure if None.
    label : str, optional
        Legend label of this curve (the metric values are appended).

    Returns
    -------
    `~matplotlib.figure.Figure`

    Examples
    --------
    >>> from anomalymatch_astro.visualization._curves import plot_roc_pr
    >>> fig = plot_roc_pr([0.9, 0.2, 0.7, 0.4], [True, False, False, True], label="demo")
    >>> [a.get_xlabel() for a in fig.axes]
    ['False positive rate', 'Recall (completeness)']
    """
    scores, truth = _check(scores, is_anomaly)
    fig, (ax_roc, ax_pr) = _axes_pair(ax)
    auroc = roc_auc_score(truth, scores)
    ap = average_precision_score(truth, scores)
    prefix = f"{label}: " if label else ""
    fpr, tpr, _ = roc_curve(truth, scores)
    (line,) = ax_roc.plot(fpr, tpr, label=f"{prefix}AUROC = {auroc:.3f}")
    if not any(getattr(artist, "_amatch_baseline", False) for artist in ax_roc.lines):
        (base,) = ax_roc.plot([0, 1], [0, 1], ls=":", color="0.6", lw=1, label="chance")
        base._amatch_baseline = True
    ax_roc.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="False positive rate", ylabel="True positive rate", title="ROC")
    ax_roc.legend(loc="lower right", fontsize="small")

    precision, recall, _ = precision_recall_curve(truth, scores)
    ax_pr.step(recall, precision, where="post", color=line.get_color(), label=f"{prefix}AP = {ap:.3f}")
    fraction = truth.mean()
    base_label = f"anomaly fraction = {fraction:.3g}"
    if base_label not in [ln.get_label() for ln in ax_pr.lines]:  # once per distinct truth
        ax_pr.axhline(fraction, ls=":", color="0.6", lw=1, label=base_label)
    ax_pr.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="Recall (completeness)",
        ylabel="Precision (purity)",
        title="Precision-recall",
    )
    ax_pr.legend(loc="upper right", fontsize="small")
    return fig


def plot_score_histogram(scores, *, is_anomaly=None, ax=None, bins=50):
    """Histogram of the scores on a log count axis, anomalies overlaid when the truth is known.

    Parameters
    ----------
    scores : array-like of float
        One score per object.
    is_anomaly : array-like of bool, optional
        Truth; when given, normal objects and anomalies are drawn separately.
    ax : `~matplotlib.axes.Axes`, optional
        Where to draw; a new figure if None.
    bins : int or sequence, optional
        Histogram bins (shared by both classes).

    Returns
    -------
    `~matplotlib.figure.Figure`

    Examples
    --------
    >>> from anomalymatch_astro.visualization._curves import plot_score_histogram
    >>> fig = plot_score_histogram([0.1, 0.2, 0.9], is_anomaly=[False, False, True], bins=5)
    >>> fig.axes[0].get_yscale()
    'log'
    """
    scores, _ = _check(scores)
    truth = None
    if is_anomaly is not None:
        truth = _as_truth(is_anomaly, scores.shape[0])
    if ax is None:
        fig = Figure(figsize=(6.0, 4.0), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    edges = np.histogram_bin_edges(scores, bins=bins)
    if truth is None:
        ax.hist(scores, bins=edges, histtype="stepfilled", alpha=0.6, label=f"all ({scores.size})")
    else:
        ax.hist(
            scores[~truth],
            bins=edges,
            histtype="stepfilled",
            alpha=0.5,
            color="C0",
            label=f"normal ({int((~truth).sum())})",
        )
        if truth.any():
            ax.hist(scores[truth], bins=edges, histtype="step", lw=2, color="C3", label=f"anomaly ({int(truth.sum())})")
    ax.set_yscale("log")
    ax.set(xlabel="Anomaly score", ylabel="Number of objects")
    ax.legend(fontsize="small")
    return fig
