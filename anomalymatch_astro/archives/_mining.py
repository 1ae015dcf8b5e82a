"""`mine`: scan a region of a survey cell by cell on Dask, resumable, honest about coverage.

The region is cut into HEALPix cells (`_cells`); each cell is one task: fetch its images,
find its sources (catalogue or detection), cut, score, and write the cell's candidates and
record (`_coverage`).  The driver keeps the MOCs of done, failed and no-data cells up to
date, and at the end gathers the candidates into a HATS catalogue (`_hats`) and a table of
the best ones.  A rerun with the same workdir does only the cells that are not done (and
retries those that failed).
"""

import dataclasses
import logging
import os
import time
import uuid

import numpy as np
from astropy import units as u

from ..utils import atomic_path, progress_bar, read_json, require, write_json_atomic, write_manifest
from ..utils.exceptions import InvalidInputError
from ._cells import FINE_ORDER, cell_center_radius, cell_of, cells_moc, choose_order, parse_region, region_cells
from ._cellwork import cut_sources, detect_sources_on_images, to_arrow
from ._coverage import Coverage
from ._products import build_products

__all__ = ["mine", "MiningResult", "mining_status", "score_with"]

log = logging.getLogger(__name__)

CONFIG_FILE = "mining.json"
_FORMAT = "anomalymatch_astro.archives.mine"
#: Seconds between rewrites of the coverage MOCs while cells finish.
MOC_INTERVAL = 5.0
_FOOTPRINTS = {}


def score_with(scorer, cutouts):
    """Scores of ``cutouts`` under ``scorer``: ``scorer(cutouts)``, or ``scorer.score(cutouts)``.

    Parameters
    ----------
    scorer : callable or object with ``score``
        ``scorer(CutoutSet) -> array (N,)`` (e.g. the object of
        ``ActiveLearningSession.scorer()``), or an `~anomalymatch_astro.AnomalyClassifier`.
    cutouts : `~anomalymatch_astro.CutoutSet`

    Returns
    -------
    numpy.ndarray
        (N,) float64.
    """
    if callable(scorer):
        scores = scorer(cutouts)
    elif hasattr(scorer, "score"):
        scores = scorer.score(cutouts, progress=False)
    else:
        msg = f"scorer must be callable (CutoutSet -> scores) or have .score(); got {type(scorer).__name__}"
        raise InvalidInputError(msg)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(cutouts):
        msg = f"the scorer returned {len(scores)} scores for {len(cutouts)} cutouts"
        raise InvalidInputError(msg)
    return scores


def _scorer_id(scorer):
    for name in ("scorer_id", "model_hash"):
        value = getattr(scorer, name, None)
        if isinstance(value, str) and value:
            return value
    return f"{type(scorer).__module__}.{type(scorer).__qualname__}"


@dataclasses.dataclass
class MiningResult:
    """What `mine` did, and where its outputs are.

    Attributes
    ----------
    workdir : str
        The workdir.
    order : int
        The cell order.
    summary : dict
        Cells ``done``, ``failed``, ``nodata``, ``cells`` (in the region), ``todo`` (left),
        ``sources``, ``cutouts``, and summed per-cell seconds ``service_s`` (fetching),
        ``compute_s`` (detection, cutting, scoring).
    ran : int
        Cells run by this call.
    seconds : float
        Wall time of this call.
    top : `~astropy.table.QTable` or None
        The best-scored candidates of the whole workdir.
    paths : dict
        ``catalog`` (HATS folder), ``top`` (ECSV), ``done``/``failed``/``nodata`` (FITS MOCs),
        ``failures`` (ECSV), ``manifest``.
    """

    workdir: str
    order: int
    summary: dict
    ran: int
    seconds: float
    top: object
    paths: dict

    @property
    def cells_per_minute(self):
        """Cells finished per minute of wall time in this call."""
        return 60.0 * self.ran / self.seconds if self.seconds > 0 else float("nan")


def _pixel_scale(survey):
    fn = getattr(survey, "pixel_scale", None)
    value = fn() if callable(fn) else fn
    return None if value is None else float(u.Quantity(value, u.deg).to_value(u.deg))


def _overlaps(path, cell_moc, order):
    """True when the image's pixels meet the cell (footprint polygon at 4 orders finer)."""
    from astropy.coordinates import SkyCoord
    from mocpy import MOC

    from ._sources import image_footprint

    key = (path, order)
    if key not in _FOOTPRINTS:
        (ny, nx), wcs = image_footprint(path)
        corners = wcs.celestial.pixel_to_world([-0.5, nx - 0.5, nx - 0.5, -0.5], [-0.5, -0.5, ny - 0.5, ny - 0.5])
        _FOOTPRINTS[key] = MOC.from_polygon_skycoord(SkyCoord(corners).icrs, max_depth=min(order + 4, 29))
    return not _FOOTPRINTS[key].intersection(cell_moc).empty()


def _mine_cell(job, pix, ranges):
    """Dask task: do one cell and write its files; returns the cell's record."""
    from astropy.table import Table
    from mocpy import MOC

    survey, order, size = job["survey"], job["order"], tuple(job["size"])
    coverage = Coverage(job["workdir"], order)
    record = {"pix": int(pix), "order": order, "run": job["run"], "started": time.time(), "worker_pid": os.getpid()}
    t0 = time.perf_counter()
    service = compute = 0.0
    table = None
    try:
        center, radius = cell_center_radius(pix, order)
        t = time.perf_counter()
        images = survey.cell_images(center, radius + job["margin"])
        service += time.perf_counter() - t
        cell = cells_moc([pix], order)
        images = {b: [e for e in v if _overlaps(e["path"], cell, order)] for b, v in images.items()}
        empty = [b for b in survey.bands if not images.get(b)]
        if empty:
            record.update(status="nodata", reason=f"no image in band(s) {', '.join(empty)}")
        else:
            t = time.perf_counter()
            sources = survey.cell_sources(center, radius)
            service += time.perf_counter() - t
            t = time.perf_counter()
            if sources is None:
                sources = detect_sources_on_images(images, **job["detection"])
            region = MOC.from_depth29_ranges(FINE_ORDER, np.asarray(ranges, dtype=np.uint64).reshape(-1, 2))
            ra, dec = np.asarray(sources["ra"], float), np.asarray(sources["dec"], float)
            keep = cell_of(ra, dec, order) == int(pix)
            if keep.any():
                keep[keep] = region.contains_lonlat(ra[keep] * u.deg, dec[keep] * u.deg)
            sources = sources[keep]
            record.update(status="done", n_sources=len(sources), n_cutouts=0, n_partial=0)
            if len(sources):
                cs, n_partial = cut_sources(images, sources, size, reproject=job["reproject"])
                record["n_partial"] = n_partial
                if cs is not None:
                    scores = score_with(job["scorer"], cs)
                    keep_cols = [c for c in cs.table.colnames if c not in job["drop_columns"]]
                    out = Table(cs.table[keep_cols], masked=False)
                    out.meta = {}
                    for c in out.colnames:
                        if hasattr(out[c], "unit"):
                            out[c].unit = None
                    out["score"] = scores
                    out["cell"] = np.full(len(out), int(pix), dtype=np.int64)
                    table = to_arrow(out)
                    record["n_cutouts"] = len(cs)
            compute += time.perf_counter() - t
    except Exception as exc:  # noqa: BLE001 -- any failure of one cell is recorded with its reason, never fatal
        record.update(status="failed", reason=f"{type(exc).__name__}: {exc}"[:2000])
        table = None
    record.update(service_s=service, compute_s=compute, seconds=time.perf_counter() - t0)
    coverage.write_cell(pix, record, table if record["status"] == "done" else None)
    return record


def _check_config(workdir, config):
    path = os.path.join(workdir, CONFIG_FILE)
    if os.path.exists(path):
        old = read_json(path)
        same = {k: old.get(k) for k in config if k != "created"}
        new = {k: v for k, v in config.items() if k != "created"}
        if old.get("format") != _FORMAT or same != new:
            changed = sorted(k for k in new if same.get(k) != new[k])
            msg = (
                f"the workdir {workdir!r} holds a mining run with other settings ({', '.join(changed)} differ); "
                "use a new workdir, or the same survey, region, bands, size, order and scorer"
            )
            raise InvalidInputError(msg)
        return old
    write_json_atomic(path, config, indent=1, sort_keys=False)
    return config


def _dask_client(scheduler, n_workers, processes):
    """``(client, owned)`` for ``scheduler``: a Client, an address, or None for a new LocalCluster."""
    distributed = require("distributed", feature="Mining on a Dask cluster")
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    if isinstance(scheduler, str):
        return distributed.Client(scheduler), True
    cluster = distributed.LocalCluster(
        n_workers=int(n_workers), threads_per_worker=1, processes=bool(processes), dashboard_address=":0"
    )
    return distributed.Client(cluster), True


def mine(
    survey,
    region,
    *,
    scorer,
    workdir,
    size=64,
    order=None,
    scheduler=None,
    n_workers=1,
    processes=True,
    top=100,
    partition_order=None,
    reproject="interp",
    detection=None,
    progress=True,
):
    """Scan a region of a survey cell by cell: cutouts of every source, scored, on Dask.

    Parameters
    ----------
    survey : `LocalSurvey`, `VOSurvey` or survey object
        Where images and sources come from (see `anomalymatch_astro.archives` for the protocol).
    region : `mocpy.MOC`, path, `~astropy.coordinates.SkyCoord` or tuple
        The sky to scan (see `parse_region`: a MOC or MOC file, a polygon, a cone
        ``(centre, radius)`` or a box ``(centre, width, height)``).
    scorer : callable or `~anomalymatch_astro.AnomalyClassifier`
        ``scorer(CutoutSet) -> (N,) scores`` (e.g. ``ActiveLearningSession.scorer()``),
        or a classifier (its ``score``).  It must be picklable to run on Dask workers.
    workdir : str or os.PathLike
        Where the run lives (created if needed); every worker must be able to write to it.
    size : int or (int, int), optional
        Cutout size in pixels (default 64).
    order : int, optional
        The HEALPix order of the cells (default: `choose_order` of the survey's image size).
    scheduler : None, str, `distributed.Client` or "synchronous", optional
        Where cells run: a new `distributed.LocalCluster` of ``n_workers`` (default), a
        scheduler address, a client, or ``"synchronous"`` (in this process, without Dask).
    n_workers : int, optional
        Workers of the new LocalCluster.
    processes : bool, optional
        LocalCluster workers as processes (default) or threads of this process.
    top : int, optional
        Rows of the table of best candidates (default 100).
    partition_order : int, optional
        HEALPix order of the HATS partitions (default: the cell order).
    reproject : str, optional
        Resampling of bands not on the first band's grid (see ``make_cutouts``).
    detection : dict, optional
        Options of `detect_sources_on_images` when the survey has no catalogue.
    progress : bool, optional
        Show a progress bar over the cells.

    Returns
    -------
    MiningResult
    """
    start = time.perf_counter()
    size = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if min(size) < 1:
        msg = f"size must be positive pixels, got {size!r}"
        raise InvalidInputError(msg)
    if not hasattr(survey, "cell_images") or not hasattr(survey, "bands"):
        msg = f"survey must be a LocalSurvey, a VOSurvey or an object with bands and cell_images(); got {survey!r}"
        raise InvalidInputError(msg)
    workdir = os.path.abspath(os.fspath(workdir))
    os.makedirs(workdir, exist_ok=True)
    moc = parse_region(region)
    recorded = _recorded(workdir)
    if order is None:
        order = recorded.get("order") if recorded else None
    if order is None:
        order = choose_order(survey.image_size())
    order = int(order)
    region_path = os.path.join(workdir, "region.moc.fits")
    config = {
        "format": _FORMAT,
        "version": 1,
        "survey": survey.describe() if hasattr(survey, "describe") else repr(survey),
        "bands": list(survey.bands),
        "size": list(size),
        "order": order,
        "region": moc.to_string(format="ascii"),
        "scorer": _scorer_id(scorer),
        "reproject": reproject,
        "detection": detection or {},
    }
    _check_config(workdir, config)
    if not os.path.exists(region_path):
        with atomic_path(region_path) as tmp:
            moc.save(tmp, format="fits", overwrite=True)

    cells = region_cells(moc, order)
    coverage = Coverage(workdir, order)
    coverage.load()
    todo = coverage.todo(cells)
    log.info("%d cells of order %d in the region, %d to do", len(cells), order, len(todo))
    scale = _pixel_scale(survey)
    margin = 0.75 * max(size) * scale if scale else 0.0  # the cutout's half-diagonal, and some
    job = {
        "survey": survey,
        "scorer": scorer,
        "workdir": workdir,
        "order": order,
        "size": list(size),
        "margin": margin,
        "reproject": reproject,
        "detection": dict(detection or {}),
        "run": uuid.uuid4().hex[:12],
        "drop_columns": ("x_origin", "y_origin", "x_center", "y_center", "cutout_wcs", "coord"),
    }
    ranges = {int(c): _cell_ranges(moc, int(c), order) for c in todo}
    ran = _run_cells(job, todo, ranges, coverage, scheduler, n_workers, processes, progress)
    paths = coverage.write()
    paths.update(build_products(coverage, workdir, order, partition_order, top))
    summary = coverage.summary(cells)
    seconds = time.perf_counter() - start
    manifest = write_manifest(
        os.path.join(workdir, "catalog"),
        config={k: v for k, v in config.items() if k != "region"},
        extra={"summary": summary, "ran": ran, "seconds": seconds},
    )
    paths["manifest"] = manifest
    top_table = None
    if os.path.exists(paths.get("top", "")):
        from astropy.table import QTable

        top_table = QTable.read(paths["top"])
    return MiningResult(
        workdir=workdir, order=order, summary=summary, ran=ran, seconds=seconds, top=top_table, paths=paths
    )


def _recorded(workdir):
    path = os.path.join(workdir, CONFIG_FILE)
    return read_json(path) if os.path.exists(path) else None


def _cell_ranges(moc, pix, order):
    return moc.intersection(cells_moc([pix], order)).to_depth29_ranges.astype(np.uint64).ravel().tolist()


def _run_cells(job, todo, ranges, coverage, scheduler, n_workers, processes, progress):
    """Run the cells; record each as it finishes; return how many ran."""
    if len(todo) == 0:
        return 0
    bar = progress_bar(total=len(todo), desc="cells", progress=progress, unit="cell")
    last = time.monotonic()
    ran = 0

    def finished(record):
        nonlocal last, ran
        coverage.update(record)
        ran += 1
        bar.update(1)
        if time.monotonic() - last > MOC_INTERVAL:
            coverage.write()
            last = time.monotonic()

    try:
        if scheduler == "synchronous":
            for pix in todo:
                finished(_mine_cell(job, int(pix), ranges[int(pix)]))
            return ran
        distributed = require("distributed", feature="Mining on a Dask cluster")
        # a LocalCluster of ours logs its start and stop at INFO: keep that out unless debugging
        dask_log = logging.getLogger("distributed")
        dask_level = dask_log.level
        if scheduler is None and not log.isEnabledFor(logging.DEBUG):
            dask_log.setLevel(max(dask_level, logging.WARNING))
        try:
            _submit_cells(distributed, job, todo, ranges, scheduler, n_workers, processes, finished)
        finally:
            dask_log.setLevel(dask_level)
    finally:
        bar.close()
    return ran


def _submit_cells(distributed, job, todo, ranges, scheduler, n_workers, processes, finished):
    """Run the cells on Dask, calling ``finished(record)`` as each one ends."""
    client, owned = _dask_client(scheduler, n_workers, processes)
    try:
        limiter = getattr(job["survey"], "limiter", None)
        if limiter is not None:
            limiter.start(client)
        shared = client.scatter(job, broadcast=True, hash=False)
        futures = [
            client.submit(_mine_cell, shared, int(pix), ranges[int(pix)], key=f"mine-cell-{job['run']}-{int(pix)}")
            for pix in todo
        ]
        for future in distributed.as_completed(futures):
            finished(future.result())
    finally:
        if owned:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


def mining_status(workdir):
    """The coverage of a mining workdir, from its cell records.

    Parameters
    ----------
    workdir : str or os.PathLike
        A workdir of `mine`.

    Returns
    -------
    summary : dict
        As `MiningResult.summary`, plus ``order``.
    mocs : dict
        ``{"region", "done", "failed", "nodata"}``: `mocpy.MOC` each.
    """
    from mocpy import MOC

    workdir = os.fspath(workdir)
    config = _recorded(workdir)
    if config is None:
        msg = f"{workdir!r} holds no mining run (no {CONFIG_FILE}); start one with mine(...)"
        raise InvalidInputError(msg)
    order = int(config["order"])
    region = MOC.from_fits(os.path.join(workdir, "region.moc.fits"))
    coverage = Coverage(workdir, order)
    coverage.load()
    summary = coverage.summary(region_cells(region, order))
    summary["order"] = order
    mocs = {"region": region, **coverage.mocs()}
    return summary, mocs
