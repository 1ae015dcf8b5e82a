"""Checks of the arrays, band names and ids a `~anomalymatch_astro.CutoutSet` is made of."""

import numpy as np

from ..utils.exceptions import BandMismatchError, InvalidInputError

__all__ = ["default_ids"]


def _default_bands(n):
    return tuple(f"band{i}" for i in range(n))


def _as_nchw(data, bands, channel_axis):
    data = np.asarray(data)
    if data.dtype.kind not in "fiub":
        msg = f"cutout data must be numeric, got dtype {data.dtype}"
        raise InvalidInputError(msg)
    if data.ndim == 3:
        return data[:, None, :, :]
    if data.ndim != 4:
        msg = f"cutout data must have shape (N, C, H, W), (N, H, W, C) or (N, H, W); got {data.shape}"
        raise InvalidInputError(msg)
    if channel_axis is None:
        if bands is not None and data.shape[1] == len(bands) and data.shape[3] != len(bands):
            channel_axis = 1
        elif bands is not None and data.shape[3] == len(bands) and data.shape[1] != len(bands):
            channel_axis = -1
        elif data.shape[2] == data.shape[3] and data.shape[1] != data.shape[2]:
            channel_axis = 1
        elif data.shape[1] == data.shape[2] and data.shape[3] != data.shape[1]:
            channel_axis = -1
        else:
            channel_axis = 1
    if channel_axis in (-1, 3):
        data = np.moveaxis(data, -1, 1)
    elif channel_axis != 1:
        msg = f"channel_axis must be 1 (N, C, H, W) or -1 (N, H, W, C); got {channel_axis}"
        raise InvalidInputError(msg)
    return data


def _check_bands(bands, n_channels):
    if bands is None:
        return _default_bands(n_channels)
    if isinstance(bands, str):
        bands = [bands]
    bands = tuple(str(b) for b in bands)
    if len(bands) != n_channels:
        msg = f"{len(bands)} band names {bands} given for data with {n_channels} channels"
        raise BandMismatchError(msg)
    if len(set(bands)) != len(bands):
        msg = f"band names must be unique, got {bands}"
        raise BandMismatchError(msg)
    return bands


def default_ids(n):
    """The ids given to ``n`` objects that have none (``obj0`` to ``obj<n-1>``, zero-padded to one width)."""
    width = max(1, len(str(n - 1)))
    return np.array([f"obj{i:0{width}d}" for i in range(n)])


def _check_ids(ids, n):
    if ids is None:
        return default_ids(n)
    ids = np.asarray([str(i) for i in ids])
    if ids.shape != (n,):
        msg = f"{len(ids)} ids given for {n} cutouts"
        raise InvalidInputError(msg)
    values, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        dup = values[counts > 1]
        msg = f"ids must be unique; duplicated: {list(dup[:10])}"
        raise InvalidInputError(msg)
    return ids
