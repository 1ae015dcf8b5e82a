import h5py
import numpy as np
import pytest

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.embeddings import EmbeddingCache, compute_embeddings, embedding_key
from anomalymatch_astro.utils.exceptions import InvalidInputError


class CountingEmbedder:
    def __init__(self, tag="a"):
        self.tag = tag
        self.calls = 0
        self.rows = 0

    @property
    def model_hash(self):
        return "hash-" + self.tag

    def embed(self, cutouts, *, batch_size=256):
        self.calls += 1
        self.rows += len(cutouts)
        x = cutouts.data.reshape(len(cutouts), -1)
        return np.stack([x.mean(1), x.std(1), x[:, 0] + (self.tag == "b")], axis=1)


@pytest.fixture
def cutouts():
    rng = np.random.default_rng(0)
    return CutoutSet.from_arrays(rng.normal(size=(20, 2, 6, 6)).astype("f4"), bands=["g", "r"])


def test_cache_reuse_and_invalidation(tmp_path, cutouts):
    path = tmp_path / "emb.h5"
    emb = CountingEmbedder()
    first = compute_embeddings(cutouts, emb, cache_path=path)
    assert emb.calls >= 1 and emb.rows == 20
    calls = emb.calls
    second = compute_embeddings(cutouts, emb, cache_path=path)
    assert emb.calls == calls  # read from the cache, not recomputed
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.float32 and second.shape == (20, 3)

    emb.tag = "b"  # the model changed: new hash -> recomputed, old entry kept
    third = compute_embeddings(cutouts, emb, cache_path=path)
    assert emb.calls > calls
    assert not np.array_equal(first, third)
    assert len(EmbeddingCache(path).keys()) == 2

    # other ids -> another key
    calls = emb.calls
    compute_embeddings(cutouts[:10], emb, cache_path=path)
    assert emb.calls > calls


def test_cache_default_path_beside_hdf5(tmp_path, cutouts):
    cutouts.to_hdf5(tmp_path / "cs.h5")
    lazy = CutoutSet.from_hdf5(tmp_path / "cs.h5")
    emb = CountingEmbedder()
    compute_embeddings(lazy, emb)
    assert (tmp_path / "cs.h5.embeddings.h5").exists()
    calls = emb.calls
    compute_embeddings(lazy, emb)
    assert emb.calls == calls


def test_key_contents(cutouts):
    key = embedding_key(cutouts, CountingEmbedder(), rotation_average=True)
    assert key["model_hash"] == "hash-a" and key["rotation_average"] is True and key["n"] == 20
    assert key != embedding_key(cutouts, CountingEmbedder(), rotation_average=False)

    class NoHash:
        def embed(self, cutouts, *, batch_size=256):
            return np.zeros((len(cutouts), 2))

    with pytest.raises(InvalidInputError, match="model_hash"):
        embedding_key(cutouts, NoHash())


def test_incomplete_entry_is_ignored(tmp_path, cutouts):
    path = tmp_path / "emb.h5"
    cache = EmbeddingCache(path)
    key = {"model_hash": "x"}
    cache.save(key, np.ones((3, 2)))
    with h5py.File(path, "a") as f:
        name = list(f["entries"])[0]
        f["entries"][name].attrs["complete"] = False
    assert cache.load(key) is None


def test_rotation_average_is_rotation_invariant(tmp_path, cutouts):
    class Asym(CountingEmbedder):
        def embed(self, cutouts, *, batch_size=256):
            self.calls += 1
            x = cutouts.data
            return np.stack([x[:, 0, 0, 0], x[:, 1, -1, 0], x[:, 0, 2, 3]], axis=1)

    rotated = CutoutSet.from_arrays(np.rot90(cutouts.data, 1, axes=(2, 3)).copy(), ids=cutouts.ids, bands=cutouts.bands)
    a = compute_embeddings(cutouts, Asym(), rotation_average=True)
    b = compute_embeddings(rotated, Asym(), rotation_average=True)
    np.testing.assert_allclose(a, b, atol=1e-6)
    plain = compute_embeddings(cutouts, Asym())
    assert not np.allclose(a, plain)


def test_pca_stored_with_entry(tmp_path):
    cache = EmbeddingCache(tmp_path / "e.h5")
    key = {"model_hash": "x"}
    with pytest.raises(InvalidInputError, match="store the embeddings before"):
        cache.save_pca(key, np.zeros(2), np.zeros((1, 2)))
    cache.save(key, np.ones((3, 2)))
    assert cache.load_pca(key, 1) is None
    cache.save_pca(key, np.array([0.5, 1.5]), np.eye(2)[:1])
    mean, comps = cache.load_pca(key, 1)
    np.testing.assert_array_equal(mean, [0.5, 1.5])
    np.testing.assert_array_equal(comps, [[1.0, 0.0]])
    np.testing.assert_array_equal(cache.load(key), np.ones((3, 2)))  # the entry itself is kept


def test_save_replaces_the_file_atomically_and_keeps_other_entries(tmp_path, monkeypatch):
    path = tmp_path / "e.h5"
    cache = EmbeddingCache(path)
    cache.save({"model_hash": "a"}, np.ones((3, 2)), ids=["x", "y", "z"])
    cache.save({"model_hash": "b"}, np.zeros((2, 4)))
    cache.save({"model_hash": "a"}, np.full((3, 2), 2.0))  # same key: replaced
    assert sorted(k["model_hash"] for k in cache.keys()) == ["a", "b"]
    np.testing.assert_array_equal(cache.load({"model_hash": "a"}), np.full((3, 2), 2.0))
    np.testing.assert_array_equal(cache.load({"model_hash": "b"}), np.zeros((2, 4)))
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(h5py.Group, "create_dataset", fail)
    with pytest.raises(OSError, match="No space"):
        cache.save({"model_hash": "c"}, np.ones((1, 1)))
    monkeypatch.undo()
    assert path.read_bytes() == before  # the cache is as it was, and no temporary file is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.h5"]


def test_a_damaged_cache_is_started_afresh(tmp_path):
    path = tmp_path / "e.h5"
    path.write_bytes(b"not hdf5" * 50)
    cache = EmbeddingCache(path)
    assert cache.load({"model_hash": "a"}) is None
    cache.save({"model_hash": "a"}, np.ones((2, 2)))
    np.testing.assert_array_equal(cache.load({"model_hash": "a"}), np.ones((2, 2)))
