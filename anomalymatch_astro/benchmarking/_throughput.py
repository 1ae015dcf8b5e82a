"""The throughput benchmark: full scoring path vs bare forward, flat memory, Dask scaling.

Run it with ``anomalymatch-astro benchmark --suite throughput``.  Every number is a ratio
measured side by side in one run, so a busy machine penalises both sides alike.  The peak
memory is measured in child processes (a script that prints its result as JSON to this one).
"""

import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

__all__ = ["run_throughput_benchmark"]

log = logging.getLogger(__name__)


def _write_cutouts(path, n, image_size, n_bands=3, seed=0, shard_size=1024):
    from ..cutouts import CutoutSet

    rng = np.random.default_rng(seed)
    for start in range(0, n, shard_size):
        m = min(shard_size, n - start)
        data = rng.normal(100, 5, size=(m, n_bands, image_size, image_size)).astype(np.float32)
        cs = CutoutSet.from_arrays(
            data, ids=[f"o{start + i}" for i in range(m)], bands=[f"b{b}" for b in range(n_bands)]
        )
        cs.to_hdf5(path, mode="w" if start == 0 else "a", shard_size=shard_size)


def _make_classifier(model_dir, cutouts, image_size, backbone):
    """A classifier with random backbone weights, set up on ``cutouts`` with public API only.

    ``fit`` with no FixMatch step builds the network for the cutouts' bands, re-estimates
    BatchNorm and warm-starts the head: scoring speed does not depend on the weights.
    """
    from ..classifier import AnomalyClassifier
    from ..cutouts import CutoutSet

    few = CutoutSet.from_arrays(cutouts[:16].data, ids=cutouts.ids[:16], bands=cutouts.bands)
    labels = {i: ("anomaly" if k == 0 else "normal") for k, i in enumerate(few.ids)}
    clf = AnomalyClassifier(backbone=backbone, pretrained=False, image_size=image_size)
    clf.fit(few, labels, iterations=0, progress=False)
    clf.save(model_dir, overwrite=True)  # the benchmark's own scratch model, reused with its workdir
    return clf


_RSS_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from anomalymatch_astro.classifier import AnomalyClassifier
    from anomalymatch_astro.scoring import score_cutouts
    clf = AnomalyClassifier.load(sys.argv[1])
    scores = score_cutouts(clf, sys.argv[2], batch_size=int(sys.argv[3]), num_workers=0, progress=False)
    print(json.dumps({"n": len(scores), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def _peak_rss(model_dir, path, batch_size):
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, model_dir, path, str(batch_size)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def run_throughput_benchmark(
    *,
    n=2048,
    image_size=64,
    batch_size=256,
    n_bands=3,
    backbone="tf_efficientnet_lite0",
    num_workers=1,
    rss=True,
    dask=True,
    workdir=None,
    progress=True,
):
    """Measure scoring throughput and memory, side by side.

    Parameters
    ----------
    n : int, optional
        Cutouts in the small set (the memory check also scores 10 n).
    image_size : int, optional
        Cutout and network size in pixels.
    batch_size : int, optional
        Batch size of both paths.
    n_bands : int, optional
        Bands per cutout.
    backbone : str, optional
        timm model (random weights: speed does not depend on them).
    num_workers : int, optional
        Loader workers of the full path.
    rss, dask : bool, optional
        Run the memory and the Dask parts.
    workdir : str, optional
        Where to write the cutout files (default: a temporary directory).
    progress : bool, optional
        Progress bars.

    Returns
    -------
    dict
        ``full_path_images_per_s``, ``bare_forward_images_per_s``, ``full_path_vs_forward``,
        ``peak_rss_mb_small``, ``peak_rss_mb_10x``, ``rss_ratio_10x``, ``dask_1_worker_images_per_s``,
        ``dask_2_workers_images_per_s``, ``dask_2_workers_vs_1``, ``image_size``, ``batch_size``,
        ``device``, ``n``, ``cpu_count``, ``torch_threads``, and the normaliser per core
        (``normalizer_rates``): ``normalizer_numpy_per_core_per_s``,
        ``normalizer_torch_per_core_per_s``, ``normalizer_torch_vs_numpy``, ``normalizer_size``.
        The storage stages per core (``storage_rates``): ``storage_write_float32_lzf_per_s``,
        ``storage_read_float32_lzf_per_s``, ``storage_write_fast_per_s``, ``storage_read_fast_per_s``,
        ``storage_write_fast_vs_float32_lzf``, ``storage_read_fast_vs_float32_lzf``, ``storage_fast_layout``.
    """
    import torch

    from ..cutouts import CutoutSet
    from ..scoring import score_cutouts

    tmp = tempfile.TemporaryDirectory(prefix="amast_throughput_") if workdir is None else None
    workdir = tmp.name if tmp is not None else workdir
    os.makedirs(workdir, exist_ok=True)
    try:
        small = os.path.join(workdir, f"cutouts_{n}.h5")
        if not os.path.exists(small):
            _write_cutouts(small, n, image_size, n_bands)
        model_dir = os.path.join(workdir, "model")
        cutouts = CutoutSet.from_hdf5(small)
        clf = _make_classifier(model_dir, cutouts, image_size, backbone)
        device = str(clf.device)

        # bare forward: the same model on an already prepared batch, same batch size, same process,
        # and on a GPU the same settings as the full path (channels-last, bf16 autocast)
        x = torch.rand(batch_size, n_bands, image_size, image_size)
        if clf.device.type == "cuda":
            x = x.pin_memory()
        bare = _bare_forward_rate(clf, x, max(1, n // batch_size))

        score_cutouts(clf, cutouts[:batch_size], batch_size=batch_size, progress=False)  # warm-up
        t0 = time.perf_counter()
        score_cutouts(clf, cutouts, batch_size=batch_size, num_workers=num_workers, progress=progress)
        full = n / (time.perf_counter() - t0)
        result = {
            "full_path_images_per_s": full,
            "bare_forward_images_per_s": bare,
            "full_path_vs_forward": full / bare,
            "image_size": image_size,
            "batch_size": batch_size,
            "device": device,
            "n": n,
            "num_workers": num_workers,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        }

        if rss:
            big = os.path.join(workdir, f"cutouts_{10 * n}.h5")
            if not os.path.exists(big):
                _write_cutouts(big, 10 * n, image_size, n_bands)
            result["peak_rss_mb_small"] = _peak_rss(model_dir, small, batch_size)
            result["peak_rss_mb_10x"] = _peak_rss(model_dir, big, batch_size)
            result["rss_ratio_10x"] = result["peak_rss_mb_10x"] / result["peak_rss_mb_small"]

        result.update(normalizer_rates())
        result.update(storage_rates(workdir=workdir, n=min(n, 1024)))
        if dask:
            result.update(_dask_scaling(clf, small, batch_size, model_dir))
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def normalizer_rates(*, size=150, n_bands=3, batch=64, repeat=3):
    """Cutouts/s on one thread of the numpy `Normalizer` and of its torch version (CPU), side by side.

    Default settings (asinh, 99.5 % percentile interval per band) on ``batch`` cutouts of
    ``size`` pixels; the torch thread count is set to 1 for the measurement and restored.
    """
    import torch

    from ..normalization import Normalizer, normalize_tensor

    data = np.random.default_rng(0).normal(100, 5, size=(batch, n_bands, size, size)).astype(np.float32)
    tensor = torch.from_numpy(data)
    norm = Normalizer()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rates = {}
        for name, fn in (("numpy", lambda: norm(data)), ("torch", lambda: normalize_tensor(tensor, norm))):
            fn()  # warm-up
            t0 = time.perf_counter()
            for _ in range(repeat):
                fn()
            rates[name] = repeat * batch / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return {
        "normalizer_numpy_per_core_per_s": rates["numpy"],
        "normalizer_torch_per_core_per_s": rates["torch"],
        "normalizer_torch_vs_numpy": rates["torch"] / rates["numpy"],
        "normalizer_size": size,
    }


def storage_rates(*, workdir, n=1024, size=150, n_bands=3, batch_size=256, fast=("float16", "bitshuffle-lz4")):
    """Write and read stages alone, cutouts/s on this core: float32-lzf (the default) vs the ``fast`` layout.

    The read stage is ``iter_batches`` over a lazy set, as the Dask scorer reads.  The fast
    layout is ``(dtype, compression)`` of `CutoutSet.to_hdf5`; without ``hdf5plugin`` its
    compression falls back to None.
    """
    import torch  # noqa: F401 -- the float16 casts run in torch: its import is not timed (loaders have it)

    from ..cutouts import CutoutSet

    try:
        import hdf5plugin  # noqa: F401
    except ImportError:
        fast = (fast[0], None)
    data = np.random.default_rng(0).normal(100, 5, size=(n, n_bands, size, size)).astype(np.float32)
    cutouts = CutoutSet.from_arrays(data, ids=[f"s{i}" for i in range(n)], bands=[f"b{b}" for b in range(n_bands)])
    rates = {}
    for name, (dtype, compression) in (("float32_lzf", ("float32", "lzf")), ("fast", fast)):
        path = os.path.join(workdir, f"storage_{name}.h5")
        t0 = time.perf_counter()
        cutouts.to_hdf5(path, overwrite=True, dtype=dtype, compression=compression)
        rates[f"storage_write_{name}_per_s"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in CutoutSet.from_hdf5(path).iter_batches(batch_size=batch_size):
            pass
        rates[f"storage_read_{name}_per_s"] = n / (time.perf_counter() - t0)
        os.remove(path)
    for stage in ("write", "read"):
        rates[f"storage_{stage}_fast_vs_float32_lzf"] = (
            rates[f"storage_{stage}_fast_per_s"] / rates[f"storage_{stage}_float32_lzf_per_s"]
        )
    rates["storage_fast_layout"] = f"{fast[0]}-{fast[1]}"
    return rates


def _bare_forward_rate(clf, x, n_batches):
    with clf.inference() as predict:  # the full path's settings: on a GPU channels-last + bf16
        for _ in range(2):  # warm-up (cuDNN picks its algorithms here)
            predict(x).cpu()
        t0 = time.perf_counter()
        for _ in range(n_batches):
            predict(x).cpu()
        return n_batches * len(x) / (time.perf_counter() - t0)


def _dask_scaling(clf, path, batch_size, model_dir):
    from ..cutouts import CutoutSet
    from ..scoring import score_cutouts_dask

    try:
        import distributed
    except ImportError:
        log.warning("distributed is not installed: the Dask part of the benchmark is skipped")
        return {}
    rates = {}
    cutouts = CutoutSet.from_hdf5(path)
    for n_workers in (1, 2):
        with (
            distributed.LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1"
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            kwargs = {"client": client, "batch_size": batch_size, "model_dir": model_dir, "threads_per_task": 1}
            score_cutouts_dask(clf, cutouts, progress=False, **kwargs)  # warm-up: every worker loads the model
            t0 = time.perf_counter()
            score_cutouts_dask(clf, cutouts, progress=False, **kwargs)
            rates[n_workers] = len(cutouts) / (time.perf_counter() - t0)
    return {
        "dask_1_worker_images_per_s": rates[1],
        "dask_2_workers_images_per_s": rates[2],
        "dask_2_workers_vs_1": rates[2] / rates[1],
    }
