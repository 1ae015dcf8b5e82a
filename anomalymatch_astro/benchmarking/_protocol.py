"""The benchmark protocol (BENCHMARKS.md) on every offline set, every method side by side.

For each set, anomaly class and seed: the start labels (``n_anomalies`` anomalies and
``n_normals`` normals), an initial training, then ``cycles`` simulated active-learning
cycles (the 10 top-scored true anomalies and 10 top-scored false positives labelled,
then retrained).  Metrics are measured on the objects not labelled at that point.

Methods (the session with one setting each):

``probe``      the linear probe: class-balanced logistic regression on frozen embeddings
``knn``        similarity to the labelled anomalies in embedding space
``spreading``  label spreading on the embeddings' kNN graph (semi-supervised)
``ensemble``   the session's fast head (rank average of the probe and kNN)
``ensemble_rot`` the same on rotation-averaged embeddings (mean over the 8 rotations and
               flips of each cutout: the sky has no up)
``multilevel`` the session's default: ``ensemble_rot`` with the pooled features of the
               backbone's last two stages added as two more levels (probe and kNN on each)
``fixmatch``   FixMatch fine-tuning of the EfficientNet
``both``       FixMatch and the fast head, combined by rank averaging (the session's default)

Variants (``VARIANTS``) change one option around the method: ``mask`` (neighbour masking in
the set, `~anomalymatch_astro.cutouts.mask_neighbours`), ``background`` (local sky subtraction,
``Normalizer(background="annulus")``), ``group`` (the top lists counted one per system) and
``crop`` (32-pixel cutouts instead of 64: the network sees the central object twice as large
and fewer neighbours; real-sky sets only; the anomalies are injected around other hosts, as
hosts must lie half a cutout from each other and the edges), ``zoom`` (the same 64-pixel cutouts,
the session's ``zoom=(0.5,)``: embeddings of their central half appended to those of the full
view), ``zoom2`` (``zoom=(0.5, 0.375)``) and ``profile`` (``zoom=(0.5,)`` and ``profile=True``: the
radial residual profile, `~anomalymatch_astro.embeddings.profile_features`, appended);
``mask_zoom`` and ``mask_profile`` are ``zoom`` and ``profile`` on neighbour-masked cutouts,
``mask_blend`` is ``mask_profile`` with each source's touching deblended pieces kept
(``mask_neighbours(..., keep_blended=True)``).
On sets with ``system`` and ``artefact`` columns (the real-sky sets ``xdf_*``) every cycle also
records ``distinct_top50`` and ``artefacts_top24`` (see `~anomalymatch_astro.active_learning.simulate_oracle`).
"""

import logging
import os

import numpy as np
from astropy.table import Table

from ..utils.exceptions import InvalidInputError
from ._cycles import METHODS, VARIANTS, _held_out_mask, _load, _run_one  # noqa: F401 (_held_out_mask: tests)

__all__ = [
    "run_protocol",
    "summarize_protocol",
    "compare_strategies",
    "PROTOCOLS",
    "LOCAL_PROTOCOLS",
    "METHODS",
    "VARIANTS",
]

log = logging.getLogger(__name__)

#: set name -> (anomaly classes, start anomalies, start normals, set options)
PROTOCOLS = {
    "digits": ((0, 3, 8), 5, 100, {"anomaly_fraction": 0.02, "image_size": 32}),
    "morphology": (
        ("spiral", "edge_on_disk", "smooth_cigar", "smooth_round"),
        10,
        30,
        {"anomaly_fraction": 0.25, "n_per_class": 250},
    ),
    "mock_survey": ((None,), 5, 50, {"n_objects": 1500}),
    "lens": ((None,), 5, 100, {"n_objects": 1500}),
    # real sky (the Hubble XDF, ~1000 sources, 40 injected anomalies = 4 %): half of the set held
    # out (the paper's test split), so that the metrics of every cycle are on the same objects
    "xdf_arcs": (("arcs",), 5, 100, {"n_anomalies": 40, "held_out": 0.5}),
    "xdf_mergers": (("mergers",), 5, 100, {"n_anomalies": 40, "held_out": 0.5}),
    "xdf_trails": (("trails",), 5, 100, {"n_anomalies": 40, "held_out": 0.5}),
    "xdf_colour": (("colour",), 5, 100, {"n_anomalies": 40, "held_out": 0.5}),
}

#: sets read from the user's own copies (``local_data``): (anomaly classes, start anomalies, start
#: normals, set options), as in the AnomalyMatch paper.  miniImageNet's anomaly classes are the first
#: ``N_IMAGE_FOLDER_CLASSES`` class folders (sorted by name); all other classes are the normals.
LOCAL_PROTOCOLS = {
    "galaxy_mnist": (
        ("smooth_round", "smooth_cigar", "edge_on_disk", "unbarred_spiral"),
        10,
        30,
        {"anomaly_fraction": 0.25, "split": "both"},
    ),
    "miniimagenet": (None, 5, 495, {"anomaly_fraction": 0.01, "image_size": 84}),
}
N_IMAGE_FOLDER_CLASSES = 5

_QUICK = {
    "digits": {"anomaly_fraction": 0.02, "image_size": 32},
    "morphology": {"n_per_class": 80},
    "mock_survey": {"n_objects": 400},
    "lens": {"n_objects": 600},
    "galaxy_mnist": {"n_per_class": 80},
    "miniimagenet": {"n_per_class": 20, "anomaly_fraction": 0.05},
    **{f"xdf_{kind}": {"n_anomalies": 30} for kind in ("arcs", "mergers", "trails", "colour")},
}


def _protocols(local_data):
    """The protocol table: the offline sets, plus the copies found under ``local_data``."""
    protocols = dict(PROTOCOLS)
    if local_data is None:
        return protocols
    from ..datasets import GALAXY_MNIST_FILES, find_local_sets, image_folder_classes

    found = find_local_sets(local_data)
    if not found:
        msg = (
            f"no GalaxyMNIST or miniImageNet copy was found under {str(local_data)!r}; see the "
            "'Your own copies of GalaxyMNIST and miniImageNet' section of the datasets docs for the layouts"
        )
        raise InvalidInputError(msg)
    for name, path in found.items():
        classes, n_anom, n_norm, options = LOCAL_PROTOCOLS[name]
        if classes is None:
            classes = image_folder_classes(path)[:N_IMAGE_FOLDER_CLASSES]
        options = {**options, "path": str(path)}
        if name == "galaxy_mnist" and path.is_dir():  # both splits when both files are there
            have = [split for split, file in GALAXY_MNIST_FILES.items() if (path / file).is_file()]
            options["split"] = "both" if len(have) == 2 else have[0]
        elif name == "galaxy_mnist":
            options.pop("split")
        protocols[name] = (classes, n_anom, n_norm, options)
        log.info("local copy of %s: %s (anomaly classes %s)", name, path, ", ".join(map(str, classes)))
    return protocols


def run_protocol(
    *,
    sets=None,
    seeds=(0, 1, 2),
    cycles=3,
    methods=None,
    iterations=None,
    image_size=None,
    anomaly_classes=None,
    held_out=0.0,
    quick=False,
    local_data=None,
    variants=("default",),
    output=None,
    progress=True,
):
    """Run the protocol and return one row per (set, class, seed, method, cycle).

    Parameters
    ----------
    sets : list of str, optional
        Among ``PROTOCOLS``, and ``LOCAL_PROTOCOLS`` found under ``local_data`` (default: all of them).
    seeds : sequence of int, optional
        Seeds (at least 3 for a result worth reporting).
    cycles : int, optional
        Active-learning cycles after the initial training.
    methods : list of str, optional
        Among ``METHODS`` (default: all).
    iterations : int, optional
        FixMatch iterations per training (default: the classifier's).
    image_size : int, optional
        Network input size (default: the cutout size, at most 64).
    anomaly_classes : sequence, optional
        Run only these anomaly classes of each set (compared as strings, e.g. ``["3", "spiral"]``);
        a set without any of them runs all of its classes.
    held_out : float, optional
        Fraction of each set (drawn per seed, anomalies and normals alike) that is never
        labelled and on which alone the metrics are measured, as the paper's test split.
        0 (default): the metrics are measured on every object not labelled at that point,
        so a small set (digits: about 30 anomalies) runs out of anomalies by cycle 3.  The
        real-sky sets hold out their own fraction (0.5) unless this is set.
    quick : bool, optional
        Smaller sets, first anomaly class only (a smoke run).
    local_data : str, optional
        A folder holding your own copies of GalaxyMNIST and/or miniImageNet (found with
        `~anomalymatch_astro.datasets.find_local_sets`); they join the sets as ``galaxy_mnist``
        (4 classes, 25 % anomalies, 10 + 30 start labels) and ``miniimagenet`` (the first 5 class
        folders each as the anomaly against all others, 1 %, 5 + 495 start labels).
    variants : sequence of str, optional
        Among ``VARIANTS``: each method runs once per variant (column ``variant``).
    output : str, optional
        Folder to write ``protocol.ecsv`` and ``protocol_summary.ecsv`` into; the rows so far
        are rewritten after every anomaly class and seed, so a long run that is stopped keeps them.
    progress : bool, optional
        Progress bars.

    Returns
    -------
    `~astropy.table.Table`
    """
    if not (isinstance(held_out, (int, float)) and 0 <= held_out < 1):
        msg = f"held_out must be a fraction in [0, 1), got {held_out!r}"
        raise InvalidInputError(msg)
    protocols = _protocols(local_data)
    sets = list(sets or protocols)
    methods = list(methods or METHODS)
    for name in sets:
        if name not in protocols:
            hint = (
                " (galaxy_mnist and miniimagenet need --local-data pointing at your copies)"
                if name in LOCAL_PROTOCOLS
                else ""
            )
            msg = f"unknown benchmark set {name!r}; choose from {list(protocols)}{hint}"
            raise InvalidInputError(msg)
    for m in methods:
        if m not in METHODS:
            msg = f"unknown method {m!r}; choose from {list(METHODS)}"
            raise InvalidInputError(msg)
    variants = list(variants or ("default",))
    for v in variants:
        if v not in VARIANTS:
            msg = f"unknown variant {v!r}; choose from {list(VARIANTS)}"
            raise InvalidInputError(msg)
    rows = []
    for name in sets:
        classes, n_anom, n_norm, options = protocols[name]
        if anomaly_classes is not None:
            wanted = {str(c) for c in anomaly_classes}
            classes = tuple(c for c in classes if str(c) in wanted) or classes
        if quick:
            classes, options = classes[:1], {**options, **_QUICK[name]}
        for anomaly_class in classes:
            for seed in seeds:
                cache = {}  # the set and embeddings of one seed, shared by the variants that allow it
                for variant in variants:
                    rows += _run_one(
                        name,
                        anomaly_class,
                        seed,
                        variant,
                        options,
                        n_anom,
                        n_norm,
                        methods,
                        held_out,
                        cycles=cycles,
                        iterations=iterations,
                        image_size=image_size,
                        progress=progress,
                        cache=cache,
                    )
                if output is not None:  # after every seed: a stopped run keeps what it did
                    _write_results(rows, output)
    if output is not None and not rows:
        _write_results(rows, output)
    table = Table(rows=rows)
    table.meta["summary"] = summarize_protocol(table)
    return table


def _write_results(rows, output):
    table = Table(rows=rows)
    os.makedirs(output, exist_ok=True)
    table.write(os.path.join(output, "protocol.ecsv"), overwrite=True)
    summarize_protocol(table).write(os.path.join(output, "protocol_summary.ecsv"), overwrite=True)


def summarize_protocol(table):
    """Mean and standard deviation over seeds and anomaly classes, per set, method and cycle."""
    out = []
    variant = table["variant"] if "variant" in table.colnames else np.full(len(table), "default")
    keys = sorted(
        {(r["set"], r["method"], v, int(r["cycle"])) for r, v in zip(table, variant)},
        key=lambda k: (k[0], k[3], k[1], k[2]),
    )
    for name, method, var, cycle in keys:
        sel = (table["set"] == name) & (table["method"] == method) & (table["cycle"] == cycle) & (variant == var)
        row = {
            "set": name,
            "method": method,
            "variant": var,
            "cycle": cycle,
            "n_runs": int(sel.sum()),
            "held_out": float(np.max(table["held_out"][sel])) if "held_out" in table.colnames else 0.0,
            "anomaly_fraction": float(np.mean(table["anomaly_fraction"][sel])),
        }
        metrics = ["auroc", "auprc", "precision_at_1pct", "found_in_first_100"]
        metrics += [m for m in ("distinct_top50", "artefacts_top24") if m in table.colnames]
        for metric in metrics:
            values = np.asarray(table[metric][sel], dtype=float)
            values = values[np.isfinite(values)]  # cycles after every anomaly was found are NaN
            row[f"{metric}_mean"] = float(np.mean(values)) if len(values) else np.nan
            row[f"{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        row["train_seconds_mean"] = float(np.mean(table["train_seconds"][sel]))
        out.append(row)
    return Table(rows=out)


def compare_strategies(
    *,
    sets=("digits", "mock_survey"),
    strategies=("top", "uncertainty", "diversity", "mix"),
    seeds=(0, 1, 2),
    cycles=3,
    n_per_cycle=20,
    quick=False,
    output=None,
):
    """Anomalies found after each cycle when a person labels ``n_per_cycle`` candidates of one strategy.

    The truth stands in for the person: every candidate shown is labelled what it is
    (so every strategy pays for its false positives), then the session retrains in
    ``"fast"`` mode on cached embeddings.

    Parameters
    ----------
    sets : sequence of str, optional
        Among ``PROTOCOLS`` (first anomaly class of each).
    strategies : sequence of str, optional
        Candidate strategies of `~anomalymatch_astro.ActiveLearningSession.candidates`.
    seeds : sequence of int, optional
        Seeds.
    cycles : int, optional
        Labelling cycles.
    n_per_cycle : int, optional
        Candidates labelled per cycle.
    quick : bool, optional
        Smaller sets.
    output : str, optional
        Folder for ``strategies.ecsv``.

    Returns
    -------
    `~astropy.table.Table`
        set, strategy, seed, cycle, n_shown, anomalies_found (in the candidates shown so far).
    """
    from ..active_learning import ActiveLearningSession
    from ..classifier import AnomalyClassifier
    from ..datasets import start_labels

    rows = []
    for name in sets:
        classes, n_anom, n_norm, options = PROTOCOLS[name]
        if quick:
            options = {**options, **_QUICK[name]}
        for seed in seeds:
            cutouts = _load(name, classes[0], seed, options)
            truth = np.asarray(cutouts.table["is_anomaly"], dtype=bool)
            is_anomaly = dict(zip(cutouts.ids, truth))
            labels = start_labels(truth, ids=cutouts.ids, n_anomalies=n_anom, n_normals=n_norm, seed=seed)
            embeddings = blocks = None
            for strategy in strategies:
                session = ActiveLearningSession(
                    cutouts,
                    labels=labels,
                    classifier=AnomalyClassifier(image_size=min(64, cutouts.image_shape[0]), seed=seed),
                    default_mode="fast",
                    embeddings=embeddings,
                    embedding_blocks=blocks,
                )
                session.train(progress=False)
                embeddings, blocks = session.embeddings, session.embedding_blocks
                found = shown = 0
                for cycle in range(1, cycles + 1):
                    ids = [str(i) for i in session.candidates(n_per_cycle, strategy=strategy)["id"]]
                    if not ids:
                        break
                    shown += len(ids)
                    found += int(sum(is_anomaly[i] for i in ids))
                    session.label({i: "anomaly" if is_anomaly[i] else "normal" for i in ids}, source="oracle")
                    session.train(progress=False)
                    rows.append(
                        {
                            "set": name,
                            "strategy": strategy,
                            "seed": seed,
                            "cycle": cycle,
                            "n_shown": shown,
                            "anomalies_found": found,
                            "anomalies_available": int(truth.sum()) - n_anom,
                        }
                    )
                session.close()
    table = Table(rows=rows)
    if output is not None:
        os.makedirs(output, exist_ok=True)
        table.write(os.path.join(output, "strategies.ecsv"), overwrite=True)
    return table
