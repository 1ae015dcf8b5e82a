"""Scoring on a Dask cluster: blocks of a CutoutSet file spread over workers, the model loaded once per worker.

The classifier is saved once (safetensors + JSON) to a directory every worker can read
(a shared file system on a real cluster), each task scores one block of rows of the
HDF5 CutoutSet, and results come back in order.  With ``output`` the blocks are also
written to a `ScoreStore` as they finish, so a re-run skips them.
"""

import logging
import os
import tempfile

import numpy as np

from ..cutouts import CutoutSet
from ..utils import ids_digest, progress_bar, require
from ..utils.exceptions import InvalidInputError
from ._store import ScoreStore

__all__ = ["score_cutouts_dask"]

log = logging.getLogger(__name__)

# per-worker-process cache: (model_dir, model_hash) -> AnomalyClassifier
_MODELS = {}


def _worker_classifier(model_dir, model_hash, threads):
    key = (model_dir, model_hash)
    if key not in _MODELS:
        import torch

        from ..classifier import AnomalyClassifier

        if threads:
            torch.set_num_threads(int(threads))
        _MODELS.clear()
        _MODELS[key] = AnomalyClassifier.load(model_dir, device="cpu" if not torch.cuda.is_available() else None)
        _MODELS["loads"] = _MODELS.get("loads", 0) + 1
    return _MODELS[key]


def _score_block(model_dir, model_hash, cutouts_path, start, stop, batch_size, threads, precision="auto"):
    """Dask task: score rows [start, stop) of a CutoutSet file; returns (start, scores, worker pid)."""
    from ..classifier import prepare_batch  # torch: imported on the worker, not with scoring

    clf = _worker_classifier(model_dir, model_hash, threads)
    cutouts = CutoutSet.from_hdf5(cutouts_path)[start:stop]
    normalized = (cutouts.meta or {}).get("normalizer") is not None
    out = np.empty(len(cutouts), dtype=np.float64)
    with clf.inference(precision=precision) as predict:
        for rows, pixels in cutouts.iter_batches(batch_size=batch_size):
            x = prepare_batch(
                pixels, normalizer=clf.normalizer, image_size=clf.image_size, normalized=normalized, device=clf.device
            )
            out[rows] = predict(x).float().cpu().numpy()
    return start, out, os.getpid()


def score_cutouts_dask(
    classifier,
    cutouts,
    *,
    client,
    output=None,
    batch_size=256,
    block_size=None,
    model_dir=None,
    threads_per_task=None,
    precision="auto",
    overwrite=False,
    progress=True,
):
    """Score a CutoutSet file on a Dask cluster; results identical to the local path, in order.

    Parameters
    ----------
    classifier : `~anomalymatch_astro.AnomalyClassifier`
        A trained classifier.
    cutouts : `~anomalymatch_astro.CutoutSet`
        A lazy set opened with `~anomalymatch_astro.cutouts.CutoutSet.from_hdf5` (workers read the same file: on a
        cluster it must be on a shared file system).
    client : `distributed.Client`
        The Dask client.
    output : str, optional
        `ScoreStore` directory for resumable runs.
    batch_size : int, optional
        Cutouts per forward pass inside a task.
    block_size : int, optional
        Rows per task (default: about 4 tasks per worker, a multiple of ``batch_size``).
    model_dir : str, optional
        Where to save the model for the workers (default: a temporary directory, fine
        for a local cluster; give a shared path on a real cluster).
    threads_per_task : int, optional
        torch threads inside each worker (default: the worker's thread count).
    precision : {"auto", "bf16", "fp16", "fp32"}, optional
        Autocast precision on the workers (``"auto"``: bf16 on a GPU, fp32 on a CPU), as
        for `~anomalymatch_astro.AnomalyClassifier.inference`.
    overwrite : bool, optional
        Discard an ``output`` store that belongs to other objects or another model.
    progress : bool, optional
        Progress bar over finished blocks.

    Returns
    -------
    `numpy.ndarray`
        float64 (N,) P(anomaly).
    """
    distributed = require("distributed", feature="Scoring on a Dask cluster")
    if cutouts.path is None:
        msg = (
            "Dask scoring reads the cutouts from their HDF5 file on every worker: write them with "
            "cutouts.to_hdf5(path) and pass CutoutSet.from_hdf5(path)"
        )
        raise InvalidInputError(msg)
    if not np.array_equal(cutouts.ids, CutoutSet.from_hdf5(cutouts.path).ids):
        msg = "Dask scoring needs the whole file (not a slice of a CutoutSet); write the slice to its own file"
        raise InvalidInputError(msg)
    classifier.check_cutouts(cutouts)
    path = os.path.abspath(cutouts.path)
    n = len(cutouts)
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    if block_size is None:
        block_size = max(batch_size, int(np.ceil(n / (4 * n_workers) / batch_size)) * batch_size)
    key = {"ids": ids_digest(cutouts.ids), "model": classifier.model_hash}
    own_tmp = None
    if model_dir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="amast_model_")
        model_dir = own_tmp.name
    classifier.save(model_dir, overwrite=True)  # scratch space of the workers
    model_hash = classifier.model_hash
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = ScoreStore(output or tmp, n=n, batch_size=block_size, key=key, overwrite=overwrite)
            futures = [
                client.submit(
                    _score_block,
                    os.path.abspath(model_dir),
                    model_hash,
                    path,
                    int(k * block_size),
                    int(min((k + 1) * block_size, n)),
                    batch_size,
                    threads_per_task,
                    precision,
                    pure=False,
                )
                for k in store.pending
            ]
            bar = progress_bar(total=len(futures), desc="scoring (dask)", progress=progress, unit="block")
            pids = set()
            for future in distributed.as_completed(futures):
                start, scores, pid = future.result()
                store.write(start // block_size, scores)
                pids.add(pid)
                bar.update(1)
            bar.close()
            log.info("scored %d objects on %d worker process(es)", n, len(pids))
            return store.scores()
    finally:
        if own_tmp is not None:
            own_tmp.cleanup()
