"""The end-to-end demo behind ``anomalymatch-astro demo``: survey -> cutouts -> active learning -> catalogue.

Everything is offline and deterministic for a given seed.  The steps:

1. `~anomalymatch_astro.datasets.make_mock_survey`: a g, r, i survey on three different
   pixel grids, with injected lenses, mergers, artefacts and odd colours;
2. `~anomalymatch_astro.make_cutouts`: 64-pixel cutouts, every band on the g grid,
   written as an HDF5 CutoutSet, and a gallery;
3. an `~anomalymatch_astro.ActiveLearningSession` started from 5 labelled anomalies and
   some normals, trained, then 3 simulated active-learning cycles (the paper's protocol:
   the top-scored true anomalies and false positives are labelled each cycle);
4. the scored catalogue (ECSV and FITS, with RA/Dec and score), a gallery of the top
   candidates, a score histogram, ROC and precision-recall curves.
"""

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table

__all__ = ["run_demo", "DemoResult"]

log = logging.getLogger(__name__)


#: What the demo writes into its output folder (nothing else there is ever touched).
DEMO_ENTRIES = (
    "survey",
    "cutouts.h5",
    "gallery_cutouts.png",
    "start_labels.csv",
    "session",
    "metrics.ecsv",
    "catalog.ecsv",
    "catalog.fits",
    "gallery_candidates.png",
    "score_histogram.png",
    "roc_pr.png",
)


def demo_outputs(output):
    """The demo's own entries already in ``output`` (see `DEMO_ENTRIES`).

    Parameters
    ----------
    output : str or os.PathLike
        The demo's output folder.

    Returns
    -------
    list of str
    """
    return [name for name in DEMO_ENTRIES if os.path.lexists(os.path.join(output, name))]


@contextlib.contextmanager
def _replacing(output, overwrite):
    """Run the demo into ``output``: refuse an earlier demo there unless ``overwrite``; undo a failed run.

    An earlier demo's entries are moved into a hidden folder while the new run writes; they are
    deleted once it succeeds, and moved back when it fails (a kill leaves them in
    ``.demo.old<pid>``, never deleted).  A folder the run created is removed when it fails.
    """
    from .utils.exceptions import InvalidInputError, OutputExistsError

    output = os.fspath(output)
    if os.path.exists(output) and not os.path.isdir(output):
        msg = f"{output!r} exists and is not a folder; choose another output folder"
        raise InvalidInputError(msg)
    present = demo_outputs(output)
    if present and not overwrite:
        msg = (
            f"{output!r} already holds a demo run ({', '.join(present)}); pass overwrite=True "
            "to replace it, or choose another output folder (it is left as it was)"
        )
        raise OutputExistsError(msg)
    created = not os.path.exists(output)
    os.makedirs(output, exist_ok=True)
    backup = os.path.join(output, f".demo.old{os.getpid()}")
    shutil.rmtree(backup, ignore_errors=True)
    if present:
        os.mkdir(backup)
        for name in present:
            os.replace(os.path.join(output, name), os.path.join(backup, name))
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(output, ignore_errors=True)
            raise
        for name in demo_outputs(output):
            target = os.path.join(output, name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target, ignore_errors=True)
            else:
                os.remove(target)
        for name in present:
            os.replace(os.path.join(backup, name), os.path.join(output, name))
        shutil.rmtree(backup, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)


@dataclass
class DemoResult:
    """What the demo made: output files, the per-cycle metrics table and timings."""

    output: str
    files: dict = field(default_factory=dict)
    metrics: Table | None = None
    n_objects: int = 0
    n_anomalies: int = 0
    seconds: dict = field(default_factory=dict)


def run_demo(
    output="anomalymatch_demo",
    *,
    n_objects=1500,
    cycles=3,
    mode=None,
    iterations=None,
    image_size=64,
    cutout_size=64,
    n_start_anomalies=5,
    n_start_normals=50,
    seed=0,
    rotation_average=True,
    stages=("survey", "cutouts", "learning", "catalog"),
    overwrite=False,
    progress=True,
):
    """Run the offline demo and write its outputs into ``output``.

    Parameters
    ----------
    output : str or os.PathLike, optional
        Output folder (created if needed; only the demo's own files in it are written, see
        `DEMO_ENTRIES`).
    n_objects : int, optional
        Catalogued objects in the mock survey.
    cycles : int, optional
        Simulated active-learning cycles after the initial training.
    mode : {"fast", "fixmatch", "both"}, optional
        Training mode of the session (default: the session's default).
    iterations : int, optional
        FixMatch iterations per training (default: the classifier's).
    image_size : int, optional
        Network input size in pixels.
    cutout_size : int, optional
        Cutout size in reference-band pixels.
    n_start_anomalies, n_start_normals : int, optional
        The labels the "astronomer" starts with.
    seed : int, optional
        Seed of the survey, the start labels and the classifier.
    rotation_average : bool, optional
        Embeddings averaged over the 8 rotations and flips of each cutout (the sky has no
        up; about 8 times the embedding time, and clearly better rankings on galaxies).
    stages : tuple of str, optional
        Which stages to run (later stages need the earlier ones).
    overwrite : bool, optional
        Replace an earlier demo run in ``output``.  Without it, a folder holding one raises
        `~anomalymatch_astro.utils.exceptions.InvalidInputError` and is left untouched.  The
        earlier run is kept aside until the new one has finished, and restored if it fails;
        a failed run into a new folder leaves nothing behind.
    progress : bool, optional
        Progress bars.

    Returns
    -------
    DemoResult
    """
    with _replacing(output, overwrite):
        return _run(
            output,
            n_objects,
            cycles,
            mode,
            iterations,
            image_size,
            cutout_size,
            n_start_anomalies,
            n_start_normals,
            seed,
            rotation_average,
            stages,
            progress,
        )


def _run(
    output,
    n_objects,
    cycles,
    mode,
    iterations,
    image_size,
    cutout_size,
    n_start_anomalies,
    n_start_normals,
    seed,
    rotation_average,
    stages,
    progress,
):
    from .cutouts import make_cutouts
    from .datasets import make_mock_survey
    from .visualization import plot_gallery

    result = DemoResult(output=os.fspath(output))
    t0 = time.perf_counter()

    survey = make_mock_survey(os.path.join(output, "survey"), n_objects=n_objects, seed=seed, progress=progress)
    truth = np.asarray(survey.catalog["is_anomaly"], dtype=bool)
    result.n_objects, result.n_anomalies = len(truth), int(truth.sum())
    result.files.update({f"image_{b}": os.fspath(p) for b, p in survey.images.items()})
    result.files["survey_catalog"] = os.fspath(survey.catalog_path)
    result.seconds["survey"] = time.perf_counter() - t0
    if "cutouts" not in stages:
        return result

    t1 = time.perf_counter()
    cutouts = make_cutouts(survey.images, survey.catalog, cutout_size, progress=progress)
    path = os.path.join(output, "cutouts.h5")
    cutouts.to_hdf5(path)
    result.files["cutouts"] = path
    rng = np.random.default_rng(seed)
    anomalies = np.flatnonzero(truth)[:16]
    normals = rng.choice(np.flatnonzero(~truth), size=16, replace=False)
    show = np.concatenate([normals, anomalies])
    kinds = {str(cutouts.ids[i]): str(cutouts.table["kind"][i]) for i in show}
    fig = plot_gallery(
        cutouts[show], labels=kinds, ncols=8, title="mock survey: 16 normal objects, then 16 injected anomalies"
    )
    result.files["gallery_cutouts"] = os.path.join(output, "gallery_cutouts.png")
    fig.savefig(result.files["gallery_cutouts"], dpi=110)
    result.seconds["cutouts"] = time.perf_counter() - t1
    if "learning" not in stages:
        return result

    from .active_learning import ActiveLearningSession, simulate_oracle
    from .classifier import AnomalyClassifier
    from .datasets import start_labels

    t2 = time.perf_counter()
    labels = start_labels(truth, ids=cutouts.ids, n_anomalies=n_start_anomalies, n_normals=n_start_normals, seed=seed)
    Table({"id": list(labels), "label": list(labels.values())}).write(
        os.path.join(output, "start_labels.csv"), overwrite=True
    )
    classifier = AnomalyClassifier(image_size=image_size, seed=seed)
    session_kwargs = {} if mode is None else {"default_mode": mode}
    session = ActiveLearningSession(
        cutouts,
        labels=labels,
        classifier=classifier,
        workdir=os.path.join(output, "session"),
        rotation_average=rotation_average,
        **session_kwargs,
    )
    t_initial = time.perf_counter()
    session.train(iterations=iterations, progress=progress)  # the initial training, kept for the plots
    t_initial = time.perf_counter() - t_initial
    initial_scores = np.array(session.scores)
    initial_unlabelled = ~session.labelled_mask()
    records = simulate_oracle(session, truth, cycles=cycles, iterations=iterations, progress=progress)
    columns = (
        "cycle",
        "mode",
        "n_labelled",
        "n_anomalies_labelled",
        "auroc",
        "auprc",
        "precision_at_1pct",
        "found_in_first_100",
        "train_seconds",
    )
    # a cycle that found every anomaly ends the protocol: its metrics are NaN ("exhausted")
    result.metrics = Table(rows=[{k: r.get(k, np.nan) for k in columns} for r in records])
    result.metrics["train_seconds"][0] = t_initial
    result.metrics.write(os.path.join(output, "metrics.ecsv"), overwrite=True)
    result.files["metrics"] = os.path.join(output, "metrics.ecsv")
    result.seconds["learning"] = time.perf_counter() - t2
    if "catalog" not in stages:
        return result

    from .catalogs import write_table

    t3 = time.perf_counter()
    table = session.to_table()
    table["is_anomaly"] = truth
    for ext in ("ecsv", "fits"):
        path = os.path.join(output, f"catalog.{ext}")
        write_table(table, path, overwrite=True)  # SkyCoord and provenance survive in both formats
        result.files[f"catalog_{ext}"] = path
    scores = np.asarray(session.scores)
    labelled = session.labels
    top = np.argsort(-scores, kind="stable")[:32]  # the top of the catalogue the astronomer takes away
    tags = {}
    for i in top:
        obj_id = str(cutouts.ids[i])
        status = f"[{labelled[obj_id]}]" if obj_id in labelled else "[new]"
        tags[obj_id] = f"{status} {cutouts.table['kind'][i]}"
    systems = session.systems  # one tile per system (fragments of one object share a tile)
    fig = plot_gallery(
        cutouts[top],
        scores=scores[top],
        labels=tags,
        systems=None if systems is None else systems[top],
        ncols=8,
        title=f"top 32 of the catalogue after {cycles} cycles: [label given] or [new]; truth kind",
    )
    result.files["gallery_candidates"] = os.path.join(output, "gallery_candidates.png")
    fig.savefig(result.files["gallery_candidates"], dpi=110)
    from .visualization import plot_roc_pr, plot_score_histogram

    fig = plot_score_histogram(scores, is_anomaly=truth)
    result.files["score_histogram"] = os.path.join(output, "score_histogram.png")
    fig.savefig(result.files["score_histogram"], dpi=110)
    # ROC / PR of the initial training on the objects then unlabelled, and of the final model on
    # the objects still unlabelled (the hardest leftovers), when both classes are there
    fig = plot_roc_pr(
        initial_scores[initial_unlabelled],
        truth[initial_unlabelled],
        label=f"after the initial training ({int(initial_unlabelled.sum())} unlabelled)",
    )
    unlabelled = ~session.labelled_mask()
    if truth[unlabelled].any() and not truth[unlabelled].all():
        plot_roc_pr(
            scores[unlabelled],
            truth[unlabelled],
            ax=fig.axes[:2],
            label=f"after {cycles} cycles ({int(unlabelled.sum())} still unlabelled)",
        )
    result.files["roc_pr"] = os.path.join(output, "roc_pr.png")
    fig.savefig(result.files["roc_pr"], dpi=110)
    session.close()
    result.seconds["catalog"] = time.perf_counter() - t3
    result.seconds["total"] = time.perf_counter() - t0
    return result
