"""Centre views (``zoom``): embeddings of the central part of every cutout beside those of the full cutout."""

import numpy as np
import pytest

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.embeddings import center_crop, check_zoom, compute_embeddings, embedding_key
from anomalymatch_astro.utils.exceptions import InvalidInputError


class Flat:
    model_hash = "flat"

    def embed(self, cutouts, *, batch_size=256):
        return cutouts.data.reshape(len(cutouts), -1).astype(np.float32)


@pytest.fixture
def cutouts():
    rng = np.random.default_rng(0)
    return CutoutSet.from_arrays(rng.normal(size=(9, 2, 8, 8)).astype("f4"), bands=["g", "r"])


def test_center_crop_is_the_central_pixels(cutouts):
    half = center_crop(cutouts, 0.5)
    assert half.image_shape == (4, 4) and list(half.ids) == list(cutouts.ids) and half.bands == cutouts.bands
    np.testing.assert_array_equal(half.data, cutouts.data[:, :, 2:6, 2:6])
    np.testing.assert_array_equal(center_crop(cutouts, 0.375).data, cutouts.data[:, :, 2:5, 2:5])


def test_zoom_embeddings_are_the_views_side_by_side(tmp_path, cutouts):
    cache = tmp_path / "c.h5"
    got = compute_embeddings(cutouts, Flat(), zoom=(0.5,), cache_path=cache, progress=False)
    want = np.concatenate([cutouts.data.reshape(9, -1), cutouts.data[:, :, 2:6, 2:6].reshape(9, -1)], axis=1)
    np.testing.assert_array_equal(got, want)
    rot = compute_embeddings(cutouts, Flat(), zoom=(0.5,), rotation_average=True, progress=False)
    from anomalymatch_astro.embeddings import rotation_averaged

    want = np.concatenate(
        [rotation_averaged(cutouts, Flat()), rotation_averaged(center_crop(cutouts, 0.5), Flat())], axis=1
    )
    np.testing.assert_allclose(rot, want, rtol=1e-6)
    # the views are part of the key; keys without zoom are those of before (old caches stay valid)
    key = embedding_key(cutouts, Flat(), zoom=(0.5,))
    assert key["zoom"] == [0.5] and "zoom" not in embedding_key(cutouts, Flat())
    assert embedding_key(cutouts, Flat(), zoom=()) == embedding_key(cutouts, Flat())
    np.testing.assert_array_equal(
        compute_embeddings(cutouts, Flat(), cache_path=cache, progress=False), cutouts.data.reshape(9, -1)
    )


@pytest.mark.parametrize("bad", [0.5, (0.0,), (1.0,), ("x",), (-0.5,)])
def test_bad_zoom_is_refused(cutouts, bad):
    with pytest.raises(InvalidInputError, match="crop fractions in"):
        check_zoom(bad)
    with pytest.raises(InvalidInputError, match="crop fractions in"):
        compute_embeddings(cutouts, Flat(), zoom=bad, progress=False)
