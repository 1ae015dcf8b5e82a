import numpy as np
import pytest

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.utils.exceptions import InvalidInputError
from anomalymatch_astro.visualization import plot_gallery


def test_gallery_png(tmp_path):
    rng = np.random.default_rng(0)
    cs = CutoutSet.from_arrays(rng.normal(size=(10, 3, 16, 16)), bands=["g", "r", "i"])
    fig = plot_gallery(
        cs, ids=["obj3", "obj1", "obj7"], scores=[0.9, 0.5, 0.1], labels={"obj3": "lens"}, ncols=2, title="top"
    )
    assert len([ax for ax in fig.axes if ax.images]) == 3
    fig.savefig(tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 1000
    with pytest.raises(InvalidInputError, match="no cutouts to show"):
        plot_gallery(cs[np.zeros(10, bool)])


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_gallery_one_tile_per_system():
    rng = np.random.default_rng(0)
    cs = CutoutSet.from_arrays(rng.normal(size=(6, 1, 8, 8)))
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    fig = plot_gallery(cs, scores=scores, systems=[0, 0, 1, 2, 2, 2])
    assert len([ax for ax in fig.axes if ax.images]) == 3
    texts = _texts(fig)
    assert texts[0].startswith("obj0 (+1)") and "0.900" in texts[0]
    assert texts[1].startswith("obj2\n") and texts[2].startswith("obj3 (+2)") and "0.600" in texts[2]
    # without grouping: every cutout
    assert len([ax for ax in plot_gallery(cs, systems=[0, 0, 1, 2, 2, 2], group=False).axes if ax.images]) == 6
    # the cutouts' own system column is used by default
    cs.table["system"] = [5, 5, 5, 6, 7, 7]
    fig = plot_gallery(cs, labels=["a", "b", "c", "d", "e", "f"])
    assert [t.split("\n")[0] for t in _texts(fig)] == ["obj0 (+2) a", "obj3 d", "obj4 (+1) e"]
    # member counts of a grouped candidate table
    fig = plot_gallery(cs, ids=["obj1", "obj4"], members={"obj1": 3}, group=False)
    assert _texts(fig) == ["obj1 (+3)", "obj4"]
    with pytest.raises(InvalidInputError, match="one system id per shown cutout"):
        plot_gallery(cs, systems=[0, 1])
