"""Scoring on a Dask cluster: blocks of a CutoutSet file spread over workers, the model loaded once per worker.

The classifier is saved once (safetensors + JSON) to a directory every worker can read
(a shared file system on a real cluster), each task scores one block of rows of the
HDF5 CutoutSet, and results come back in order.  Blocks are aligned with the file's shards
(a block lies inside one shard or covers whole shards), so a task reads only its own shards.
Workers only read; the client alone writes the scores.  With ``output`` the blocks are written
to a `ScoreStore` as they finish, so a re-run skips them.

`gpu_cluster` starts a local cluster of one worker process per GPU, each pinned to its GPU
with ``CUDA_VISIBLE_DEVICES`` before torch starts; on a machine without GPUs the same
workers run on the CPU.
"""

import logging
import math
import os
import tempfile

import numpy as np

from ..cutouts import CutoutSet
from ..utils import ids_digest, progress_bar, read_json, require
from ..utils.exceptions import InvalidInputError, ReadError
from ._store import ScoreStore

__all__ = ["gpu_cluster", "score_cutouts_dask"]

log = logging.getLogger(__name__)

# per-worker-process caches: (model_dir, model_hash) -> AnomalyClassifier; (path, mtime, size) -> CutoutSet
_MODELS = {}
_FILES = {}

#: Most rows per block by default, in batches (the unit lost when a worker is preempted).
_MAX_BATCHES_PER_BLOCK = 64


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


def _worker_cutouts(path):
    """The lazy CutoutSet of ``path``, opened once per worker process (opening checks every shard)."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _FILES:
        _FILES.clear()
        _FILES[key] = CutoutSet.from_hdf5(path)
    return _FILES[key]


def _worker_info():
    """What a worker runs on: its pid, ``CUDA_VISIBLE_DEVICES`` and the device its model loads on."""
    import torch

    return {
        "pid": os.getpid(),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def _score_block(model_dir, model_hash, cutouts_path, start, stop, batch_size, threads, precision="auto"):
    """Dask task: score rows [start, stop) of a CutoutSet file; returns (start, scores, worker pid)."""
    from ..classifier import prepare_batch  # torch: imported on the worker, not with scoring

    clf = _worker_classifier(model_dir, model_hash, threads)
    cutouts = _worker_cutouts(cutouts_path)[start:stop]
    normalized = (cutouts.meta or {}).get("normalizer") is not None
    out = np.empty(len(cutouts), dtype=np.float64)
    with clf.inference(precision=precision) as predict:
        for rows, pixels in cutouts.iter_batches(batch_size=batch_size):
            x = prepare_batch(
                pixels, normalizer=clf.normalizer, image_size=clf.image_size, normalized=normalized, device=clf.device
            )
            out[rows] = predict(x).float().cpu().numpy()
    return start, out, os.getpid()


def _shard_offsets(path):
    """Row offsets of the complete shards of a CutoutSet file: (0, n_0, n_0 + n_1, ..., n)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            shards = f["shards"] if "shards" in f else {}
            sizes = [
                shards[name]["data"].shape[0]
                for name in sorted(shards.keys())
                if "data" in shards[name] and shards[name].attrs.get("complete", False)
            ]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        msg = f"could not read the shards of CutoutSet file {path!r}: {exc}"
        raise ReadError(msg) from exc
    return np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)


def _is_aligned(block, offsets):
    """True when every block of ``block`` rows lies inside one shard or covers whole shards."""
    n = int(offsets[-1])
    starts = np.arange(0, n, int(block), dtype=np.int64)
    stops = np.minimum(starts + int(block), n)
    first = np.searchsorted(offsets, starts, side="right") - 1
    last = np.searchsorted(offsets, stops - 1, side="right") - 1
    whole = np.isin(starts, offsets) & np.isin(stops, offsets)
    return bool(np.all((first == last) | whole))


def _divisors(g):
    small = [d for d in range(1, math.isqrt(g) + 1) if g % d == 0]
    return sorted(set(small + [g // d for d in small]))


def _block_size(offsets, *, batch_size, n_workers):
    """Rows per task: shard-aligned, a multiple of ``batch_size`` where possible, about 4 tasks per worker."""
    n = int(offsets[-1])
    target = min(max(batch_size, math.ceil(n / (4 * n_workers))), _MAX_BATCHES_PER_BLOCK * batch_size)
    inner = offsets[1:-1]
    if inner.size == 0:  # one shard: any block lies inside it
        return max(batch_size, math.ceil(target / batch_size) * batch_size)
    g = int(np.gcd.reduce(inner))
    candidates = _divisors(g)  # inside one shard each
    uniform = bool(np.all(np.diff(offsets[:-1]) == g))
    if uniform:
        candidates += [g * m for m in range(2, max(2, math.ceil(target / g)) + 2)]  # whole shards each
    whole = [c for c in candidates if c % batch_size == 0] or [c for c in candidates if c >= batch_size // 4]
    if not whole:
        log.info("the shards of this file (every %d rows) are too small to align blocks with them", g)
        return max(batch_size, math.ceil(target / batch_size) * batch_size)
    return min(whole, key=lambda c: abs(math.log(c / target)))


def _stored_block_size(output, key):
    """The block size of an existing `ScoreStore` at ``output`` for the same objects and model, else None."""
    if output is None or not os.path.exists(os.path.join(output, "info.json")):
        return None
    try:
        info = read_json(os.path.join(output, "info.json"))
    except ReadError:
        return None
    if isinstance(info, dict) and info.get("key") == key and isinstance(info.get("batch_size"), int):
        return info["batch_size"]
    return None


def gpu_cluster(*, n_gpus=None, devices=None, workers_per_gpu=1, threads_per_worker=1, dask_cuda=None, **kwargs):
    """A local Dask cluster of one worker process per GPU, each pinned to its GPU.

    Every worker process starts with ``CUDA_VISIBLE_DEVICES`` set to its own GPU (set by the
    worker's nanny before the process starts, so before torch sees CUDA); in it the model of
    `score_cutouts_dask` loads on ``cuda`` when that GPU is visible, on the CPU otherwise, so the
    same cluster runs (slowly) on a machine without GPUs.  With `dask_cuda
    <https://docs.rapids.ai/api/dask-cuda/>`_ installed and a GPU visible, its ``LocalCUDACluster``
    is used instead (the same pinning, plus its GPU-aware memory settings).

    Parameters
    ----------
    n_gpus : int, optional
        Number of GPUs (default: every GPU in ``devices``).
    devices : list of int or str, optional
        The GPU ids (default: the entries of ``CUDA_VISIBLE_DEVICES`` when it is set, as under
        SLURM, else ``0 .. torch.cuda.device_count() - 1``).
    workers_per_gpu : int, optional
        Worker processes per GPU; more than one when one process cannot read cutouts fast enough
        to keep its GPU busy (HDF5 reads in one process run one at a time).
    threads_per_worker : int, optional
        Threads (concurrent tasks) per worker process.
    dask_cuda : bool, optional
        Use ``dask_cuda.LocalCUDACluster`` (default: when it is installed and a GPU is visible).
    **kwargs
        Passed on to the cluster (e.g. ``dashboard_address``, ``host``, ``memory_limit``).

    Returns
    -------
    `distributed.SpecCluster`
        The cluster (a context manager); connect with ``distributed.Client(cluster)``.

    Raises
    ------
    InvalidInputError
        When no GPU is given or found (pass ``n_gpus`` or ``devices`` to run the same workers on the CPU).
    """
    distributed = require("distributed", feature="Scoring on a Dask cluster")
    if devices is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None and visible.strip():
            devices = [d.strip() for d in visible.split(",") if d.strip()]
        else:
            import torch

            devices = list(range(torch.cuda.device_count()))  # NVML: does not start CUDA here
        if n_gpus is not None and not devices:
            devices = list(range(int(n_gpus)))  # no GPU here: the same workers on the CPU
        elif n_gpus is not None and len(devices) < n_gpus:
            msg = f"gpu_cluster: {n_gpus} GPUs asked for, {len(devices)} visible ({devices})"
            raise InvalidInputError(msg)
    devices = [str(d) for d in devices][: None if n_gpus is None else int(n_gpus)]
    if not devices or int(workers_per_gpu) < 1:
        msg = "gpu_cluster found no GPU: pass n_gpus= or devices= (workers then run on the CPU)"
        raise InvalidInputError(msg)
    if dask_cuda is None:
        import importlib.util

        import torch

        dask_cuda = importlib.util.find_spec("dask_cuda") is not None and torch.cuda.device_count() > 0
    log.info("gpu_cluster: GPUs %s, %d worker process(es) each", ",".join(devices), int(workers_per_gpu))
    if dask_cuda:
        from dask_cuda import LocalCUDACluster

        if int(workers_per_gpu) != 1:
            msg = "dask_cuda's LocalCUDACluster runs one worker per GPU: use dask_cuda=False for workers_per_gpu > 1"
            raise InvalidInputError(msg)
        return LocalCUDACluster(
            CUDA_VISIBLE_DEVICES=",".join(devices), threads_per_worker=int(threads_per_worker), **kwargs
        )
    shared = {k: kwargs.pop(k) for k in ("host", "protocol", "security") if k in kwargs}
    dashboard_address = kwargs.pop("dashboard_address", None)
    scheduler_options = {
        "port": kwargs.pop("scheduler_port", 0),
        "dashboard": dashboard_address is not None,
        "dashboard_address": dashboard_address,
        **shared,
    }
    worker_options = {"nthreads": int(threads_per_worker), **shared, **kwargs}
    workers = {}
    for device in devices:
        for j in range(int(workers_per_gpu)):
            # set in the worker process before anything runs: CUDA sees one device, cuda:0 is this GPU
            options = {**worker_options, "env": {**worker_options.get("env", {}), "CUDA_VISIBLE_DEVICES": device}}
            name = f"gpu{device}" if int(workers_per_gpu) == 1 else f"gpu{device}-{j}"
            workers[name] = {"cls": distributed.Nanny, "options": options}
    scheduler = {"cls": distributed.Scheduler, "options": scheduler_options}
    return distributed.SpecCluster(workers=workers, scheduler=scheduler, name="gpu_cluster")


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
        Rows per task, the unit of resumption (default: the block size of an existing ``output``
        store of the same objects and model, else about 4 tasks per worker and at most 64
        batches, aligned with the file's shards and a multiple of ``batch_size`` where the shards
        allow it).
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
    key = {"ids": ids_digest(cutouts.ids), "model": classifier.model_hash}
    offsets = _shard_offsets(path)
    if block_size is None:
        block_size = _stored_block_size(output, key)  # resume with the blocks of the first run
    if block_size is None:
        block_size = _block_size(offsets, batch_size=batch_size, n_workers=n_workers)
    block_size = int(block_size)
    if block_size < 1:
        msg = f"block_size must be positive, not {block_size}"
        raise InvalidInputError(msg)
    if not _is_aligned(block_size, offsets):
        log.info(
            "blocks of %d rows are not aligned with the shards of %s: some tasks read two shards", block_size, path
        )
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
