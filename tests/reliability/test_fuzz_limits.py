"""Files that declare far more than they hold, read in a subprocess under a memory cap and a time limit.

For every kind of file the package reads, `_limits_cases` writes files whose headers
declare sizes, counts, nesting or lengths far beyond their content (plus a valid control
of most kinds).  `_limits_worker` reads them all in one fresh interpreter whose address
space is capped at 3 GiB above what its imports take (``RLIMIT_AS``), with an alarm per
case.  Each must end in a package error, quickly and in bounded memory: never a hang, a
bare ``MemoryError`` / ``RecursionError``, or a crash of the process.  The time and peak
memory of every case are recorded (``ANOMALYMATCH_RELIABILITY_COUNTS``; docs/reliability.rst
quotes them).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from anomalymatch_astro import CutoutSet

from ._limits_cases import KINDS, make_cases
from .conftest import COUNTS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")

CAP = 3 * 1024**3  # address space allowed above the worker's imports
MAX_SECONDS = 5.0  # per refused case (they take well under a second; CI machines are slow and shared)
MAX_GROWTH = 512 * 1024**2  # resident memory a refused case may add
WORKER = os.path.join(os.path.dirname(__file__), "_limits_worker.py")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from anomalymatch_astro.classifier import AnomalyClassifier

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    cs = CutoutSet.from_arrays(np.random.default_rng(0).normal(size=(8, 1, 16, 16)).astype(np.float32), bands=["r"])
    clf = AnomalyClassifier(pretrained=False, image_size=16, batch_size=2, mu=1, seed=0, head_init="small")
    clf.fit(cs, {"obj0": "anomaly", "obj1": "normal", "obj2": "normal"}, iterations=1, progress=False)
    path = tmp_path_factory.mktemp("ckpt") / "model"
    clf.save(path)
    torch.set_num_threads(old)
    return path


def _run_all(cases, folder):
    """Run every case in as few worker processes as crashes allow; return {case id: result}."""
    results = {}
    pending = list(cases)
    while pending:
        (folder / "cases.json").write_text(json.dumps(pending))
        log = folder / "results.jsonl"
        log.unlink(missing_ok=True)
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        try:
            proc = subprocess.run(
                [sys.executable, WORKER, str(folder / "cases.json"), str(log), str(CAP)],
                capture_output=True,
                text=True,
                timeout=60 + 25 * len(pending),
                env=env,
                check=False,
            )
            ended = f"exit status {proc.returncode}: {proc.stderr[-2000:]}"
        except subprocess.TimeoutExpired:
            ended = "killed after the worker's time limit"
        started = None
        for line in log.read_text().splitlines() if log.exists() else []:
            record = json.loads(line)
            if "start" in record:
                started = record["start"]
            else:
                results[record["id"]] = record
                started = None
        done = {c["id"] for c in pending if c["id"] in results}
        if started is not None:  # the process died or hung inside this case
            results[started] = {"id": started, "outcome": "crash", "error": ended, "seconds": None, "peak_rss": None}
            done.add(started)
        elif len(done) < len(pending):
            pytest.fail(f"the worker ended before any case ({ended})")
        pending = [c for c in pending if c["id"] not in done]
    return results


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, checkpoint):
    """Every case and its result, read in one capped worker process (restarted only after a crash)."""
    folder = tmp_path_factory.mktemp("declared")
    cases = make_cases(folder, checkpoint)
    for i, case in enumerate(cases):
        case["id"] = i
    results = _run_all(cases, folder)
    (folder / "outcomes.json").write_text(json.dumps([{**c, **results[c["id"]]} for c in cases], indent=1))
    return [(case, results[case["id"]]) for case in cases]


#: Kinds whose readers live outside this suite's fixes; each names its failing cases (strict: fixing them fails here).
OUTSIDE = {}


@pytest.mark.parametrize(
    "kind",
    [pytest.param(k, marks=pytest.mark.xfail(reason=OUTSIDE[k], strict=True)) if k in OUTSIDE else k for k in KINDS],
)
def test_declared_sizes_are_refused_quickly_in_bounded_memory(outcomes, kind):
    failures = []
    worst = {"seconds": 0.0, "peak_mb": 0.0, "growth_mb": 0.0, "baseline_mb": 0.0}
    counts = COUNTS[f"declared sizes: {kind}"]
    for case, r in outcomes:
        if case["kind"] != kind:
            continue
        label = f"{case['kind']}: {case['name']}"
        counts[r["outcome"]] += 1
        if r["outcome"] != case["expect"]:
            failures.append(f"{label}: {r['outcome']} (expected {case['expect']}) {r['error']}")
            continue
        if case["expect"] != "refused":
            continue
        growth = r["peak_rss"] - r["rss_before"]
        if r["seconds"] > MAX_SECONDS or growth > MAX_GROWTH:
            failures.append(f"{label}: refused after {r['seconds']:.1f} s, {growth / 2**20:.0f} MiB")
        counts[f"refused:{r['error'].split(':')[0]}"] += 1
        worst["seconds"] = max(worst["seconds"], r["seconds"])
        worst["peak_mb"] = max(worst["peak_mb"], r["peak_rss"] / 2**20)
        worst["growth_mb"] = max(worst["growth_mb"], growth / 2**20)
        worst["baseline_mb"] = max(worst["baseline_mb"], r["rss_before"] / 2**20)
    assert sum(counts[o] for o in ("accepted", "refused", "escaped", "hang", "crash")) > 0, f"no case of {kind}"
    counts["worst_ms"] = round(1000 * worst["seconds"])
    counts["peak_rss_mb"] = round(worst["peak_mb"])
    counts["peak_growth_mb"] = round(worst["growth_mb"])
    counts["baseline_rss_mb"] = round(worst["baseline_mb"])
    assert not failures, "\n".join(failures)
