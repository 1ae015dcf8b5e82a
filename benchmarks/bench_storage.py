"""CutoutSet storage layouts: write stage and read stage alone, in cutouts/s per core.

Writes the same in-memory set of N cutouts (default 4,000 of 150 px x 3 bands, sky noise
around 100 with a few bright sources) with each layout of `CutoutSet.to_hdf5`, then reads it
back in batches of 256 the two ways the package reads: in order (`iter_batches`, the Dask
scorer) and ``cutouts[rows].data`` on consecutive row blocks (the scoring loader's workers).
Run it on one core for per-core numbers::

    OMP_NUM_THREADS=1 BLOSC_NTHREADS=1 taskset -c 0 python benchmarks/bench_storage.py

Usage: python benchmarks/bench_storage.py [--n 4000] [--size 150] [--workdir /tmp/amast_bench_storage]
"""

import argparse
import os
import time

import numpy as np

from anomalymatch_astro import CutoutSet

#: (name, dtype, compression, chunk_rows); None: the default chunking of the compressor.
LAYOUTS = (
    ("float32-lzf (default)", "float32", "lzf", None),
    ("float16-lzf", "float16", "lzf", None),
    ("float16-lzf-32", "float16", "lzf", 32),
    ("float16-bitshuffle-lz4", "float16", "bitshuffle-lz4", None),
    ("float16-blosc2-lz4", "float16", "blosc2-lz4", None),
    ("float16-blosc2-zstd", "float16", "blosc2-zstd", None),
    ("float16-zstd", "float16", "zstd", None),
    ("float32-bitshuffle-lz4", "float32", "bitshuffle-lz4", None),
    ("float16-none", "float16", None, 32),
    ("float32-none", "float32", None, 32),
)


def synthetic_cutouts(n, size, n_bands=3, seed=0):
    """Sky noise (100 +- 5) with one Gaussian source per cutout, float32."""
    rng = np.random.default_rng(seed)
    data = rng.normal(100, 5, size=(n, n_bands, size, size)).astype(np.float32)
    yy, xx = np.mgrid[:size, :size] - size / 2
    blob = (2000 * np.exp(-(xx**2 + yy**2) / (2 * 3.0**2))).astype(np.float32)
    data += blob
    return CutoutSet.from_arrays(data, ids=[f"o{i}" for i in range(n)], bands=[f"b{b}" for b in range(n_bands)])


def measure(cutouts, path, *, dtype, compression, chunk_rows, batch_size=256):
    """Write and read rates (cutouts/s) and the file's compression ratio against float32."""
    n = len(cutouts)
    t0 = time.perf_counter()
    cutouts.to_hdf5(path, overwrite=True, dtype=dtype, compression=compression, chunk_rows=chunk_rows)
    write = n / (time.perf_counter() - t0)
    ratio = cutouts.data.nbytes / os.path.getsize(path)
    lazy = CutoutSet.from_hdf5(path)
    t0 = time.perf_counter()
    for _ in lazy.iter_batches(batch_size=batch_size):
        pass
    read_iter = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        _ = lazy[np.arange(start, min(start + batch_size, n))].data
    read_rows = n / (time.perf_counter() - t0)
    return write, read_iter, read_rows, ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--workdir", default="/tmp/amast_bench_storage")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    import torch  # noqa: F401 -- float16 casts run in torch: import it once, before timing (loaders have it)

    cutouts = synthetic_cutouts(args.n, args.size)
    print(f"{args.n} cutouts of {args.size} px x 3 bands; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} ")
    print(f"BLOSC_NTHREADS={os.environ.get('BLOSC_NTHREADS')}, CPUs available {len(os.sched_getaffinity(0))}")
    print(f"{'layout':<24} {'write/s':>8} {'read/s':>8} {'rows/s':>8} {'ratio':>6}")
    base = None
    for name, dtype, compression, chunk_rows in LAYOUTS:
        path = os.path.join(args.workdir, f"{name.split()[0]}.h5")
        w, r, rr, ratio = measure(cutouts, path, dtype=dtype, compression=compression, chunk_rows=chunk_rows)
        base = base or (w, r)
        gain = f"(x{w / base[0]:.1f} write, x{r / base[1]:.1f} read)"
        print(f"{name:<24} {w:8.0f} {r:8.0f} {rr:8.0f} {ratio:6.2f}   {gain}", flush=True)
        os.remove(path)


if __name__ == "__main__":
    main()
