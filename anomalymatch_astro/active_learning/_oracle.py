"""A simulated oracle: the paper's active-learning protocol with known truth."""

import logging
import time

import numpy as np

from ..utils.exceptions import InvalidInputError

__all__ = ["simulate_oracle", "OracleResult"]

log = logging.getLogger(__name__)


#: The columns every row of an `OracleResult` has, in table order (the metrics follow).
_FIRST_COLUMNS = (
    "cycle",
    "mode",
    "n_labelled",
    "n_anomalies_labelled",
    "n_new_anomalies",
    "train_seconds",
    "exhausted",
)


class OracleResult(list):
    """The records of `simulate_oracle`: a list of dicts, one per evaluation, that also makes a Table.

    Examples
    --------
    >>> from anomalymatch_astro.active_learning import OracleResult
    >>> r = OracleResult([{"cycle": 0, "auroc": 0.8, "n": 90}, {"cycle": 1, "auroc": float("nan")}])
    >>> r[0]["auroc"]
    0.8
    >>> t = r.to_table()
    >>> list(t.colnames), bool(t["n"].mask[1])
    (['cycle', 'auroc', 'n'], True)
    """

    def to_table(self):
        """The records as a Table, one row per evaluation.

        Columns: ``cycle``, ``mode``, ``n_labelled``, ``n_anomalies_labelled``,
        ``n_new_anomalies``, ``train_seconds``, ``exhausted``, then the metrics in the
        order they first appear.  A value missing from a row (the metrics after the
        anomalies ran out) is masked.

        Returns
        -------
        `~astropy.table.Table`
        """
        from astropy.table import MaskedColumn, Table

        names = [c for c in _FIRST_COLUMNS if any(c in row for row in self)]
        for row in self:
            names += [k for k in row if k not in names]
        table = Table()
        for name in names:
            present = [row[name] for row in self if name in row]
            if len(present) == len(self):
                table[name] = present
            else:
                fill = present[0]
                values = [row.get(name, fill) for row in self]
                table[name] = MaskedColumn(values, mask=[name not in row for row in self])
        return table


def simulate_oracle(
    session,
    is_anomaly,
    *,
    cycles=3,
    n_anomalies=10,
    n_false_positives=10,
    mode=None,
    iterations=None,
    k=100,
    held_out=None,
    systems=None,
    artefacts=None,
    group=False,
    progress=True,
):
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
    held_out : array-like of bool, optional
        Objects the oracle never labels and on which alone the metrics are measured
        (the paper's test split).  They stay in the session as unlabelled data, as in real
        use.  Without it, the metrics are measured on every object not labelled at that
        point, and a small set can run out of anomalies to find.
    systems : array-like of int, optional
        One system id per object (e.g. the segmentation parent): adds ``distinct_top50``,
        the number of distinct systems among the 50 top-scored evaluated objects.
    artefacts : array-like of bool, optional
        Objects that are artefacts (a star's spikes and halo, deblended fragments): adds
        ``artefacts_top24``, how many of them are among the 24 top-scored evaluated objects.
    group : bool, optional
        Rank one object per system (the best-scored; needs ``systems``) for these two
        counts, as the session's grouped candidates are shown.
    progress : bool, optional
        Progress bars while training.

    Returns
    -------
    OracleResult
        A list of dicts, one per evaluation (`OracleResult.to_table` gives them as a
        Table): ``cycle`` (0 = the initial training), ``mode``, ``n_labelled``,
        ``n_anomalies_labelled``, ``n_new_anomalies`` (true anomalies found in this
        cycle's top-scored candidates), ``train_seconds``, ``exhausted`` (True when no
        unlabelled anomaly is left among the evaluated objects: the metrics are then NaN
        and the protocol stops early) and every metric of `~anomalymatch_astro.evaluate`
        (``auroc``, ``auprc``,
        ``precision_at_1pct`` ...).
    """
    truth = np.asarray(is_anomaly).astype(bool)
    if truth.shape != (len(session.cutouts),):
        msg = f"is_anomaly must have one value per cutout ({len(session.cutouts)}), got shape {truth.shape}"
        raise InvalidInputError(msg)
    from ..evaluation import evaluate

    if held_out is None:
        held_out = np.zeros(len(truth), dtype=bool)
    held_out = np.asarray(held_out).astype(bool)
    if held_out.shape != truth.shape:
        msg = f"held_out must have one value per cutout ({len(truth)}), got shape {held_out.shape}"
        raise InvalidInputError(msg)
    if held_out.any() and (session.labelled_mask() & held_out).any():
        msg = "some held-out objects are already labelled; start labels must come from the other objects"
        raise InvalidInputError(msg)
    for name, values in (("systems", systems), ("artefacts", artefacts)):
        if values is not None and np.shape(values) != truth.shape:
            msg = f"{name} must have one value per cutout ({len(truth)}), got shape {np.shape(values)}"
            raise InvalidInputError(msg)
    if group and systems is None:
        msg = "group=True ranks one object per system: pass systems= as well"
        raise InvalidInputError(msg)
    ids = np.asarray(session.cutouts.ids).astype(str)
    records = OracleResult()

    def record(cycle, seconds, n_new):
        mask = session.labelled_mask()
        row = {
            "cycle": cycle,
            "mode": session.last_train_mode,
            "n_labelled": int(mask.sum()),
            "n_anomalies_labelled": int((mask & truth).sum()),
            "n_new_anomalies": n_new,
            "train_seconds": float(seconds),
        }
        exclude = ~held_out if held_out.any() else mask
        left = truth[~exclude]
        if left.any() and not left.all():
            row.update(evaluate(session.scores, truth, exclude=exclude, k=k))
        else:  # every anomaly (or every normal) is labelled: nothing left to rank
            row.update(auroc=float("nan"), auprc=float("nan"), precision_at_1pct=float("nan"))
        row["exhausted"] = not left.any()
        row.update(_top_counts(session.scores, ~exclude, systems, artefacts, group))
        records.append(row)
        log.info("oracle cycle %d: %s", cycle, {k_: row[k_] for k_ in ("auroc", "auprc") if k_ in row})

    t = time.perf_counter()
    if session.scores is None:
        session.train(mode=mode, iterations=iterations, progress=progress)
    record(0, time.perf_counter() - t, 0)
    for c in range(1, int(cycles) + 1):
        scores = session.scores
        order = np.argsort(-scores, kind="stable")
        free = ~(session.labelled_mask() | held_out)[order]
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


def _top_counts(scores, evaluated, systems, artefacts, group):
    """Distinct systems among the top 50 and artefacts among the top 24 of the evaluated objects."""
    from ._strategies import first_per_system

    out = {}
    if systems is None and artefacts is None:
        return out
    rows = np.flatnonzero(evaluated)
    rows = rows[np.argsort(-np.asarray(scores)[rows], kind="stable")]
    if group:
        rows = first_per_system(rows, np.asarray(systems))
    if systems is not None:
        out["distinct_top50"] = len(np.unique(np.asarray(systems)[rows[:50]]))
    if artefacts is not None:
        out["artefacts_top24"] = int(np.sum(np.asarray(artefacts, dtype=bool)[rows[:24]]))
    return out
