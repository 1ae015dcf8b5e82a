"""Streaming, resumable scoring of a CutoutSet (HDF5 shards) or of FITS mosaics + a catalogue.

Loader workers (a torch `~torch.utils.data.DataLoader`) only read: they return raw pixel
batches (float32, or the stored dtype) from the HDF5 shards.  The normalisation and the
resize run batched in torch on the model's device (`~anomalymatch_astro.classifier.prepare_batch`
with ``device=``), then the network runs through the classifier's own inference path
(`~anomalymatch_astro.classifier.AnomalyClassifier.inference`: on a GPU channels-last memory
layout and bfloat16 autocast, optionally ``torch.compile``).  When the model runs on the CPU
with loader workers, the workers run the same torch preparation themselves (the CPU is the
device, and the workers are more cores): the scores are the same either way.
On a GPU the loop is a two-deep pipeline (`_DeviceFeeder`): pinned batches are copied and
prepared on a side CUDA stream while the network runs on the batch before, and the scores
come back asynchronously into pinned memory, waited for only when they are written.
Results go batch by batch to a `ScoreStore`, so an interrupted run continues where it
stopped and gives the same scores.
"""

import collections
import logging
import os
import time

import numpy as np

from ..cutouts import CutoutSet, default_ids, make_cutouts, parse_positions
from ..utils import ids_digest, progress_bar
from ..utils.exceptions import InvalidInputError
from ._store import ScoreStore

__all__ = ["score_cutouts", "score_images"]

log = logging.getLogger(__name__)


def _raw_tensor(pixels):
    """Raw pixels as a CPU tensor for the loader (float32, or a narrower float as stored)."""
    import torch  # imported where the batch is made, not with scoring

    pixels = np.asarray(pixels)
    if pixels.dtype.kind != "f" or pixels.dtype.itemsize > 4:
        pixels = pixels.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(pixels))


class _Batches:
    """Map-style dataset of batches: raw pixels, or prepared ones when ``prepare`` is set.

    ``prepare`` holds the keyword arguments of ``prepare_batch``.
    """

    prepare = None

    def _out(self, k, pixels):
        raw = _raw_tensor(pixels)
        if self.prepare is None:
            return k, raw
        from ..classifier import prepare_batch

        return k, prepare_batch(raw, **self.prepare)


class _CutoutBatches(_Batches):
    """Map-style dataset: item k = (k, raw pixels of batch k) of a CutoutSet."""

    def __init__(self, cutouts, batch_size, batches):
        self.cutouts = cutouts
        self.batch_size = batch_size
        self.batches = list(batches)

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, item):
        k = self.batches[item]
        rows = np.arange(k * self.batch_size, min((k + 1) * self.batch_size, len(self.cutouts)))
        return self._out(k, self.cutouts[rows].data)


class _ImageBatches(_Batches):
    """Map-style dataset: item k = (k, raw pixels) of cutouts made on the fly from FITS images."""

    def __init__(self, images, coords, ids, size, batch_size, batches, make_kwargs):
        self.images = images
        self.coords = coords
        self.ids = ids
        self.size = size
        self.batch_size = batch_size
        self.batches = list(batches)
        self.make_kwargs = make_kwargs

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, item):
        k = self.batches[item]
        rows = slice(k * self.batch_size, min((k + 1) * self.batch_size, len(self.coords)))
        cutouts = make_cutouts(
            self.images, self.coords[rows], self.size, ids=self.ids[rows], progress=False, **self.make_kwargs
        )
        return self._out(k, cutouts.data)


class _DeviceFeeder:
    """Moves loader batches onto the model's device, prepares them there and brings the scores back.

    On a CUDA device the host-to-device copy (from the loader's pinned memory, non-blocking)
    and `~anomalymatch_astro.classifier.prepare_batch` run on a side stream, so the next batch
    is copied and normalised while the network runs on this one; an event per batch makes the
    network wait for its own batch only.  The scores come back non-blocking into pinned host
    memory, waited for only when they are written.  On any other device every step runs in
    order, as a plain loop would.

    Parameters
    ----------
    device : `torch.device`
        The model's device.
    prepare : dict or None
        Keyword arguments of ``prepare_batch``, or None when the loader prepared the batch.
    cuda : module, optional
        ``torch.cuda`` (a stand-in in the tests); only used on a CUDA device.
    """

    def __init__(self, device, prepare, *, cuda=None):
        import torch

        self.prepare = prepare
        self.cuda = (cuda or torch.cuda) if device.type == "cuda" else None
        if self.cuda is not None:
            self.main = self.cuda.current_stream(device)
            self.side = self.cuda.Stream(device)

    def _prepare(self, raw):
        if self.prepare is None:
            return raw
        from ..classifier import prepare_batch

        return prepare_batch(raw, **self.prepare)

    def stage(self, k, raw):
        """Start copying and preparing batch ``k``; returns its handle for `predict`."""
        if self.cuda is None:
            return k, self._prepare(raw), None
        with self.cuda.stream(self.side):
            x = self._prepare(raw)
            ready = self.cuda.Event()
            ready.record(self.side)
        self._record_stream(x, self.main)  # made on the side stream, used and freed on the main one
        return k, x, ready

    def predict(self, predict, staged):
        """Run the network on a staged batch; returns the handle of its scores for `fetch`."""
        k, x, ready = staged
        if ready is None:
            return k, predict(x).float(), None
        self.main.wait_event(ready)  # this batch's copy and preparation only, not the next one's
        probs = predict(x).float()
        host = self._pinned_like(probs)
        host.copy_(probs, non_blocking=True)
        done = self.cuda.Event()
        done.record(self.main)
        return k, host, done

    @staticmethod
    def fetch(result):
        """``(k, scores as a float32 numpy array)``, waiting for the copy back if it is still running."""
        k, probs, done = result
        if done is not None:
            done.synchronize()
        return k, probs.cpu().numpy()

    @staticmethod
    def _record_stream(x, stream):
        x.record_stream(stream)

    @staticmethod
    def _pinned_like(x):
        import torch

        return torch.empty(x.shape, dtype=x.dtype, pin_memory=True)


def _pipeline(batches, feeder, predict, write):
    """Score ``(k, raw)`` batches two deep: batch k+1 is staged before the network runs on batch k.

    Scores reach ``write(k, scores)`` in the loader's order, each once the batch after it is
    on its way; the last ones are written when the loader is exhausted.  Returns the number
    of objects scored.
    """
    staged = None
    results = collections.deque()
    n_done = 0
    for k, raw in batches:
        n_done += len(raw)
        upcoming = feeder.stage(int(k), raw)
        if staged is not None:
            results.append(feeder.predict(predict, staged))
        staged = upcoming
        while len(results) > 1:
            write(*feeder.fetch(results.popleft()))
    if staged is not None:
        results.append(feeder.predict(predict, staged))
    while results:
        write(*feeder.fetch(results.popleft()))
    return n_done


def _run(classifier, dataset, store, *, normalized, num_workers, precision, channels_last, compile_model, progress):
    from torch.utils.data import DataLoader

    use_cuda = classifier.device.type == "cuda"
    prepare = {
        "normalizer": classifier.normalizer,
        "image_size": classifier.image_size,
        "normalized": normalized,
        "device": classifier.device,
    }
    if num_workers and classifier.device.type == "cpu":
        dataset.prepare = prepare  # the workers are CPU cores too: they prepare, the main process predicts
    feeder = _DeviceFeeder(classifier.device, None if dataset.prepare is not None else prepare)
    start = time.perf_counter()
    loader = DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=use_cuda,  # page-locked batches: the copies to the GPU run asynchronously
        persistent_workers=False,  # one pass over the data: nothing to keep the workers for
        prefetch_factor=4 if num_workers else None,
        multiprocessing_context="fork" if num_workers and os.name == "posix" else None,
    )
    with classifier.inference(precision=precision, channels_last=channels_last, compile=compile_model) as predict:
        batches = progress_bar(loader, total=len(dataset), desc="scoring", progress=progress, unit="batch")
        n_done = _pipeline(batches, feeder, predict, store.write)
    seconds = time.perf_counter() - start
    log.info("scored %d objects in %.1f s (%.0f /s)", n_done, seconds, n_done / max(seconds, 1e-9))


def _check_classifier(classifier):
    if getattr(classifier, "bands", None) is None:
        msg = "the classifier is not trained; call fit() or AnomalyClassifier.load() first"
        raise InvalidInputError(msg)


def score_cutouts(
    classifier,
    cutouts,
    *,
    output=None,
    batch_size=256,
    num_workers=0,
    precision="auto",
    channels_last=None,
    compile=False,
    client=None,
    overwrite=False,
    progress=True,
):
    """Score every cutout with a trained classifier, streaming and resumable.

    Parameters
    ----------
    classifier : `~anomalymatch_astro.AnomalyClassifier`
        A trained classifier (its EMA model scores).
    cutouts : `~anomalymatch_astro.CutoutSet` or str
        The cutouts, or the path of a CutoutSet HDF5 file (opened lazily: memory stays
        bounded whatever the size).
    output : str or os.PathLike, optional
        A `ScoreStore` directory: scores are written batch by batch and a re-run after
        an interruption (even ``kill -9``) continues where it stopped.  Without it the
        scores are kept in a temporary store.
    batch_size : int, optional
        Cutouts per forward pass (and unit of resumption).
    num_workers : int, optional
        Loader processes that read raw batches (0: in the main process); the normalisation
        and the resize run on the classifier's device.
    precision : {"auto", "bf16", "fp16", "fp32"}, optional
        Autocast precision; ``"auto"`` is bf16 on a GPU and fp32 on the CPU.  Batches go
        through the classifier's own path
        (`~anomalymatch_astro.classifier.AnomalyClassifier.prepare_batch`, then
        `~anomalymatch_astro.classifier.AnomalyClassifier.inference`), the path of
        `~anomalymatch_astro.classifier.AnomalyClassifier.score`: with the same settings
        the scores are the same.
    channels_last : bool, optional
        Channels-last memory layout (default: on a GPU).
    compile : bool, optional
        ``torch.compile`` the network first (worth it for long GPU runs).
    client : `distributed.Client`, optional
        Score on a Dask cluster instead (see `score_cutouts_dask`).
    overwrite : bool, optional
        Discard an ``output`` store that belongs to other objects or another model.
    progress : bool, optional
        Progress bar.

    Returns
    -------
    `numpy.ndarray`
        P(anomaly), float64 (N,), in the order of the cutouts.
    """
    import tempfile

    _check_classifier(classifier)
    if isinstance(cutouts, (str, os.PathLike)):
        cutouts = CutoutSet.from_hdf5(cutouts)
    if not isinstance(cutouts, CutoutSet):
        msg = f"cutouts must be a CutoutSet or the path of one, got {type(cutouts).__name__}"
        raise InvalidInputError(msg)
    if client is not None:
        from ._dask import score_cutouts_dask

        return score_cutouts_dask(
            classifier,
            cutouts,
            client=client,
            output=output,
            batch_size=batch_size,
            precision=precision,
            overwrite=overwrite,
            progress=progress,
        )
    classifier.check_cutouts(cutouts)
    key = {"ids": ids_digest(cutouts.ids), "model": classifier.model_hash}
    with tempfile.TemporaryDirectory() as tmp:
        store = ScoreStore(output or tmp, n=len(cutouts), batch_size=batch_size, key=key, overwrite=overwrite)
        pending = store.pending
        if len(pending) < store.n_batches:
            log.info("resuming: %d of %d batches already scored", store.n_batches - len(pending), store.n_batches)
        if len(pending):
            dataset = _CutoutBatches(cutouts, batch_size, pending)
            _run(
                classifier,
                dataset,
                store,
                normalized=(cutouts.meta or {}).get("normalizer") is not None,
                num_workers=num_workers,
                precision=precision,
                channels_last=channels_last,
                compile_model=compile,
                progress=progress,
            )
        return store.scores()


def score_images(
    classifier,
    images,
    positions,
    size,
    *,
    ids=None,
    output=None,
    batch_size=256,
    num_workers=0,
    precision="auto",
    overwrite=False,
    progress=True,
    **make_kwargs,
):
    """Score objects straight from FITS mosaics + positions, cutting inside the loader workers.

    No CutoutSet is materialised: each loader worker cuts its batch with
    `~anomalymatch_astro.make_cutouts` (memory-mapped reads); the normalisation and the resize
    run on the classifier's device, as in `score_cutouts`.

    Parameters
    ----------
    classifier : `~anomalymatch_astro.AnomalyClassifier`
        A trained classifier; the images' bands must be its bands, in order.
    images : dict
        ``{band: FITS path}`` (paths, so that worker processes can open them).
    positions : `~astropy.coordinates.SkyCoord` or `~astropy.table.Table`
        Object positions (and ids), as for `~anomalymatch_astro.make_cutouts`.
    size : int or `~astropy.units.Quantity`
        Cutout size (the training size).
    ids, output, batch_size, num_workers, precision, overwrite, progress
        As for `score_cutouts`.
    **make_kwargs
        Passed on to `~anomalymatch_astro.make_cutouts` (e.g. ``on_missing="flag"``).

    Returns
    -------
    ids : `numpy.ndarray` of str
    scores : `numpy.ndarray`
        float64 P(anomaly), aligned with ``ids``.
    """
    import tempfile

    _check_classifier(classifier)
    bands = tuple(str(b) for b in images)
    classifier.check_bands(bands)
    coords, obj_ids, _ = parse_positions(positions, ids=ids)
    if obj_ids is None:
        obj_ids = default_ids(len(coords))
    make_kwargs.setdefault("on_missing", "flag")
    key = {"ids": ids_digest(obj_ids), "model": classifier.model_hash, "images": sorted(map(str, images.values()))}
    with tempfile.TemporaryDirectory() as tmp:
        store = ScoreStore(output or tmp, n=len(coords), batch_size=batch_size, key=key, overwrite=overwrite)
        pending = store.pending
        if len(pending):
            dataset = _ImageBatches(
                images,
                coords,
                obj_ids,
                size,
                batch_size,
                pending,
                make_kwargs,
            )
            _run(
                classifier,
                dataset,
                store,
                normalized=False,
                num_workers=num_workers,
                precision=precision,
                channels_last=None,
                compile_model=False,
                progress=progress,
            )
        return obj_ids, store.scores()
