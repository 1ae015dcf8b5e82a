"""The Dask backend on a 2-worker LocalCluster on 127.0.0.1: same scores, in order, model loaded once per worker."""

import numpy as np
import pytest

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.classifier import AnomalyClassifier
from anomalymatch_astro.scoring import score_cutouts
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
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
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
