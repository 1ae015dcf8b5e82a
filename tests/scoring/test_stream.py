"""Streaming, resumable scoring: equal to AnomalyClassifier.score, survives kill -9, scores from FITS."""

import contextlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.wcs import WCS

from anomalymatch_astro import CutoutSet, make_cutouts
from anomalymatch_astro.classifier import AnomalyClassifier
from anomalymatch_astro.scoring import ScoreStore, score_cutouts, score_images
from anomalymatch_astro.scoring._stream import _DeviceFeeder, _pipeline
from anomalymatch_astro.utils.exceptions import BandMismatchError, InvalidInputError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scoring")
    rng = np.random.default_rng(0)
    data = rng.normal(size=(70, 2, 16, 16)).astype(np.float32)
    data[:10, :, 6:10, 6:10] += 5
    cs = CutoutSet.from_arrays(data, bands=["g", "r"])
    cs.to_hdf5(tmp / "c.h5", shard_size=32)
    clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=4, mu=1, seed=1)
    clf.fit(
        cs, {"obj00": "anomaly", "obj01": "anomaly", "obj50": "normal", "obj51": "normal"}, iterations=2, progress=False
    )
    clf.save(tmp / "model")
    return clf, tmp


def test_equals_classifier_score(trained):
    clf, tmp = trained
    lazy = CutoutSet.from_hdf5(tmp / "c.h5")
    expected = clf.score(lazy, batch_size=16)  # same batches: bit-identical (BLAS paths depend on batch size)
    np.testing.assert_array_equal(score_cutouts(clf, lazy, batch_size=16, progress=False), expected)
    np.testing.assert_array_equal(
        score_cutouts(clf, tmp / "c.h5", batch_size=16, num_workers=2, progress=False), expected
    )


def test_store_resumes_and_checks_key(trained):
    clf, tmp = trained
    out = tmp / "store_a"
    first = score_cutouts(clf, tmp / "c.h5", batch_size=16, output=out, progress=False)
    store = ScoreStore(out, n=70, batch_size=16, key={"ids": "x"}, overwrite=True)  # other key: reset
    assert np.isnan(store.scores()).all() and len(store.pending) == 5
    again = score_cutouts(clf, tmp / "c.h5", batch_size=16, output=out, overwrite=True, progress=False)
    np.testing.assert_array_equal(first, again)
    with pytest.raises(InvalidInputError, match="other objects or another model"):
        score_cutouts(clf, CutoutSet.from_hdf5(tmp / "c.h5")[:20], batch_size=16, output=out, progress=False)


def test_kill_9_then_rerun_gives_same_scores(trained):
    clf, tmp = trained
    out = tmp / "store_killed"
    script = textwrap.dedent(f"""
        import os, signal
        from anomalymatch_astro.classifier import AnomalyClassifier
        from anomalymatch_astro.scoring import _store, score_cutouts
        original = _store.ScoreStore.write
        calls = []
        def write(self, k, scores):
            original(self, k, scores)
            calls.append(k)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        _store.ScoreStore.write = write
        clf = AnomalyClassifier.load({str(tmp / "model")!r})
        score_cutouts(clf, {str(tmp / "c.h5")!r}, batch_size=16, output={str(out)!r}, progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    done = np.load(out / "done.npy")
    assert done.sum() == 2
    clf2 = AnomalyClassifier.load(tmp / "model")
    resumed = score_cutouts(clf2, tmp / "c.h5", batch_size=16, output=out, progress=False)
    assert np.load(out / "done.npy").all()
    np.testing.assert_array_equal(resumed, clf2.score(CutoutSet.from_hdf5(tmp / "c.h5"), batch_size=16))


def test_score_images_from_fits(trained, tmp_path):
    clf, _ = trained
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [40.5, 40.5]
    wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    rng = np.random.default_rng(3)
    for band in ("g", "r"):
        fits.writeto(tmp_path / f"{band}.fits", rng.normal(size=(80, 80)).astype(np.float32), header=wcs.to_header())
    images = {b: str(tmp_path / f"{b}.fits") for b in ("g", "r")}
    coords = wcs.pixel_to_world(rng.uniform(15, 65, 20), rng.uniform(15, 65, 20))
    ids, scores = score_images(clf, images, coords, 16, batch_size=8, num_workers=2, progress=False)
    # the same batches: the same scores (float32 sums depend on the batch size in the last bits)
    expected = clf.score(make_cutouts(images, coords, 16, progress=False), batch_size=8, progress=False)
    np.testing.assert_array_equal(scores, expected)
    assert len(ids) == 20
    with pytest.raises(BandMismatchError, match="band"):
        score_images(clf, {"r": images["r"], "g": images["g"]}, coords, 16, progress=False)


def test_every_route_goes_through_the_classifier_inference_path(trained, monkeypatch):
    """score, score_cutouts (any worker count) and score_images all predict inside clf.inference."""
    clf, tmp = trained
    calls = []
    original = AnomalyClassifier.inference

    def spy(self, **kwargs):
        calls.append(kwargs.get("precision", "auto"))
        return original(self, **kwargs)

    monkeypatch.setattr(AnomalyClassifier, "inference", spy)
    lazy = CutoutSet.from_hdf5(tmp / "c.h5")
    a = clf.score(lazy, batch_size=16, progress=False)
    b = score_cutouts(clf, lazy, batch_size=16, precision="auto", progress=False)
    assert calls == ["auto", "auto"]
    np.testing.assert_array_equal(a, b)  # on the CPU "auto" is float32 on both routes
    fp32 = score_cutouts(clf, lazy, batch_size=16, precision="fp32", progress=False)
    np.testing.assert_array_equal(fp32, a)
    assert calls[-1] == "fp32"
    with pytest.raises(InvalidInputError, match="precision"):
        score_cutouts(clf, lazy, batch_size=16, precision="fp8", progress=False)


def test_untrained_classifier_is_refused(trained):
    _, tmp = trained
    with pytest.raises(InvalidInputError, match="not trained"):
        score_cutouts(AnomalyClassifier(pretrained=False), tmp / "c.h5", progress=False)


def test_torch_normaliser_scores_like_numpy(trained, monkeypatch):
    """Old checkpoints score the same: the torch normaliser vs the numpy Normalizer on the same model."""
    from anomalymatch_astro.classifier import _inference

    clf, tmp = trained
    lazy = CutoutSet.from_hdf5(tmp / "c.h5")
    on_device = clf.score(lazy, batch_size=16, progress=False)
    streamed = score_cutouts(clf, lazy, batch_size=16, progress=False)
    monkeypatch.setattr(_inference, "tensor_supported", lambda normalizer: False)  # the numpy route of before
    numpy_route = clf.score(lazy, batch_size=16, progress=False)
    np.testing.assert_allclose(on_device, numpy_route, rtol=0, atol=1e-5)
    np.testing.assert_allclose(streamed, numpy_route, rtol=0, atol=1e-5)


class _FakeStream:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def wait_event(self, event):
        self.log.append(("wait", self.name, event.what))


class _FakeCuda:
    """Stand-in for ``torch.cuda``: logs on which stream every step of the pipeline runs."""

    def __init__(self):
        self.log = []
        self.current = self.main = _FakeStream("main", self.log)
        self.batch = None  # the batch being staged or predicted, to name the events

    def current_stream(self, device):
        return self.main

    def Stream(self, device):  # noqa: N802 -- torch.cuda's name
        return _FakeStream("side", self.log)

    @contextlib.contextmanager
    def stream(self, stream):
        previous, self.current = self.current, stream
        try:
            yield
        finally:
            self.current = previous

    def Event(self):  # noqa: N802 -- torch.cuda's name
        cuda = self

        class Event:
            what = None

            def record(self, stream):
                self.what = ("copied" if stream.name == "side" else "scored", cuda.batch)

            def synchronize(self):
                cuda.log.append(("sync", self.what))

        return Event()


class _FakeCudaFeeder(_DeviceFeeder):
    """The feeder's CUDA branch on CPU tensors: no page-locked memory, no ``record_stream``."""

    def __init__(self, fake):
        super().__init__(torch.device("cuda"), None, cuda=fake)
        self.fake = fake

    def stage(self, k, raw):
        self.fake.batch = k
        return super().stage(k, raw)

    def _prepare(self, raw):
        self.fake.log.append(("copy", self.fake.current.name, self.fake.batch))
        return super()._prepare(raw)

    def predict(self, predict, staged):
        self.fake.batch = staged[0]
        return super().predict(predict, staged)

    def _record_stream(self, x, stream):
        self.fake.log.append(("record_stream", stream.name))

    @staticmethod
    def _pinned_like(x):
        return torch.empty_like(x)


def _batches(sizes):
    return [(k, torch.full((n, 1, 2, 2), float(k))) for k, n in sizes]


def _fake_predict(x):
    return x.mean(dim=(1, 2, 3)) + 0.5


def test_pipeline_keeps_order_partial_last_batch_and_empty_set():
    feeder = _DeviceFeeder(torch.device("cpu"), None)
    written = []
    n = _pipeline(_batches([(1, 4), (3, 4), (4, 2)]), feeder, _fake_predict, lambda k, s: written.append((k, s)))
    assert n == 10
    assert [k for k, _ in written] == [1, 3, 4]  # the loader's order (pending batches of a resumed store)
    assert [len(s) for _, s in written] == [4, 4, 2]  # the last, partial batch too
    for k, s in written:
        assert s.dtype == np.float32
        np.testing.assert_array_equal(s, np.full(len(s), k + 0.5, np.float32))
    written.clear()
    assert _pipeline([], feeder, _fake_predict, lambda k, s: written.append(k)) == 0
    assert written == []


def test_pipeline_on_a_gpu_overlaps_the_next_copy_with_this_forward():
    """With a stand-in for torch.cuda: copies on the side stream one batch ahead, each forward waits for its own."""
    fake = _FakeCuda()
    written = []
    n = _pipeline(
        _batches([(0, 3), (1, 3), (2, 1)]), _FakeCudaFeeder(fake), _fake_predict, lambda k, s: written.append((k, s))
    )
    assert n == 7
    assert [k for k, _ in written] == [0, 1, 2]
    np.testing.assert_array_equal(written[2][1], [2.5])
    assert [e for e in fake.log if e[0] != "record_stream"] == [
        ("copy", "side", 0),
        ("copy", "side", 1),  # batch 1 is copied and prepared before the network runs on batch 0
        ("wait", "main", ("copied", 0)),  # and batch 0's forward waits for batch 0's copy only
        ("copy", "side", 2),
        ("wait", "main", ("copied", 1)),
        ("sync", ("scored", 0)),  # batch 0's scores are waited for when written, a forward later
        ("wait", "main", ("copied", 2)),
        ("sync", ("scored", 1)),
        ("sync", ("scored", 2)),
    ]
    assert fake.log.count(("record_stream", "main")) == 3  # every prepared batch is freed on the main stream
    assert fake.current is fake.main


def test_empty_set_scores_nothing(trained):
    clf, _ = trained
    empty = CutoutSet.from_arrays(np.zeros((0, 2, 16, 16), np.float32), bands=["g", "r"])
    assert score_cutouts(clf, empty, batch_size=16, progress=False).shape == (0,)
