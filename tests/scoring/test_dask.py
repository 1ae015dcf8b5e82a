"""The Dask backend on a 2-worker LocalCluster on 127.0.0.1: same scores, in order, model loaded once per worker."""

import numpy as np
import pytest

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.classifier import AnomalyClassifier
from anomalymatch_astro.scoring import score_cutouts, score_cutouts_dask
from anomalymatch_astro.utils.exceptions import InvalidInputError

distributed = pytest.importorskip("distributed")


def _loads():
    from anomalymatch_astro.scoring import _dask

    return _dask._MODELS.get("loads", 0)


def test_dask_matches_local(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(96, 1, 16, 16)).astype(np.float32)
    data[:8, :, 5:11, 5:11] += 4
    cs = CutoutSet.from_arrays(data)
    cs.to_hdf5(tmp_path / "c.h5", shard_size=40)
    clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=4, mu=1)
    clf.fit(cs, {"obj00": "anomaly", "obj90": "normal"}, iterations=1, progress=False)
    lazy = CutoutSet.from_hdf5(tmp_path / "c.h5")
    expected = clf.score(lazy, batch_size=8, progress=False)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        scores = score_cutouts(clf, lazy, client=client, batch_size=8, progress=False)
        # float32 sums differ in the last bits with the number of torch threads (1 per worker here)
        np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)
        assert not np.allclose(scores[:8], scores[8:16], atol=1e-3)  # not a constant: the order is checked
        loads = client.run(_loads)
        assert sum(loads.values()) <= 2 and all(v <= 1 for v in loads.values())
        with pytest.raises(InvalidInputError, match="HDF5 file"):
            score_cutouts(clf, cs, client=client, progress=False)


def _fitted(tmp_path, n=96, shard_size=40):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(n, 1, 16, 16)).astype(np.float32)
    data[:8, :, 5:11, 5:11] += 4
    cs = CutoutSet.from_arrays(data)
    cs.to_hdf5(tmp_path / "c.h5", shard_size=shard_size)
    clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=4, mu=1)
    clf.fit(cs, {cs.ids[0]: "anomaly", cs.ids[-6]: "normal"}, iterations=1, progress=False)
    return clf, CutoutSet.from_hdf5(tmp_path / "c.h5")


def test_block_size_is_shard_aligned():
    from anomalymatch_astro.scoring._dask import _block_size, _is_aligned

    uniform = np.array([0, 4096, 8192, 12288, 13000])
    for n_workers in (1, 2, 8, 64):
        block = _block_size(uniform, batch_size=256, n_workers=n_workers)
        assert _is_aligned(block, uniform) and block % 256 == 0
    assert _block_size(uniform, batch_size=256, n_workers=64) == 256  # inside one shard
    ten = np.arange(0, 10 * 4096 + 1, 4096)
    assert _block_size(ten, batch_size=256, n_workers=1) == 3 * 4096  # whole shards, about n / 4
    assert _is_aligned(3 * 4096, ten) and not _is_aligned(6144, ten)
    assert _is_aligned(4096, uniform) and not _is_aligned(3000, uniform) and not _is_aligned(6144, uniform)
    appended = np.array([0, 40, 80, 96, 136])  # shards of 40, 40, 16 (an append), 40
    block = _block_size(appended, batch_size=8, n_workers=2)
    assert _is_aligned(block, appended) and block % 8 == 0 and block == 8
    assert _block_size(np.array([0, 3000]), batch_size=256, n_workers=1) == 768  # one shard: batch multiples


def test_gpu_cluster_pins_one_worker_per_gpu(tmp_path, monkeypatch):
    """The multi-GPU path on a CPU: every worker sees only its GPU id, loads on the CPU, scores match."""
    from anomalymatch_astro.scoring._dask import _is_aligned, _shard_offsets, _worker_info, gpu_cluster

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    clf, lazy = _fitted(tmp_path)
    expected = clf.score(lazy, batch_size=8, progress=False)
    with pytest.raises(InvalidInputError, match="workers_per_gpu|no GPU"):
        gpu_cluster(devices=[], dask_cuda=False)
    with (
        gpu_cluster(n_gpus=2, dask_cuda=False, host="127.0.0.1") as cluster,
        distributed.Client(cluster) as client,
    ):
        info = client.run(_worker_info)
        assert sorted(v["CUDA_VISIBLE_DEVICES"] for v in info.values()) == ["0", "1"]
        assert len({v["pid"] for v in info.values()}) == 2
        assert {v["device"] for v in info.values()} == {"cpu"}  # no GPU here: the same code on the CPU
        names = sorted(w["name"] for w in client.scheduler_info()["workers"].values())
        assert names == ["gpu0", "gpu1"]
        scores = score_cutouts(clf, lazy, client=client, batch_size=8, output=tmp_path / "s", progress=False)
        np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)
        info_json = __import__("json").loads((tmp_path / "s" / "info.json").read_text())
        assert _is_aligned(info_json["batch_size"], _shard_offsets(str(tmp_path / "c.h5")))
        assert info_json["batch_size"] == 8  # shards of 40 and 16 rows: blocks of one batch inside a shard


def test_dask_resumes_a_partial_run(tmp_path):
    """A store half written by a first run: the second run scores only the missing blocks, with the first blocks."""
    from anomalymatch_astro.scoring import ScoreStore, _dask

    clf, lazy = _fitted(tmp_path, n=80, shard_size=40)
    expected = clf.score(lazy, batch_size=8, progress=False)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        first = score_cutouts_dask(
            clf, lazy, client=client, batch_size=8, block_size=40, output=tmp_path / "s", progress=False
        )
        np.testing.assert_allclose(first, expected, rtol=0, atol=1e-5)
        # pretend the run was preempted after the first block: forget block 1 and poison block 0
        key = {"ids": _dask.ids_digest(lazy.ids), "model": clf.model_hash}
        store = ScoreStore(tmp_path / "s", n=80, batch_size=40, key=key)
        store._done[1] = 0
        store._done.flush()
        store._scores[:40] = 7.0
        store._scores.flush()
        del store
        # block_size omitted: the store's own blocks (40) are reused, whatever the default would be
        again = score_cutouts_dask(clf, lazy, client=client, batch_size=8, output=tmp_path / "s", progress=False)
        np.testing.assert_array_equal(again[:40], 7.0)  # done blocks are not recomputed
        np.testing.assert_allclose(again[40:], expected[40:], rtol=0, atol=1e-5)
