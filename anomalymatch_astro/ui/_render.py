"""Server-side rendering for the labelling UI: cutouts and score histograms as PNG data URLs.

Images are rendered in Python (numpy -> PNG with Pillow, matplotlib for the
histogram) and sent to the browser as ``data:image/png;base64,...`` URLs, so the
front end never needs pixel data or an image server, and nothing is fetched from
the network to draw a tile.  `TileRenderer` caches every PNG per
``(id, view, stretch)``.
"""

import base64
import io
import logging
from collections import OrderedDict

import numpy as np

from ..normalization import STRETCHES, Normalizer, lupton_rgb, make_rgb
from ..utils.exceptions import InvalidInputError

__all__ = ["TileRenderer", "render_png", "cutout_rgb", "score_histogram_png", "VIEWS_COMPOSITE"]

log = logging.getLogger(__name__)

#: The colour views of a tile; per-band views are named ``"band:<band name>"``.
VIEWS_COMPOSITE = ("lupton", "colour")


def render_png(image):
    """Encode an image as a PNG data URL.

    Parameters
    ----------
    image : array-like
        (H, W) grey or (H, W, 3) RGB, float in [0, 1] (clipped) or uint8.

    Returns
    -------
    str
        ``"data:image/png;base64,..."``.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro.ui import render_png
    >>> render_png(np.zeros((8, 8))).startswith("data:image/png;base64,")
    True
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        msg = f"expected an (H, W) or (H, W, 3) image, got shape {arr.shape}"
        raise InvalidInputError(msg)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def cutout_rgb(cutout, *, view="lupton", stretch="asinh", bands=None, band_scales=None):
    """The displayed image of one cutout in one view.

    Parameters
    ----------
    cutout : array-like
        (C, H, W) pixels.
    view : str, optional
        ``"lupton"`` (Lupton et al. 2004 colour composite, `~anomalymatch_astro.normalization.lupton_rgb`; ignores
        ``stretch``), ``"colour"`` (`~anomalymatch_astro.normalization.make_rgb` with
        ``method="normalized"``: each band through a `~anomalymatch_astro.normalization.Normalizer` with ``stretch``,
        then mapped to RGB like `~anomalymatch_astro.normalization.lupton_rgb`), or ``"band:<name>"``
        (one band in grey through a `~anomalymatch_astro.normalization.Normalizer` with ``stretch``).
    stretch : {"asinh", "log", "sqrt", "linear"}, optional
        Stretch of the ``"colour"`` and per-band views (99.5 % percentile interval).
    bands : sequence of str, optional
        Band names in channel order, needed for the per-band views.
    band_scales : sequence of float, optional
        Per-band flux factors of the ``"lupton"`` composite (see
        `~anomalymatch_astro.CutoutSet.band_flux_scales`); default: the pixels as they are.

    Returns
    -------
    numpy.ndarray
        float32 (H, W, 3) RGB or (H, W) grey, in [0, 1].
    """
    cutout = np.asarray(cutout, dtype=np.float32)
    if stretch not in STRETCHES:
        msg = f"stretch must be one of {STRETCHES}, got {stretch!r}"
        raise InvalidInputError(msg)
    if view == "lupton":
        return lupton_rgb(cutout, band_scales=band_scales)
    norm = Normalizer(stretch=stretch, interval="percentile", percentile=99.5)
    if view == "colour":
        return make_rgb(cutout, method="normalized", normalizer=norm)
    if isinstance(view, str) and view.startswith("band:"):
        name = view[5:]
        bands = list(bands) if bands is not None else []
        if name not in bands:
            msg = f"unknown band {name!r} in view {view!r}; the bands are {bands}"
            raise InvalidInputError(msg)
        return norm(cutout[None, bands.index(name) : bands.index(name) + 1])[0, 0]
    msg = f"view must be 'lupton', 'colour' or 'band:<name>', got {view!r}"
    raise InvalidInputError(msg)


class TileRenderer:
    """Render cutouts of a CutoutSet to PNG data URLs, with an LRU cache per (id, view, stretch).

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet`
        Where the pixels come from (read only for the ids asked for).
    max_items : int, optional
        Cache size in images (a 64x64 RGB PNG is about 10 kB).

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro import CutoutSet
    >>> from anomalymatch_astro.ui import TileRenderer
    >>> cs = CutoutSet.from_arrays(np.random.default_rng(0).normal(size=(3, 2, 16, 16)), bands=["g", "r"])
    >>> r = TileRenderer(cs)
    >>> images, errors = r.render(["obj0", "obj2"], view="band:r")
    >>> sorted(images), errors
    (['obj0', 'obj2'], {})
    """

    def __init__(self, cutouts, *, max_items=4096):
        self.cutouts = cutouts
        self.max_items = int(max_items)
        self._cache = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def views(self):
        """The views offered for these cutouts (composites, then one per band)."""
        return list(VIEWS_COMPOSITE) + [f"band:{b}" for b in self.cutouts.bands]

    def clear(self):
        """Empty the cache."""
        self._cache.clear()

    def _get(self, key):
        value = self._cache.get(key)
        if value is not None:
            self._cache.move_to_end(key)
        return value

    def _put(self, key, value):
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_items:
            self._cache.popitem(last=False)

    def render(self, ids, *, view="lupton", stretch="asinh"):
        """PNG data URLs of ``ids``.

        Pixels of the ids not in the cache are read in one call; when that fails
        (a damaged file, an unknown id) each id is tried on its own, so one bad
        cutout does not blank the page.

        Parameters
        ----------
        ids : list of str
        view : str, optional
            See `cutout_rgb`.
        stretch : str, optional
            See `cutout_rgb` (ignored by the ``"lupton"`` view).

        Returns
        -------
        images : dict
            ``{id: data URL}`` for the ids that rendered.
        errors : dict
            ``{id: message}`` for those that did not.
        """
        if view not in self.views:
            msg = f"view must be one of {self.views}, got {view!r}"
            raise InvalidInputError(msg)
        if stretch not in STRETCHES:
            msg = f"stretch must be one of {STRETCHES}, got {stretch!r}"
            raise InvalidInputError(msg)
        skey = "-" if view == "lupton" else stretch
        images, errors, todo = {}, {}, []
        for obj_id in ids:
            cached = self._get((obj_id, view, skey))
            if cached is None:
                todo.append(obj_id)
            else:
                images[obj_id] = cached
                self.hits += 1
        if not todo:
            return images, errors
        self.misses += len(todo)
        try:
            pixels = {obj_id: p for obj_id, p in zip(todo, self.cutouts[list(todo)].data)}
        except Exception as exc:  # fall back to one id at a time to find the bad one(s)
            log.warning("reading %d cutouts failed (%s); trying one at a time", len(todo), exc)
            pixels = {}
            for obj_id in todo:
                try:
                    pixels[obj_id] = self.cutouts[[obj_id]].data[0]
                except Exception as exc1:
                    errors[obj_id] = f"could not read this cutout: {exc1}"
        bands, scales = self.cutouts.bands, self.cutouts.band_flux_scales
        for obj_id, pix in pixels.items():
            try:
                url = render_png(cutout_rgb(pix, view=view, stretch=stretch, bands=bands, band_scales=scales))
            except Exception as exc:
                errors[obj_id] = f"could not render this cutout: {exc}"
                continue
            self._put((obj_id, view, skey), url)
            images[obj_id] = url
        return images, errors


def score_histogram_png(scores, *, labels=None, threshold=None, width=3.2, height=1.6, dpi=100):
    """A histogram of scores as a PNG data URL, with labelled objects and the threshold marked.

    Rendered with matplotlib's Agg backend on a `~matplotlib.figure.Figure`
    (no pyplot state).

    Parameters
    ----------
    scores : array-like
        (N,) scores (NaN ignored).
    labels : array-like, optional
        (N,) 1 anomaly, 0 normal, -1 unlabelled: labelled objects are drawn as ticks
        under the histogram (red anomalies, blue normals).
    threshold : float, optional
        Drawn as a dashed vertical line (the uncertainty strategy's boundary).
    width, height, dpi : float, optional
        Figure size in inches and resolution.

    Returns
    -------
    str
        PNG data URL.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro.ui import score_histogram_png
    >>> url = score_histogram_png(np.linspace(0, 1, 50), labels=[1] + [-1] * 48 + [0], threshold=0.5)
    >>> url.startswith("data:image/png;base64,")
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(s)
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.14, 0.28, 0.83, 0.66))
    if ok.any():
        lo, hi = float(s[ok].min()), float(s[ok].max())
        if hi <= lo:
            hi = lo + 1e-6
        ax.hist(s[ok], bins=40, range=(lo, hi), color="0.6")
        if labels is not None:
            y = np.asarray(labels)
            for value, colour in ((1, "#d62728"), (0, "#1f77b4")):
                sel = ok & (y == value)
                if sel.any():  # ticks along the bottom edge, in axes coordinates
                    ax.plot(
                        s[sel],
                        np.full(int(sel.sum()), 0.04),
                        "|",
                        color=colour,
                        ms=9,
                        mew=1.5,
                        transform=ax.get_xaxis_transform(),
                    )
        if threshold is not None and np.isfinite(threshold):
            ax.axvline(float(threshold), color="k", ls="--", lw=1)
    else:
        ax.text(0.5, 0.5, "no scores yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("score", fontsize=8)
    ax.set_ylabel("objects", fontsize=8)
    ax.tick_params(labelsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
