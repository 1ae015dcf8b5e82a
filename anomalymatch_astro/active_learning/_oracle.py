"""A simulated oracle: the paper's active-learning protocol with known truth."""

import logging
import time

import numpy as np

from ..utils.exceptions import InvalidInputError

__all__ = ["simulate_oracle"]

log = logging.getLogger(__name__)


def simulate_oracle(session, is_anomaly, *, cycles=3, n_anomalies=10, n_false_positives=10, mode=None,
                    iterations=None, k=100, progress=False):
    """Run AnomalyMatch's active-learning protocol with the truth standing in for the user.

    After an initial training (skipped when the session already has scores), each
    cycle labels the ``n_anomalies`` top-scored true anomalies as ``"anomaly"`` and
    the ``n_false_positives`` top-scored normals as ``"normal"`` (source
    ``"oracle"``) among the not-yet-labelled objects, then retrains.  After the
    initial training and after every cycle, `~anomalymatch_astro.evaluate` is
    measured on the objects not labelled at that point.

    Parameters
    ----------
    session : `ActiveLearningSession`
        A session with start labels (at least one of each class).
    is_anomaly : array-like of bool
        The truth, aligned with ``session.cutouts``.
    cycles : int, optional
        Labelling cycles after the initial training.
    n_anomalies, n_false_positives : int, optional
        Labels given per cycle.
    mode : {"fast", "fixmatch", "both"}, optional
        Training mode (default: the session's).
    iterations : int, optional
        FixMatch steps per training.
    k : int, optional
        ``k`` of recall at k.
    progress : bool, optional
        Progress bars while training.

    Returns
    -------
    list of dict
        One per evaluation: ``cycle`` (0 = the initial training), ``mode``,
        ``n_labelled``, ``n_anomalies_labelled``, ``n_new_anomalies`` (true anomalies
        found in this cycle's top-scored candidates), ``train_seconds``, ``exhausted``
        (True when no unlabelled anomaly is left: the metrics are then NaN and the
        protocol stops early) and every
        metric of `~anomalymatch_astro.evaluate` (``auroc``, ``auprc``,
        ``precision_at_1pct`` ...).
    """
    truth = np.asarray(is_anomaly).astype(bool)
    if truth.shape != (len(session.cutouts),):
        msg = f"is_anomaly must have one value per cutout ({len(session.cutouts)}), got shape {truth.shape}"
        raise InvalidInputError(msg)
    from ..evaluation import evaluate

    ids = np.asarray(session.cutouts.ids).astype(str)
    records = []

    def record(cycle, seconds, n_new):
        mask = session.labelled_mask()
        row = {"cycle": cycle, "mode": session._last_mode, "n_labelled": int(mask.sum()),
               "n_anomalies_labelled": int((mask & truth).sum()), "n_new_anomalies": n_new,
               "train_seconds": float(seconds)}
        left = truth[~mask]
        if left.any() and not left.all():
            row.update(evaluate(session.scores, truth, exclude=mask, k=k))
        else:  # every anomaly (or every normal) is labelled: nothing left to rank
            row.update(auroc=float("nan"), auprc=float("nan"), precision_at_1pct=float("nan"))
        row["exhausted"] = not left.any()
        records.append(row)
        log.info("oracle cycle %d: %s", cycle, {k_: row[k_] for k_ in ("auroc", "auprc") if k_ in row})

    t = time.perf_counter()
    if session.scores is None:
        session.train(mode=mode, iterations=iterations, progress=progress)
    record(0, time.perf_counter() - t, 0)
    for c in range(1, int(cycles) + 1):
        scores = session.scores
        order = np.argsort(-scores, kind="stable")
        free = ~session.labelled_mask()[order]
        order = order[free]
        anomalies = order[truth[order]][:n_anomalies]
        normals = order[~truth[order]][:n_false_positives]
        new = {ids[r]: "anomaly" for r in anomalies}
        new.update({ids[r]: "normal" for r in normals})
        if not new or records[-1]["exhausted"]:
            break
        session.label(new, source="oracle", user="oracle")
        t = time.perf_counter()
        session.train(mode=mode, iterations=iterations, progress=progress)
        record(c, time.perf_counter() - t, len(anomalies))
    return records
