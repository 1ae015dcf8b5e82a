"""Galleries of cutouts as colour composites: the picture people look at first.

A gallery shows one tile per system (fragments of one object, close neighbours) when
it knows the systems: from ``systems=`` (e.g. a session's
`~anomalymatch_astro.active_learning.ActiveLearningSession.systems`) or from the
cutouts' ``system`` column (`~anomalymatch_astro.catalogs.group_systems` writes one).
"""

import numpy as np
from matplotlib.figure import Figure

from ..normalization import make_rgb
from ..utils.exceptions import InvalidInputError

__all__ = ["plot_gallery"]


def _system_ids(cutouts, systems, n):
    """One system id per shown cutout, or None (no grouping)."""
    if systems is None:
        if "system" not in cutouts.table.colnames:
            return None
        systems = cutouts.table["system"]
    if isinstance(systems, dict):
        systems = [systems.get(str(i), f"own:{i}") for i in cutouts.ids]
    systems = np.asarray(systems)
    if systems.shape != (n,):
        msg = f"systems must hold one system id per shown cutout ({n}), got shape {systems.shape}"
        raise InvalidInputError(msg)
    return systems


def _group_tiles(cutouts, scores, labels, systems, members, group):
    """Keep the first tile of each system; the count of the others goes to the caption."""
    n = len(cutouts)
    systems = _system_ids(cutouts, systems, n) if group else None
    keep = np.arange(n)
    extra = np.zeros(n, dtype=np.int64)
    if systems is not None:
        _, first, inverse = np.unique(systems.astype(str), return_index=True, return_inverse=True)
        keep = np.sort(first)
        extra = np.bincount(inverse.reshape(-1))[inverse.reshape(-1)] - 1
    if members is not None:
        if isinstance(members, dict):
            members = [members.get(str(i), 0) for i in cutouts.ids]
        if len(members) != n:
            msg = f"{len(members)} member counts for {n} cutouts"
            raise InvalidInputError(msg)
        extra = np.array([m if np.isscalar(m) else len(m) for m in members], dtype=np.int64)
    if scores is not None:
        scores = np.asarray(scores)[keep]
    if labels is not None and not isinstance(labels, dict):
        labels = [labels[k] for k in keep]
    return cutouts[keep], scores, labels, extra[keep]


def plot_gallery(
    cutouts,
    *,
    ids=None,
    scores=None,
    labels=None,
    ncols=8,
    method="lupton",
    title=None,
    tile_size=1.6,
    max_tiles=64,
    systems=None,
    members=None,
    group=True,
):
    """A grid of colour composites, one tile per system, annotated with id, score and label.

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
        Colour composite (see `~anomalymatch_astro.normalization.make_rgb`), with the
        cutouts' per-band flux scales (`~anomalymatch_astro.CutoutSet.band_flux_scales`,
        from the images' zero points) when known.
    title : str, optional
        Figure title.
    tile_size : float, optional
        Inches per tile.
    max_tiles : int, optional
        At most this many tiles are drawn.
    systems : array-like or dict, optional
        The system of each shown cutout (one per shown cutout, in order, or ``{id: system}``),
        e.g. ``session.systems[rows]``.  Only the first cutout of each system gets a tile
        (with its score and label), captioned with the number of others ("+2").  Default:
        the cutouts' ``system`` column when they have one, else one tile per cutout.
    members : dict or sequence, optional
        The number (or list) of other members of each shown cutout's system, for the
        caption (``{id: n}`` or one per shown cutout), e.g. a grouped candidate table's
        ``n_members``; overrides the count from ``systems``.
    group : bool, optional
        ``False``: one tile per cutout, whatever the systems.

    Returns
    -------
    `matplotlib.figure.Figure`
        Save it with ``fig.savefig("gallery.png")``.
    """
    if ids is not None:
        cutouts = cutouts[list(ids)]
    if len(cutouts) == 0:
        msg = "no cutouts to show"
        raise InvalidInputError(msg)
    if scores is not None and len(scores) < min(len(cutouts), max_tiles):
        msg = f"{len(scores)} scores for {min(len(cutouts), max_tiles)} tiles"
        raise InvalidInputError(msg)
    shorter = [len(x) for x in (scores, labels) if x is not None and not isinstance(x, dict)]
    if shorter and min(shorter) < len(cutouts):  # only the annotated cutouts can be shown
        cutouts = cutouts[np.arange(min(shorter))]
    if scores is not None:
        scores = np.asarray(scores)[: len(cutouts)]
    cutouts, scores, labels, extra = _group_tiles(cutouts, scores, labels, systems, members, group)
    n = min(len(cutouts), max_tiles)
    shown = cutouts[np.arange(n)]
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(tile_size * ncols, tile_size * nrows + (0.4 if title else 0)))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    pixels = shown.data
    obj_ids = shown.ids
    scales = shown.band_flux_scales
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k >= n:
            continue
        ax.imshow(make_rgb(pixels[k], method=method, band_scales=scales), origin="lower", interpolation="nearest")
        text = str(obj_ids[k]) + (f" (+{int(extra[k])})" if extra[k] else "")
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
