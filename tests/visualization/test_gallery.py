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
