"""Mining throughput against the local DaCHS mosaic: 1 vs 2 Dask workers, and where the time goes.

``archives.mine`` scans the whole ``ammosaic`` field (0.30 x 0.30 deg, 3 bands, 412 sources)
plus some empty sky around it, cell by cell (order 9, 6.9 arcmin cells): SIA 2 query, SODA
cut-out of every tile that meets the cell in each band, TAP query of the sources, cutting
and scoring with a small untrained EfficientNet-Lite0 (64 px cutouts, CPU).  Each run
starts from an empty workdir and an empty download cache, on a LocalCluster of 1 or 2
worker processes (1 thread each).  Reported: cells per minute and cutouts per second (wall
time of the whole call, cluster start included), and the share of the summed per-cell time
spent waiting on the service (queries, downloads, rate-limit waits) against computing
(cutting, scoring); also the cells' own span (first cell start to last cell end, without the
cluster's start and stop), the CPU seconds of the ``dachs serve`` process, and the 1-minute
load average at the start (the machine is shared: compare runs at similar load).

Run: ``.venv/bin/python benchmarks/bench_mining.py [--repeats 2] [--rate-limit 0]`` with the
DaCHS server of ``.ci/dachs_setup.sh`` running.
"""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from astropy import units as u

from anomalymatch_astro import AnomalyClassifier, CutoutSet
from anomalymatch_astro.archives import VOSurvey, mine

BASE = "http://127.0.0.1:8099"
REGION = ((150.10, 2.20), 0.40 * u.deg, 0.40 * u.deg)


def model(folder):
    import numpy as np

    rng = np.random.default_rng(0)
    cs = CutoutSet.from_arrays(rng.normal(size=(8, 3, 64, 64)).astype(np.float32), bands=["g", "r", "i"])
    clf = AnomalyClassifier(pretrained=False, image_size=64, batch_size=2, mu=1, seed=0, head_init="small")
    clf.fit(cs, {"obj0": "anomaly", "obj1": "normal"}, iterations=1, progress=False)
    path = Path(folder) / "model"
    clf.save(path)
    return str(path)


def dachs_cpu():
    """CPU seconds used so far by the local ``dachs serve`` process (None when it is not found)."""
    import os

    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"dachs\0serve" not in f.read():
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    return None


def cluster_start(n_workers):
    """Seconds to start and close a LocalCluster of ``n_workers`` processes (part of every run's wall time)."""
    import distributed

    t0 = time.perf_counter()
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=":0") as cluster:
        with distributed.Client(cluster):
            pass
    return round(time.perf_counter() - t0, 2)


def run_once(n_workers, folder, model_path, rate_limit):
    survey = VOSurvey(
        f"{BASE}/__system__/siap2/sitewide/siap2.xml",
        bands=["g", "r", "i"],
        collection="ammosaic",
        tap_url=f"{BASE}/tap",
        tap_table="ammosaic.sources",
        id_column="source_id",
        cache_dir=Path(folder) / f"cache-{n_workers}",
        rate_limit=rate_limit,
    )
    wd = Path(folder) / f"wd-{n_workers}"
    shutil.rmtree(wd, ignore_errors=True)
    shutil.rmtree(Path(folder) / f"cache-{n_workers}", ignore_errors=True)
    cpu0, load = dachs_cpu(), os.getloadavg()[0]
    t0 = time.perf_counter()
    result = mine(
        survey,
        REGION,
        scorer=AnomalyClassifier.load(model_path),
        workdir=wd,
        size=64,
        n_workers=n_workers,
        processes=True,
        progress=False,
    )
    wall = time.perf_counter() - t0
    cpu1 = dachs_cpu()
    # the cells' own span (first start to last end), without the cluster's start and stop
    records = [json.loads(p.read_text()) for p in wd.glob("cells/*/*/*.json")]
    span = max(r["started"] + r["seconds"] for r in records) - min(r["started"] for r in records)
    s = result.summary
    return {
        "workers": n_workers,
        "cells": result.ran,
        "done": s["done"],
        "nodata": s["nodata"],
        "failed": s["failed"],
        "cutouts": s["cutouts"],
        "wall_s": round(wall, 2),
        "cells_per_min": round(60 * result.ran / wall, 1),
        "cutouts_per_s": round(s["cutouts"] / wall, 1),
        "service_share": round(s["service_s"] / max(s["service_s"] + s["compute_s"], 1e-9), 3),
        "service_s": round(s["service_s"], 2),
        "compute_s": round(s["compute_s"], 2),
        "cells_span_s": round(span, 2),
        "cells_per_min_in_span": round(60 * result.ran / span, 1),
        "server_cpu_s": None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 2),
        "load_1min": round(load, 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rate-limit", type=float, default=0.0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        model_path = model(folder)
        print(json.dumps({"cluster_start_s": {n: cluster_start(n) for n in (1, 2)}}))
        for _ in range(args.repeats):
            for n in (1, 2):
                rows.append(run_once(n, folder, model_path, args.rate_limit))
                print(json.dumps(rows[-1]))
    best = {n: min((r for r in rows if r["workers"] == n), key=lambda r: r["wall_s"]) for n in (1, 2)}
    ratio = best[2]["cells_per_min"] / best[1]["cells_per_min"]
    print(f"2 workers / 1 worker: {ratio:.2f}x cells per minute (best of {args.repeats})")


if __name__ == "__main__":
    main()
