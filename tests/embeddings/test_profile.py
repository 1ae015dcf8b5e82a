"""Residual profile features: the faint structure a smooth galaxy at the centre does not explain."""

import numpy as np
import pytest

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.embeddings import (
    PROFILE_STATISTICS,
    compute_embeddings,
    embedding_key,
    profile_features,
    profile_width,
)
from anomalymatch_astro.utils.exceptions import InvalidInputError

SIDE = 48


def _galaxy(rng, *, q=0.6, angle=0.5, arc=0.0, arc_radius=11.0, noise=1.0):
    """An elliptical exponential galaxy on noise, optionally with a faint arc on one side."""
    yy, xx = np.mgrid[:SIDE, :SIDE] - (SIDE - 1) / 2
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    image = 80 * np.exp(-np.hypot(u, v / q) / 2.5)
    r, phi = np.hypot(xx, yy), np.arctan2(yy, xx)
    image += arc * np.exp(-0.5 * ((r - arc_radius) / 1.2) ** 2) * np.exp(-0.5 * (phi / 0.6) ** 2)
    return image + rng.normal(scale=noise, size=image.shape)


def _stats(features, n_bands, n_annuli):
    return features.reshape(len(features), n_bands, n_annuli, len(PROFILE_STATISTICS))


def test_an_arc_raises_the_excess_in_its_annulus_only():
    plain = _galaxy(np.random.default_rng(1))
    arc = _galaxy(np.random.default_rng(1), arc=3.0)  # the same noise, plus an arc of 3 sigma at r = 11 px
    f = _stats(profile_features(np.stack([[plain], [arc]]).astype("f4"), n_annuli=9, max_radius=0.375), 1, 9)
    assert f.shape == (2, 1, 9, 4)  # annuli 2 px wide along the major axis
    mean, p90 = (f[:, 0, :, PROFILE_STATISTICS.index(k)] for k in ("mean_excess", "p90_excess"))
    # the arc lies at elliptical radii of 11 to 18 px (the ellipse is narrower across): annuli 5 to 8
    assert np.all(mean[1, 5:8] > mean[0, 5:8] + 0.05) and np.all(p90[1, 5:8] > p90[0, 5:8] + 0.15)
    median = f[:, 0, :, PROFILE_STATISTICS.index("median")]
    np.testing.assert_allclose(median[1, :3], median[0, :3], atol=0.1)  # inside it, the same smooth profile
    assert np.all(np.diff(median[0, :6]) < 0)  # the smooth profile falls outwards


def test_features_follow_the_galaxy_not_the_grid():
    """Elliptical annuli from the central source's moments: a rotated cutout gives the same features."""
    rng = np.random.default_rng(2)
    cut = np.stack([[_galaxy(rng, q=0.4, angle=0.3, arc=4.0)]]).astype("f4")
    turned = np.rot90(cut, k=1, axes=(2, 3)).copy()
    np.testing.assert_allclose(profile_features(turned), profile_features(cut), atol=1e-4)


def test_each_cutout_is_measured_alone_and_nan_pixels_are_sky():
    rng = np.random.default_rng(3)
    cut = np.stack([[_galaxy(rng), _galaxy(rng, arc=2.0)] for _ in range(5)]).astype("f4")
    whole = profile_features(cut)
    assert whole.shape == (5, profile_width(2)) and whole.dtype == np.float32
    np.testing.assert_array_equal(profile_features(cut[3:4]), whole[3:4])
    np.testing.assert_array_equal(profile_features(cut, batch_size=2), whole)
    holed = cut.copy()
    holed[0, 0, :10, :10] = np.nan  # a corner off the image
    holed[1, 1] = np.nan  # a band missing altogether
    got = profile_features(holed)
    assert np.all(np.isfinite(got))
    np.testing.assert_array_equal(got[2:], whole[2:])
    assert np.all(_stats(got, 2, 16)[1, 1] == 0)  # nothing measured in the missing band
    cs = CutoutSet.from_arrays(cut, bands=["g", "r"])
    np.testing.assert_array_equal(profile_features(cs), whole)


def test_a_lazy_set_is_read_batch_by_batch(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    cut = np.stack([[_galaxy(rng, arc=2.0 * (i % 2))] for i in range(7)]).astype("f4")
    CutoutSet.from_arrays(cut, bands=["r"]).to_hdf5(tmp_path / "c.h5")
    lazy = CutoutSet.from_hdf5(tmp_path / "c.h5", lazy=True)

    def read_all(self):
        msg = "the whole set was read at once"
        raise AssertionError(msg)

    monkeypatch.setattr(CutoutSet, "data", property(read_all))
    np.testing.assert_array_equal(profile_features(lazy, batch_size=3), profile_features(cut))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_annuli": 0}, "n_annuli"), ({"max_radius": 0.9}, "max_radius"), ({"smooth": -1}, "smooth")],
)
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        profile_features(np.zeros((1, 1, 16, 16)), **kwargs)
    with pytest.raises(InvalidInputError, match=r"\(N, C, H, W\)"):
        profile_features(np.zeros((16, 16)))


class Flat:
    model_hash = "flat"

    def embed(self, cutouts, *, batch_size=256):
        return cutouts.data.reshape(len(cutouts), -1).astype(np.float32)


def test_compute_embeddings_appends_the_profile_as_the_last_block(tmp_path):
    rng = np.random.default_rng(4)
    cs = CutoutSet.from_arrays(rng.normal(size=(6, 2, 16, 16)).astype("f4"), bands=["g", "r"])
    cache = tmp_path / "c.h5"
    got = compute_embeddings(cs, Flat(), profile=True, zoom=(0.5,), cache_path=cache, progress=False)
    views = compute_embeddings(cs, Flat(), zoom=(0.5,), cache_path=cache, progress=False)
    np.testing.assert_array_equal(got, np.concatenate([views, profile_features(cs)], axis=1))
    rotated = compute_embeddings(cs, Flat(), profile=True, rotation_average=True, progress=False)
    assert rotated.shape[1] == 2 * 16 * 16 + profile_width(2)
    np.testing.assert_array_equal(rotated[:, -profile_width(2) :], profile_features(cs))
    key = embedding_key(cs, Flat(), profile=True)
    assert key["profile"] is True and "profile" not in embedding_key(cs, Flat())  # old keys stay valid
