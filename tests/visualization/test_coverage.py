import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from anomalymatch_astro.utils.exceptions import InvalidInputError
from anomalymatch_astro.visualization import plot_coverage

mocpy = pytest.importorskip("mocpy")
from astropy.visualization.wcsaxes import WCSAxes  # noqa: E402

DONE_C, FAILED_C = SkyCoord(150.10, 2.20, unit="deg"), SkyCoord(150.26, 2.20, unit="deg")


def _cone(c, r_deg, depth=13):
    return mocpy.MOC.from_cone(c.ra, c.dec, radius=r_deg * u.deg, max_depth=depth)


@pytest.fixture
def states():
    return {"done": _cone(DONE_C, 0.1), "failed": _cone(FAILED_C, 0.05), "no data": mocpy.MOC.new_empty(13)}


def _legend(fig):
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_states_on_fitted_wcs(states, tmp_path):
    fig = plot_coverage(states)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert isinstance(ax, WCSAxes)
    assert list(ax.wcs.wcs.ctype) == ["RA---TAN", "DEC--TAN"]
    legend = _legend(fig)
    assert len(legend) == 3
    assert legend[0].startswith("done (") and legend[1].startswith("failed (") and legend[2] == "no data (empty)"
    area = float(legend[0].split("(")[1].split(" deg")[0])
    assert area == pytest.approx(np.pi * 0.1**2, rel=0.1)  # the cone's area, to the HEALPix cells
    # a fill and a border per non-empty MOC, in the state colours
    fills = [p for p in ax.patches if p.get_fill()]
    assert len(fills) == 2
    assert to_rgba(fills[0].get_facecolor())[:3] == pytest.approx(to_rgba("tab:green")[:3])
    assert to_rgba(fills[1].get_facecolor())[:3] == pytest.approx(to_rgba("tab:red")[:3])
    # the fills lie where the MOCs are: each cone's centre is inside its own fill only
    done_xy = ax.wcs.world_to_pixel(DONE_C)
    failed_xy = ax.wcs.world_to_pixel(FAILED_C)
    assert fills[0].get_path().contains_point(done_xy) and not fills[0].get_path().contains_point(failed_xy)
    assert fills[1].get_path().contains_point(failed_xy) and not fills[1].get_path().contains_point(done_xy)
    # both cones are in view
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    for x, y in (done_xy, failed_xy):
        assert x0 < x < x1 and y0 < y < y1
    path = tmp_path / "coverage.png"
    fig.savefig(path, dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 3000


def test_empty_and_overlay(tmp_path):
    fig = plot_coverage(mocpy.MOC.new_empty(10))  # nothing to fit: the whole sky
    assert isinstance(fig.axes[0], WCSAxes) and fig.axes[0].wcs.wcs.ctype[0] == "RA---AIT"
    assert _legend(fig) == ["coverage (empty)"] and not fig.axes[0].patches
    fig.savefig(tmp_path / "empty.png", dpi=40)
    # galactic frame, custom labels and colours, a second call on the same axes
    fig = plot_coverage([_cone(DONE_C, 0.1, 10)], frame="galactic", labels=["field"], colors=["k"])
    assert fig.axes[0].wcs.wcs.ctype[0].startswith("GLON")
    again = plot_coverage({"more": _cone(FAILED_C, 0.05, 10)}, ax=fig.axes[0], colors={"more": "m"})
    assert again is fig and len(fig.axes) == 1
    assert _legend(fig)[0].startswith("more (")
    assert len([p for p in fig.axes[0].patches if p.get_fill()]) == 2
    fig.savefig(tmp_path / "overlay.png", dpi=40)


def test_outline_is_a_dashed_border_in_the_view(states):
    region = _cone(SkyCoord(150.18, 2.20, unit="deg"), 0.3)  # larger than the states
    fig = plot_coverage(states, outline=region)
    ax = fig.axes[0]
    legend = _legend(fig)
    assert legend[-1].startswith("requested region (") and len(legend) == 4
    assert float(legend[-1].split("(")[1].split(" deg")[0]) == pytest.approx(np.pi * 0.3**2, rel=0.1)
    borders = [p for p in ax.patches if not p.get_fill() and p.get_linestyle() == "--"]
    assert len(borders) >= 1 and to_rgba(borders[0].get_edgecolor())[:3] == (0.0, 0.0, 0.0)
    # the view was fitted to the outline too: a point of the region beyond the states is in view
    x, y = ax.wcs.world_to_pixel(SkyCoord(150.18, 2.45, unit="deg"))
    assert ax.get_xlim()[0] < x < ax.get_xlim()[1] and ax.get_ylim()[0] < y < ax.get_ylim()[1]
    named = plot_coverage(states, outline=mocpy.MOC.new_empty(10), outline_label="asked")
    assert _legend(named)[-1] == "asked (empty)"
    with pytest.raises(InvalidInputError, match="outline must be a mocpy MOC"):
        plot_coverage(states, outline="region")


def test_errors(states):
    with pytest.raises(InvalidInputError, match="mocpy MOC"):
        plot_coverage({"done": "not a moc"})
    with pytest.raises(InvalidInputError, match="mocs must be"):
        plot_coverage(42)
    with pytest.raises(InvalidInputError, match="at least one"):
        plot_coverage({})
    with pytest.raises(InvalidInputError, match="one label per MOC"):
        plot_coverage(states, labels=["a"])
    with pytest.raises(InvalidInputError, match="one colour per MOC"):
        plot_coverage(states, colors=["r", "g"])
    with pytest.raises(InvalidInputError, match="no colour for"):
        plot_coverage(states, colors={"done": "g"})
    with pytest.raises(InvalidInputError, match="frame"):
        plot_coverage(states, frame="fk4")
    with pytest.raises(InvalidInputError, match="WCSAxes"):
        plot_coverage(states, ax=Figure().subplots())
