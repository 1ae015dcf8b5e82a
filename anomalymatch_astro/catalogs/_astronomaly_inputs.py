"""Inputs of the Astronomaly bundle: ids Astronomaly keeps intact, the feature matrix and the 2-D map."""

import logging
import re
import warnings

import numpy as np

from ..utils.exceptions import InvalidInputError, UnknownIDError

__all__ = ["safe_ids", "features_array", "visualisation_array"]

log = logging.getLogger(__name__)

_ID_PREFIX = "am_"
_NUMBER_LIKE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^(nan|inf|infinity)$", re.IGNORECASE)


# ----------------------------------------------------------------------------------------- ids
def safe_ids(ids):
    """Ids that survive Astronomaly: usable as file stems, never numbers, no leading zeros.

    Every id becomes ``"am_" + id`` with characters other than letters, digits, ``-`` and
    ``_`` replaced by ``_``; clashes (also ones that differ only in case, for
    case-insensitive file systems) get a ``_2``, ``_3`` ... suffix.

    Parameters
    ----------
    ids : sequence of str
        The original (unique) ids.

    Returns
    -------
    list of str
        The safe ids, in the same order.

    Examples
    --------
    >>> from anomalymatch_astro.catalogs import safe_ids
    >>> safe_ids(["007", "1.5e3", "NGC 4993", "a/b"])
    ['am_007', 'am_1_5e3', 'am_NGC_4993', 'am_a_b']
    """
    out, seen = [], set()
    for obj_id in map(str, ids):
        base = _ID_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "_", obj_id)[:100]
        candidate, k = base, 1
        while candidate.lower() in seen:
            k += 1
            candidate = f"{base}_{k}"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def _is_safe(obj_id):
    return (
        bool(obj_id)
        and not _NUMBER_LIKE.match(obj_id)
        and not obj_id[0].isdigit()
        and re.fullmatch(r"[A-Za-z0-9_-]+", obj_id) is not None
    )


# ----------------------------------------------------------------------------------------- inputs
def features_array(features, ids):
    """(names, float64 array (N, D)) from an array, or a Table / mapping with one column per feature."""
    from astropy.table import Table

    if isinstance(features, Table):
        names = [n for n in features.colnames if n != "id"]
        if "id" in features.colnames:
            order = {str(i): k for k, i in enumerate(features["id"])}
            missing = [str(i) for i in ids if i not in order]
            if missing:
                msg = f"{len(missing)} object(s) have no features: {missing[:10]}"
                raise UnknownIDError(msg, ids=missing)
            rows = np.array([order[i] for i in ids])
        else:
            rows = np.arange(len(features))
        array = (
            np.column_stack([np.asarray(features[n], dtype=np.float64)[rows] for n in names])
            if names
            else np.zeros((len(rows), 0))
        )
    else:
        array = np.asarray(features, dtype=np.float64)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            msg = f"features must be a 2-d array (N, D), got shape {array.shape}"
            raise InvalidInputError(msg)
        names = [str(k) for k in range(array.shape[1])]
    if array.shape[0] != len(ids):
        msg = f"features have {array.shape[0]} rows for {len(ids)} cutouts; give one row per cutout"
        raise InvalidInputError(msg)
    if array.shape[1] == 0:
        msg = "features have no columns; Astronomaly's active learning needs at least one feature"
        raise InvalidInputError(msg)
    bad = ~np.all(np.isfinite(array), axis=1)
    if np.any(bad):
        bad_ids = [ids[i] for i in np.flatnonzero(bad)]
        msg = (
            f"{len(bad_ids)} object(s) have NaN or infinite features: {bad_ids[:10]}. Astronomaly "
            "crashes on them; impute them (e.g. with the column median) or leave those objects out "
            "of the export"
        )
        raise InvalidInputError(msg)
    return [str(n) for n in names], array


def visualisation_array(visualisation, features, ids):
    """(row indices, float64 (M, 2)) of the 2-D map."""
    from astropy.table import Table

    if visualisation is None:
        from sklearn.decomposition import PCA

        n, d = features.shape
        coords = np.zeros((n, 2))
        k = min(2, d, n)
        if k > 0 and n > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # constant features: zero variance
                coords[:, :k] = PCA(n_components=k, random_state=0).fit_transform(features)
        coords = np.nan_to_num(coords)
        return np.arange(n), coords
    if isinstance(visualisation, Table):
        cols = [c for c in visualisation.colnames if c != "id"]
        if "id" not in visualisation.colnames or len(cols) != 2:
            msg = "a visualisation Table needs an 'id' column and exactly two coordinate columns"
            raise InvalidInputError(msg)
        index = {obj_id: k for k, obj_id in enumerate(ids)}
        vis_ids = [str(i) for i in visualisation["id"]]
        unknown = [i for i in vis_ids if i not in index]
        if unknown:
            msg = (
                f"{len(unknown)} visualisation id(s) are not among the exported objects: {unknown[:10]}; "
                "Astronomaly's map view crashes on them"
            )
            raise UnknownIDError(msg, ids=unknown)
        rows = np.array([index[i] for i in vis_ids], dtype=np.int64)
        coords = np.column_stack([np.asarray(visualisation[c], dtype=np.float64) for c in cols])
    else:
        coords = np.asarray(visualisation, dtype=np.float64)
        if coords.shape != (len(ids), 2):
            msg = f"visualisation must have shape (N, 2) = ({len(ids)}, 2), got {coords.shape}"
            raise InvalidInputError(msg)
        rows = np.arange(len(ids))
    keep = np.all(np.isfinite(coords), axis=1)
    if not np.all(keep):
        log.warning("dropping %d non-finite points from the visualisation", int((~keep).sum()))
    return rows[keep], coords[keep]
