"""How the benchmark sets are drawn: class counts for an anomaly fraction, even splits, per-class pools."""

import logging

import numpy as np

from ..utils.exceptions import InvalidInputError

__all__ = []

log = logging.getLogger(__name__)


def _class_counts(n_per_class_normal, n_normal_classes, n_anom_max, anomaly_fraction):
    """How many normals and anomalies give ``anomaly_fraction`` with the most objects."""
    if not 0.0 < anomaly_fraction < 1.0:
        msg = f"anomaly_fraction must be in (0, 1), got {anomaly_fraction!r}"
        raise InvalidInputError(msg)
    n_normal_max = n_per_class_normal * n_normal_classes
    ratio = anomaly_fraction / (1.0 - anomaly_fraction)
    if n_normal_max * ratio <= n_anom_max + 1e-9:  # every normal kept
        n_normal = n_normal_max
        n_anom = min(n_anom_max, max(1, int(round(n_normal * ratio))))
    else:  # every anomaly kept, normals subsampled
        n_anom = n_anom_max
        n_normal = max(1, int(round(n_anom / ratio)))
    return n_normal, n_anom


def _split(n, parts):
    base = np.full(parts, n // parts)
    base[: n % parts] += 1
    return base


def _check_positive_int(value, name, *, allow_none=False, minimum=1):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        msg = f"{name} must be an integer >= {minimum}{' or None' if allow_none else ''}, got {value!r}"
        raise InvalidInputError(msg)
    return int(value)


def _choose(pools, anomaly_class, normal_classes, n_per_class, anomaly_fraction, rng):
    """Draw the rows of the set from per-class pools: equal normal classes, anomalies to the fraction.

    Returns the chosen pool entries (shuffled) and the number of anomalies.
    """
    cap = np.inf if n_per_class is None else n_per_class
    n_per_normal = int(min(min(len(pools[c]) for c in normal_classes), cap))
    n_anom_max = int(min(len(pools[anomaly_class]), cap))
    n_normal, n_anom = _class_counts(n_per_normal, len(normal_classes), n_anom_max, anomaly_fraction)
    picks = [
        rng.choice(pools[c], int(k), replace=False)
        for c, k in zip(normal_classes, _split(n_normal, len(normal_classes)))
    ]
    picks.append(rng.choice(pools[anomaly_class], n_anom, replace=False))
    chosen = np.concatenate(picks)
    chosen = chosen[rng.permutation(len(chosen))]
    achieved = n_anom / len(chosen)
    if abs(achieved - anomaly_fraction) > 0.25 * anomaly_fraction:
        log.warning(
            "the set holds %d anomalies among %d images (%.3g), not the %.3g asked for: too few images "
            "for that fraction",
            n_anom,
            len(chosen),
            achieved,
            anomaly_fraction,
        )
    return chosen, n_anom
