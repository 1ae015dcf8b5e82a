"""Sky coverage plots: one or several MOCs (mocpy) on astropy WCSAxes, e.g. the state of a mining run."""

import warnings

import numpy as np

from ..utils import require
from ..utils.exceptions import InvalidInputError

__all__ = ["plot_coverage"]

#: square degrees of the whole sky
FULL_SKY_DEG2 = 4 * np.pi * (180 / np.pi) ** 2
#: colours of the usual state names (any other name takes the next colour of the cycle)
STATE_COLORS = {
    "done": "tab:green",
    "ok": "tab:green",
    "finished": "tab:green",
    "failed": "tab:red",
    "error": "tab:red",
    "errors": "tab:red",
    "no data": "tab:gray",
    "no_data": "tab:gray",
    "empty": "tab:gray",
    "pending": "tab:orange",
    "todo": "tab:orange",
    "running": "tab:blue",
}
_CYCLE = ("tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:green")


def _as_items(mocs, labels):
    """``[(label, moc)]`` from a MOC, a mapping {label: MOC} or a sequence of MOCs."""
    from mocpy import MOC

    if isinstance(mocs, MOC):
        items = [("coverage", mocs)]
    elif isinstance(mocs, dict):
        items = [(str(k), v) for k, v in mocs.items()]
    elif isinstance(mocs, (list, tuple)):
        items = [(f"MOC {k + 1}", v) for k, v in enumerate(mocs)]
    else:
        msg = f"mocs must be a mocpy MOC, a dict {{label: MOC}} or a list of MOCs, got {type(mocs).__name__}"
        raise InvalidInputError(msg)
    if not items:
        msg = "mocs is empty: give at least one MOC to plot"
        raise InvalidInputError(msg)
    for label, moc in items:
        if not isinstance(moc, MOC):
            msg = f"{label!r} is a {type(moc).__name__}, not a mocpy MOC (make one with mocpy.MOC.from_...)"
            raise InvalidInputError(msg)
    if labels is not None:
        labels = [labels] if isinstance(labels, str) else list(labels)
        if len(labels) != len(items):
            msg = f"labels must give one label per MOC: {len(labels)} labels for {len(items)} MOCs"
            raise InvalidInputError(msg)
        items = [(str(lab), moc) for lab, (_, moc) in zip(labels, items)]
    return items


def _colors(items, colors):
    if colors is None:
        free = iter(c for c in _CYCLE * (1 + len(items) // len(_CYCLE)))
        return [STATE_COLORS.get(label.lower()) or next(free) for label, _ in items]
    if isinstance(colors, dict):
        missing = [label for label, _ in items if label not in colors]
        if missing:
            msg = f"colors has no colour for {missing}; give one per label"
            raise InvalidInputError(msg)
        return [colors[label] for label, _ in items]
    colors = [colors] if isinstance(colors, str) else list(colors)
    if len(colors) != len(items):
        msg = f"colors must give one colour per MOC: {len(colors)} colours for {len(items)} MOCs"
        raise InvalidInputError(msg)
    return colors


def _all_sky(union):
    """Whether to draw the whole sky (nothing to fit, or more than a quarter of it covered)."""
    return union.empty() or union.sky_fraction > 0.25


def _fitted_wcs(fig, union, coordsys):
    """A mocpy WCS centred on the union of the MOCs (TAN for small fields, Aitoff beyond 30 deg)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from mocpy import WCS

    if _all_sky(union):
        # an Aitoff sky is about 324 x 162 "deg" across: 190 deg over the height of a 9 x 5 inch figure fits
        center = SkyCoord(0, 0, unit="deg", frame="galactic" if coordsys == "galactic" else "icrs")
        return WCS(fig, fov=190 * u.deg, center=center, coordsys=coordsys, projection="AIT").w
    center = union.barycenter()
    fov = 2 * union.largest_distance_from_coo_to_vertices(center).to(u.deg) * 1.15
    projection = "TAN" if fov < 30 * u.deg else "AIT"
    return WCS(fig, fov=min(fov, 190 * u.deg), center=center, coordsys=coordsys, projection=projection).w


def _legend_text(label, moc):
    """``label (area deg²)`` of a non-empty MOC."""
    area = moc.sky_fraction * FULL_SKY_DEG2
    return f"{label} ({area:,.0f} deg²)" if area >= 100 else f"{label} ({area:.3g} deg²)"


def plot_coverage(
    mocs, *, ax=None, colors=None, labels=None, frame=None, outline=None, outline_label="requested region"
):
    """Draw the sky coverage of one or several MOCs, e.g. the cells a mining run has done or not.

    Each MOC is filled (half transparent) and outlined in its colour on astropy
    `~astropy.visualization.wcsaxes.WCSAxes` with an RA/Dec (or l/b) grid; the legend gives
    each MOC's label and sky area.  A new figure gets a WCS fitted to the union of the MOCs
    (gnomonic below 30 deg across, Aitoff above; the whole sky when every MOC is empty).
    Empty MOCs are drawn as nothing but keep their legend entry, marked "empty".  An
    ``outline`` MOC (e.g. the region a mining run was asked to cover) is drawn as a dashed
    black border only, on top, and is part of the fitted view.

    Parameters
    ----------
    mocs : `mocpy.MOC`, dict of str to `mocpy.MOC`, or sequence of `mocpy.MOC`
        What to draw, e.g. ``{"done": done, "failed": failed, "no data": no_data}``; drawn in
        this order.
    ax : `~astropy.visualization.wcsaxes.WCSAxes`, optional
        Axes to draw on (e.g. from an earlier call), whose WCS has its reference pixel at the
        centre of the view (as mocpy's WCS helper makes them); default a new figure.
    colors : str, sequence of str or dict of str to str, optional
        Matplotlib colours, one per MOC (a dict is keyed by label); default green, red, grey
        and orange for the labels "done", "failed", "no data" and "pending" (and their usual
        synonyms), and matplotlib's tableau colours for the others.
    labels : sequence of str, optional
        Legend labels, one per MOC; default the dict keys, ``"coverage"`` for a single MOC,
        ``"MOC 1"``, ``"MOC 2"`` ... for a sequence.
    frame : {"icrs", "galactic"}, optional
        Sky frame of a new figure's WCS (default ``"icrs"``).
    outline : `mocpy.MOC`, optional
        A MOC drawn as a dashed border only (not filled), after the others.
    outline_label : str, optional
        Its legend label.

    Returns
    -------
    `~matplotlib.figure.Figure`
        The figure (``fig.savefig("coverage.png")`` writes it).

    Raises
    ------
    InvalidInputError
        ``mocs`` is not MOCs, the labels or colours do not match them, ``ax`` is not a
        WCSAxes, or ``frame`` is unknown.
    MissingDependencyError
        mocpy is not installed (``pip install 'anomalymatch_astro[mining]'``).

    Examples
    --------
    >>> from astropy import units as u
    >>> from mocpy import MOC
    >>> from anomalymatch_astro.visualization import plot_coverage
    >>> done = MOC.from_cone(150.1 * u.deg, 2.2 * u.deg, radius=0.1 * u.deg, max_depth=12)
    >>> failed = MOC.from_cone(150.25 * u.deg, 2.2 * u.deg, radius=0.05 * u.deg, max_depth=12)
    >>> fig = plot_coverage({"done": done, "failed": failed})
    >>> [t.get_text().split(" (")[0] for t in fig.axes[0].get_legend().get_texts()]
    ['done', 'failed']
    >>> region = MOC.from_cone(150.15 * u.deg, 2.2 * u.deg, radius=0.2 * u.deg, max_depth=12)
    >>> fig = plot_coverage({"done": done}, outline=region)
    >>> [t.get_text().split(" (")[0] for t in fig.axes[0].get_legend().get_texts()]
    ['done', 'requested region']
    """
    require("mocpy", feature="plotting sky coverage")
    from astropy.visualization.wcsaxes import WCSAxes
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from mocpy import MOC

    items = _as_items(mocs, labels)
    colors = _colors(items, colors)
    if outline is not None and not isinstance(outline, MOC):
        msg = f"outline must be a mocpy MOC, got {type(outline).__name__}"
        raise InvalidInputError(msg)
    coordsys = "icrs" if frame is None else str(frame).lower()
    if coordsys not in ("icrs", "galactic"):
        msg = f"frame must be 'icrs' or 'galactic', got {frame!r}"
        raise InvalidInputError(msg)
    if ax is None:
        every = [moc for _, moc in items] + ([outline] if outline is not None else [])
        union = every[0].union(*every[1:]) if len(every) > 1 else every[0]
        fig = Figure(figsize=(9.0, 5.0) if _all_sky(union) else (7.0, 6.0), layout="constrained")
        wcs = _fitted_wcs(fig, union, coordsys)
        ax = fig.add_subplot(projection=wcs)
    elif isinstance(ax, WCSAxes):
        fig, wcs = ax.figure, ax.wcs
    else:
        msg = f"ax must be astropy WCSAxes (e.g. from an earlier plot_coverage call), got {type(ax).__name__}"
        raise InvalidInputError(msg)
    handles = []
    for (label, moc), color in zip(items, colors):
        if moc.empty():
            text = f"{label} (empty)"
        else:
            with warnings.catch_warnings():  # mocpy resets the warning filters while it projects
                warnings.simplefilter("ignore")
                moc.fill(ax=ax, wcs=wcs, alpha=0.45, fill=True, color=color, linewidth=0)
                moc.border(ax=ax, wcs=wcs, fill=False, color=color, linewidth=1.0)
            text = _legend_text(label, moc)
        handles.append(Patch(facecolor=color, edgecolor=color, alpha=0.6, label=text))
    if outline is not None:
        text = f"{outline_label} (empty)"
        if not outline.empty():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outline.border(ax=ax, wcs=wcs, fill=False, color="black", linewidth=1.2, linestyle="--")
            text = _legend_text(outline_label, outline)
        handles.append(Patch(facecolor="none", edgecolor="black", linestyle="--", label=text))
    # the view is wcs's (mocpy sets it from the reference pixel); make sure it is set even if nothing was drawn
    ax.set_xlim(0, wcs.wcs.crpix[0] * 2.0 - 1)
    ax.set_ylim(0, wcs.wcs.crpix[1] * 2.0 - 1)
    lon, lat = ax.coords[0], ax.coords[1]
    galactic = wcs.wcs.ctype[0].startswith("GLON")
    lon.set_axislabel("Galactic longitude" if galactic else "RA (ICRS)")
    lat.set_axislabel("Galactic latitude" if galactic else "Dec (ICRS)")
    ax.coords.grid(True, color="0.6", linestyle="dotted", linewidth=0.6)
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.85)
    return fig
