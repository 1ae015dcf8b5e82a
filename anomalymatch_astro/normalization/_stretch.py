"""Stretches and intervals the way astronomers look at images, on float (N, C, H, W) batches.

Built on `astropy.visualization`: the intervals (`~astropy.visualization.ZScaleInterval`,
`~astropy.visualization.PercentileInterval`, `~astropy.visualization.MinMaxInterval`) pick
the data range, the stretches (`~astropy.visualization.AsinhStretch`,
`~astropy.visualization.LogStretch`, `~astropy.visualization.SqrtStretch`,
`~astropy.visualization.LinearStretch`) map it onto [0, 1].  Pixels stay float32
throughout (no uint8 quantisation before the network).
"""

import json
import math

import numpy as np
from astropy.visualization import (
    AsinhStretch,
    AsymmetricPercentileInterval,
    LinearStretch,
    LogStretch,
    MinMaxInterval,
    PercentileInterval,
    SqrtStretch,
    ZScaleInterval,
)

from ..utils.exceptions import InvalidInputError
from ._background import BACKGROUNDS, sky_levels

__all__ = ["Normalizer", "STRETCHES", "INTERVALS"]

STRETCHES = ("asinh", "log", "sqrt", "linear")
INTERVALS = ("percentile", "zscale", "minmax")


def _make_stretch(name, a):
    if name == "asinh":
        return AsinhStretch(a=a)
    if name == "log":
        return LogStretch(a=1.0 / a if a < 1 else a)
    if name == "sqrt":
        return SqrtStretch()
    return LinearStretch()


class Normalizer:
    """Map raw cutout pixels to float32 in [0, 1] with an interval and a stretch.

    Each cutout is normalised on its own (so a score never depends on which other
    objects are in the batch); the interval is found per band (``per_band=True``,
    colours are lost but faint bands are visible) or jointly over all bands
    (``per_band=False``, colours kept).  NaN and infinite pixels become 0 after the
    stretch, i.e. the bottom of the range.

    Parameters
    ----------
    stretch : {"asinh", "log", "sqrt", "linear"}, optional
        The stretch applied after the interval (astropy.visualization).
    interval : {"percentile", "zscale", "minmax"}, optional
        How the data range of each cutout is chosen.
    percentile : float or (float, float), optional
        For ``interval="percentile"``: the central percentage kept (e.g. 99.5),
        or explicit (lower, upper) percentiles.
    asinh_a : float, optional
        The ``a`` of the asinh stretch (smaller = more logarithmic); for ``log``
        its inverse is the log ``a``.
    per_band : bool, optional
        Interval per band (True) or shared by all bands (False).
    background : {None, "median", "annulus"}, optional
        Local sky subtraction before the interval and stretch: None (default) leaves the
        pixels as they are; ``"median"`` subtracts the sigma-clipped median of the whole
        cutout, ``"annulus"`` that of an annulus around the centre (the object excluded),
        per cutout and band.  The sky then becomes the bottom of the range: the interval
        gives only the upper limit, and pixels below the sky map to 0.
    background_sigma : float, optional
        The clipping threshold (standard deviations) of the sky estimate.
    annulus : (float, float), optional
        For ``background="annulus"``: inner and outer radius, as fractions of the cutout side.

    Notes
    -----
    The sky estimate is `astropy.stats.sigma_clipped_stats`' median (``maxiters=5``) over the
    finite pixels; the exact algorithm is described in ``normalization/_background.py`` and
    in the Normalisation guide.  The background settings appear in `to_dict` only when
    ``background`` is set, so the settings of a Normalizer without it are what they always were.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro.normalization import Normalizer
    >>> norm = Normalizer(stretch="asinh", interval="percentile", percentile=99.0)
    >>> x = np.random.default_rng(0).normal(size=(2, 3, 16, 16))
    >>> y = norm(x)
    >>> y.dtype, float(y.min()) >= 0.0, float(y.max()) <= 1.0
    (dtype('float32'), True, True)
    >>> Normalizer.from_json(norm.to_json()) == norm
    True
    """

    def __init__(
        self,
        *,
        stretch="asinh",
        interval="percentile",
        percentile=99.5,
        asinh_a=0.1,
        per_band=True,
        background=None,
        background_sigma=3.0,
        annulus=(0.35, 0.5),
    ):
        if stretch not in STRETCHES:
            msg = f"stretch must be one of {STRETCHES}, got {stretch!r}"
            raise InvalidInputError(msg)
        if interval not in INTERVALS:
            msg = f"interval must be one of {INTERVALS}, got {interval!r}"
            raise InvalidInputError(msg)
        if np.ndim(percentile) == 0:
            if not 0 < float(percentile) <= 100:
                msg = f"percentile must be in (0, 100], got {percentile}"
                raise InvalidInputError(msg)
            percentile = float(percentile)
        else:
            lo, hi = (float(p) for p in percentile)
            if not 0 <= lo < hi <= 100:
                msg = f"percentiles must satisfy 0 <= lower < upper <= 100, got {percentile}"
                raise InvalidInputError(msg)
            percentile = (lo, hi)
        if not (math.isfinite(asinh_a) and asinh_a > 0):
            msg = f"asinh_a must be a positive number, got {asinh_a}"
            raise InvalidInputError(msg)
        self._check_background(background, background_sigma, annulus)
        self.stretch = stretch
        self.interval = interval
        self.percentile = percentile
        self.asinh_a = float(asinh_a)
        self.per_band = bool(per_band)
        self.background = background
        self.background_sigma = float(background_sigma)
        self.annulus = tuple(float(r) for r in annulus)

    @staticmethod
    def _check_background(background, sigma, annulus):
        if background not in BACKGROUNDS:
            msg = f"background must be one of {BACKGROUNDS}, got {background!r}"
            raise InvalidInputError(msg)
        try:
            sigma = float(sigma)
            inner, outer = (float(r) for r in annulus)
        except (TypeError, ValueError) as exc:
            msg = f"background_sigma must be a number and annulus a pair of numbers, got {sigma!r}, {annulus!r}"
            raise InvalidInputError(msg) from exc
        if not (math.isfinite(sigma) and sigma > 0):
            msg = f"background_sigma must be a positive number, got {sigma}"
            raise InvalidInputError(msg)
        if not (math.isfinite(outer) and 0 <= inner < outer):
            msg = f"annulus must satisfy 0 <= inner < outer (fractions of the cutout side), got {annulus}"
            raise InvalidInputError(msg)

    # -------------------------------------------------------------- serialisation
    def to_dict(self):
        """The settings as a JSON-able dict (saved in checkpoints and table metadata)."""
        pct = list(self.percentile) if isinstance(self.percentile, tuple) else self.percentile
        settings = {
            "stretch": self.stretch,
            "interval": self.interval,
            "percentile": pct,
            "asinh_a": self.asinh_a,
            "per_band": self.per_band,
        }
        if self.background is not None:
            # only when set: the settings (and so checkpoints, cache keys) of a Normalizer without it never change
            settings.update(
                background=self.background, background_sigma=self.background_sigma, annulus=list(self.annulus)
            )
        return settings

    @classmethod
    def from_dict(cls, settings):
        """Rebuild a Normalizer from `to_dict` output (settings without ``background`` have none)."""
        settings = dict(settings)
        if isinstance(settings.get("percentile"), list):
            settings["percentile"] = tuple(settings["percentile"])
        try:
            return cls(**settings)
        except TypeError as exc:
            msg = f"not a Normalizer description: {settings} ({exc})"
            raise InvalidInputError(msg) from exc

    def to_json(self):
        """The settings as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """Rebuild a Normalizer from `to_json` output."""
        return cls.from_dict(json.loads(text))

    def __eq__(self, other):
        return isinstance(other, Normalizer) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.to_json())

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"Normalizer({args})"

    # -------------------------------------------------------------- the work
    def _interval(self):
        if self.interval == "zscale":
            return ZScaleInterval()
        if self.interval == "minmax":
            return MinMaxInterval()
        if isinstance(self.percentile, tuple):
            return AsymmetricPercentileInterval(*self.percentile)
        return PercentileInterval(self.percentile)

    def limits(self, image):
        """(vmin, vmax) of one 2-D or 3-D image, ignoring non-finite pixels."""
        finite = np.asarray(image)[np.isfinite(image)]
        if finite.size == 0:
            return 0.0, 1.0
        vmin, vmax = self._interval().get_limits(finite)
        if not vmax > vmin:
            vmax = vmin + 1.0
        return float(vmin), float(vmax)

    def __call__(self, data):
        """Normalise an (N, C, H, W), (C, H, W) or (H, W) array; returns float32 in [0, 1]."""
        data = np.asarray(data, dtype=np.float32)
        squeeze = 4 - data.ndim
        if squeeze < 0:
            msg = f"expected at most 4 dimensions (N, C, H, W), got shape {data.shape}"
            raise InvalidInputError(msg)
        batch = data.reshape((1,) * squeeze + data.shape)
        if self.background is not None:
            sky = sky_levels(batch, mode=self.background, sigma=self.background_sigma, annulus=self.annulus)
            batch = batch - sky.astype(np.float32)[..., None, None]
        out = np.empty_like(batch)
        stretch = _make_stretch(self.stretch, self.asinh_a)
        if self.interval == "percentile" and not self.per_band:
            lo_hi = self._percentile_limits(batch.reshape(batch.shape[0], 1, -1))
            lo, hi = lo_hi[:, :, 0, None, None], lo_hi[:, :, 1, None, None]
        elif self.interval == "percentile":
            lo_hi = self._percentile_limits(batch.reshape(batch.shape[0], batch.shape[1], -1))
            lo, hi = lo_hi[..., 0, None, None], lo_hi[..., 1, None, None]
        else:
            nb = batch.shape[1] if self.per_band else 1
            lo = np.zeros((batch.shape[0], nb, 1, 1), np.float32)
            hi = np.ones_like(lo)
            for i in range(batch.shape[0]):
                for b in range(nb):
                    image = batch[i, b] if self.per_band else batch[i]
                    lo[i, b], hi[i, b] = self.limits(image)
        if self.background is not None:  # the sky is the bottom of the range
            lo = np.zeros_like(lo)
            hi = np.where(hi > 0, hi, np.float32(1.0))
        np.subtract(batch, lo, out=out)
        out /= hi - lo
        np.clip(out, 0.0, 1.0, out=out)  # +-inf become 0 or 1 here; NaN stays NaN ...
        np.nan_to_num(out, copy=False, nan=0.0)  # ... and becomes 0
        stretch(out, clip=True, out=out)
        return out.reshape(data.shape)

    def _percentile_limits(self, flat):
        """Vectorised percentile limits over the last axis, ignoring NaN; shape (..., 2)."""
        if isinstance(self.percentile, tuple):
            lower, upper = self.percentile
        else:
            lower = (100.0 - self.percentile) / 2.0
            upper = 100.0 - lower
        finite = np.isfinite(flat)
        clean = finite.all(axis=-1)
        limits = np.empty(flat.shape[:-1] + (2,), np.float32)
        if clean.any():
            # rows without NaN/inf: np.percentile is vectorised (one partition for all rows), unlike
            # np.nanpercentile, which loops over rows in Python; both interpolate the same way
            limits[clean] = np.moveaxis(np.percentile(flat[clean], [lower, upper], axis=-1), 0, -1)
        if not clean.all():
            rows = np.where(finite[~clean], flat[~clean], np.nan)
            all_nan = np.all(np.isnan(rows), axis=-1)
            rows[all_nan] = 0.0
            limits[~clean] = np.moveaxis(np.nanpercentile(rows, [lower, upper], axis=-1), 0, -1)
        bad = ~(limits[..., 1] > limits[..., 0])
        limits[..., 1] = np.where(bad, limits[..., 0] + 1.0, limits[..., 1])
        return limits
