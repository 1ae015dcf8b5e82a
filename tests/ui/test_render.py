import base64
import io
import time

import numpy as np
import pytest

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.ui import TileRenderer, cutout_rgb, render_png, score_histogram_png
from anomalymatch_astro.utils.exceptions import InvalidInputError


def _decode(url):
    from PIL import Image

    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_render_png_roundtrip():
    img = np.linspace(0, 1, 16 * 16 * 3).reshape(16, 16, 3)
    back = _decode(render_png(img))
    assert back.shape == (16, 16, 3)
    assert back[0, 0, 0] == 0 and back[-1, -1, -1] == 255
    grey = _decode(render_png(np.full((5, 7), np.nan)))
    assert grey.shape == (5, 7) and grey.max() == 0
    with pytest.raises(InvalidInputError, match="image"):
        render_png(np.zeros((4, 4, 2)))


def test_views():
    rng = np.random.default_rng(1)
    cut = rng.normal(size=(3, 16, 16)).astype(np.float32)
    cut[2, 8, 8] = 100.0  # bright in the reddest band only
    lup = cutout_rgb(cut, view="lupton")
    col = cutout_rgb(cut, view="colour", stretch="linear")
    band = cutout_rgb(cut, view="band:i", bands=["g", "r", "i"])
    assert lup.shape == col.shape == (16, 16, 3)
    assert band.shape == (16, 16)
    # the reddest band goes to red
    assert col[8, 8, 0] == pytest.approx(1.0) and col[8, 8, 2] < 1.0
    assert band[8, 8] == pytest.approx(1.0)
    # stretches differ
    assert not np.allclose(cutout_rgb(cut, view="colour", stretch="asinh"), col)
    with pytest.raises(InvalidInputError, match="unknown band"):
        cutout_rgb(cut, view="band:z", bands=["g", "r", "i"])
    with pytest.raises(InvalidInputError, match="view"):
        cutout_rgb(cut, view="false-colour")
    with pytest.raises(InvalidInputError, match="stretch"):
        cutout_rgb(cut, view="colour", stretch="cubic")


def test_renderer_cache_and_bad_cutout():
    cs = CutoutSet.from_arrays(np.random.default_rng(0).normal(size=(6, 2, 16, 16)), bands=["g", "r"])
    r = TileRenderer(cs, max_items=3)
    assert r.views == ["lupton", "colour", "band:g", "band:r"]
    images, errors = r.render(["obj0", "obj1"])
    assert set(images) == {"obj0", "obj1"} and errors == {}
    assert (r.hits, r.misses) == (0, 2)
    again, _ = r.render(["obj0", "obj1"])
    assert again == images and r.hits == 2
    # the lupton view ignores the stretch, so it shares the cache entry
    r.render(["obj0"], stretch="log")
    assert r.hits == 3
    r.render(["obj2", "obj3"])  # evicts the oldest entries (max_items=3)
    assert len(r._cache) == 3
    # one unknown id does not blank the others
    images, errors = r.render(["obj4", "nope"], view="band:r")
    assert set(images) == {"obj4"} and set(errors) == {"nope"}
    assert "could not read" in errors["nope"]
    with pytest.raises(InvalidInputError, match="view"):
        r.render(["obj0"], view="band:z")


def test_histogram():
    s = np.r_[np.linspace(0, 1, 100), np.nan]
    lab = np.full(101, -1)
    lab[[0, 99]] = [0, 1]
    png = _decode(score_histogram_png(s, labels=lab, threshold=0.5))
    assert png.ndim == 3 and png.shape[0] > 50
    empty = _decode(score_histogram_png(np.full(5, np.nan)))
    assert empty.shape == png.shape


@pytest.mark.parametrize("size", [64, 128])
def test_page_render_time_measured(size, record_property):
    """Measured, not asserted: one page of 24 candidates, cold and cached."""
    rng = np.random.default_rng(2)
    cs = CutoutSet.from_arrays(rng.normal(size=(24, 3, size, size)), bands=["g", "r", "i"])
    r = TileRenderer(cs)
    ids = list(cs.ids)
    t0 = time.perf_counter()
    images, errors = r.render(ids, view="lupton")
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    r.render(ids, view="lupton")
    cached = time.perf_counter() - t0
    assert len(images) == 24 and not errors
    record_property(f"page24_{size}px_cold_s", round(cold, 4))
    record_property(f"page24_{size}px_cached_s", round(cached, 5))
    print(f"24 tiles {size}px lupton: cold {cold * 1000:.0f} ms, cached {cached * 1000:.2f} ms")


@pytest.mark.parametrize("n_bands", [1, 2, 3])
def test_colour_view_is_the_one_rgb_code(n_bands):
    """The "colour" view is normalization.make_rgb(method="normalized"): one RGB code for the package."""
    from anomalymatch_astro.normalization import STRETCHES, Normalizer, make_rgb

    cut = np.random.default_rng(n_bands).lognormal(size=(n_bands, 16, 16)).astype(np.float32)
    for stretch in STRETCHES:
        norm = Normalizer(stretch=stretch, interval="percentile", percentile=99.5)
        col = cutout_rgb(cut, view="colour", stretch=stretch)
        np.testing.assert_array_equal(col, make_rgb(cut, method="normalized", normalizer=norm))
        planes = norm(cut)
        np.testing.assert_array_equal(col[..., 0], planes[-1])  # reddest band -> red
        np.testing.assert_array_equal(col[..., 2], planes[0])  # bluest band -> blue
