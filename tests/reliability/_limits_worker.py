"""Run reads of hostile files under a memory cap and a time limit; record the outcome, time and peak memory.

Usage: ``python _limits_worker.py cases.json results.jsonl cap_bytes``.  Every reader is
imported first; then the address space is capped at its size plus ``cap_bytes``
(``RLIMIT_AS``), and each case runs with an alarm.  One JSON line per case is appended
(and flushed) to the results, so a crash names the case that was running.
"""

import json
import os
import resource
import signal
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the peak resident memory
    except OSError:
        pass


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


def _readers():
    import numpy as np
    import torch
    from astropy.io import fits

    from anomalymatch_astro import ActiveLearningSession, CutoutSet
    from anomalymatch_astro.archives._votable import parse_votable
    from anomalymatch_astro.catalogs import import_astronomaly_labels, read_table
    from anomalymatch_astro.classifier import AnomalyClassifier
    from anomalymatch_astro.cutouts import parse_image
    from anomalymatch_astro.embeddings import EmbeddingCache
    from anomalymatch_astro.scoring._store import ScoreStore
    from anomalymatch_astro.utils import parse_labels

    torch.set_num_threads(1)

    def fits_path(case):
        image = parse_image(case["path"])
        try:
            return np.asarray(image.data[:8, :8]).shape
        finally:
            image.close()

    def fits_hdulist(case):
        with fits.open(case["path"]) as hdul:
            return np.asarray(parse_image(hdul).data[:8, :8]).shape

    def cutouts_h5(case):
        cs = CutoutSet.from_hdf5(case["path"])
        return cs[:1].data.shape

    return {
        "fits_path": fits_path,
        "fits_hdulist": fits_hdulist,
        "cutouts_h5": cutouts_h5,
        "session": lambda case: ActiveLearningSession.open(case["path"]),
        "labels": lambda case: len(parse_labels(case["path"])),
        "checkpoint": lambda case: AnomalyClassifier.load(case["path"]).model_hash,
        "score_store": lambda case: (
            ScoreStore(case["path"], n=case["n"], batch_size=case["batch_size"], key=case["key"]).complete
        ),
        "embedding_cache": lambda case: EmbeddingCache(case["path"]).keys(),
        "catalog": lambda case: len(read_table(case["path"])),
        "votable": lambda case: parse_votable(open(case["path"], "rb").read(), source=case["path"]),
        "astronomaly": lambda case: import_astronomaly_labels(case["path"]),
    }


def main(cases_path, results_path, cap):
    from anomalymatch_astro.utils.exceptions import AnomalyMatchError

    with open(cases_path) as f:
        cases = json.load(f)
    readers = _readers()
    baseline_vm = _status("VmSize")
    resource.setrlimit(resource.RLIMIT_AS, (baseline_vm + cap, baseline_vm + cap))
    signal.signal(signal.SIGALRM, _alarm)
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)
    with open(results_path, "a") as out:
        for case in cases:
            out.write(json.dumps({"start": case["id"]}) + "\n")
            out.flush()
            rss0 = _status("VmRSS")
            _reset_peak()
            signal.alarm(int(case.get("alarm", 20)))
            t0 = time.perf_counter()
            try:
                readers[case["reader"]](case)
                outcome, error = "accepted", ""
            except AnomalyMatchError as exc:
                outcome, error = "refused", f"{type(exc).__name__}: {str(exc)[:300]}"
            except _Hang:
                outcome, error = "hang", ""
            except BaseException as exc:  # noqa: BLE001 -- what escaped is the finding
                outcome, error = "escaped", f"{type(exc).__name__}: {str(exc)[:300]}"
            finally:
                signal.alarm(0)
            seconds = time.perf_counter() - t0
            record = {
                "id": case["id"],
                "outcome": outcome,
                "error": error,
                "seconds": seconds,
                "peak_rss": _status("VmHWM"),
                "rss_before": rss0,
                "baseline_vm": baseline_vm,
            }
            out.write(json.dumps(record) + "\n")
            out.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
