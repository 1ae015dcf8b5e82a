"""Galleries of cutouts as colour composites: the picture people look at first."""

import numpy as np
from matplotlib.figure import Figure

from ..normalization import make_rgb
from ..utils.exceptions import InvalidInputError

__all__ = ["plot_gallery"]


def plot_gallery(
    cutouts, *, ids=None, scores=None, labels=None, ncols=8, method="lupton", title=None, tile_size=1.6, max_tiles=64
):
    """A grid of colour composites, one tile per cutout, annotated with id, score and label.

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet`
        The cutouts to show (in order).
    ids : sequence of str, optional
        Show only these ids (in this order).
    scores : array-like, optional
        One score per shown cutout, printed on the tile.
    labels : dict or sequence, optional
        ``{id: text}`` or one text per shown cutout (e.g. the kind of anomaly), printed on the tile.
    ncols : int, optional
        Tiles per row.
    method : {"lupton", "normalized"}, optional
        Colour composite (see `~anomalymatch_astro.normalization.make_rgb`).
    title : str, optional
        Figure title.
    tile_size : float, optional
        Inches per tile.
    max_tiles : int, optional
        At most this many tiles are drawn.

    Returns
    -------
    `matplotlib.figure.Figure`
        Save it with ``fig.savefig("gallery.png")``.
    """
    if ids is not None:
        cutouts = cutouts[list(ids)]
    n = min(len(cutouts), max_tiles)
    if n == 0:
        msg = "no cutouts to show"
        raise InvalidInputError(msg)
    if scores is not None and len(scores) < n:
        msg = f"{len(scores)} scores for {n} tiles"
        raise InvalidInputError(msg)
    shown = cutouts[np.arange(n)]
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(tile_size * ncols, tile_size * nrows + (0.4 if title else 0)))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    pixels = shown.data
    obj_ids = shown.ids
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k >= n:
            continue
        ax.imshow(make_rgb(pixels[k], method=method), origin="lower", interpolation="nearest")
        text = str(obj_ids[k])
        if scores is not None:
            text += f"\n{float(scores[k]):.3f}"
        if labels is not None:
            lab = labels.get(str(obj_ids[k]), "") if isinstance(labels, dict) else labels[k]
            if lab:
                text += f" {lab}"
        ax.text(
            0.03,
            0.97,
            text,
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=6.5,
            color="white",
            bbox={"facecolor": "black", "alpha": 0.45, "pad": 1.0, "linewidth": 0},
        )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99 if not title else 0.93, wspace=0.04, hspace=0.04)
    return fig
