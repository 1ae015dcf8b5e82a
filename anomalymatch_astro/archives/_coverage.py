"""The mining workdir's record of which cells are done, failed or without data.

Each cell's outcome is its own small JSON file, written atomically by the worker that did
the cell, after the cell's candidates (Parquet, also atomic)::

    workdir/cells/Norder=<k>/Dir=<d>/Npix=<pix>.json      status, reason, counts, timings, run id
    workdir/cells/Norder=<k>/Dir=<d>/Npix=<pix>.parquet   the cell's scored sources (done cells with sources)

so no two workers ever write one file, and a run killed at any moment loses only the cells
in flight.  The MOCs of the three outcomes (``coverage/done.moc.fits``, ``failed.moc.fits``,
``nodata.moc.fits``) and the failure reasons (``coverage/failures.ecsv``) are derived from
those files by the driver, and rewritten atomically as cells finish.
"""

import glob
import os

import numpy as np

from ..utils import atomic_path, read_json, write_json_atomic
from ..utils.exceptions import ReadError
from ._cells import cell_dir, cells_moc

__all__ = ["STATUSES", "Coverage"]

#: The outcomes of a cell.
STATUSES = ("done", "failed", "nodata")


class Coverage:
    """The per-cell records of a mining workdir, and the MOCs made from them.

    Parameters
    ----------
    workdir : str or os.PathLike
        The mining workdir.
    order : int
        The cell order.
    """

    def __init__(self, workdir, order):
        self.workdir = os.fspath(workdir)
        self.order = int(order)
        self.records = {}

    def cell_path(self, pix, suffix):
        """The path of a cell's ``.json`` or ``.parquet`` file."""
        return os.path.join(self.workdir, "cells", cell_dir(self.order, pix), f"Npix={int(pix)}{suffix}")

    def write_cell(self, pix, record, table=None):
        """Write a cell's candidates (when given) and then its record, each atomically (worker side)."""
        folder = os.path.dirname(self.cell_path(pix, ".json"))
        os.makedirs(folder, exist_ok=True)
        if table is not None:
            import pyarrow.parquet as pq

            with atomic_path(self.cell_path(pix, ".parquet")) as tmp:
                pq.write_table(table, tmp)
        write_json_atomic(self.cell_path(pix, ".json"), record, indent=None, sort_keys=True)

    def load(self):
        """Read every cell record in the workdir; returns ``{pix: record}`` (also kept in ``records``)."""
        pattern = os.path.join(self.workdir, "cells", f"Norder={self.order}", "Dir=*", "Npix=*.json")
        records = {}
        for path in glob.glob(pattern):
            try:
                record = read_json(path)
            except ReadError:
                continue  # cannot be half-written (atomic); unreadable means damaged: the cell is redone
            if isinstance(record, dict) and record.get("status") in STATUSES:
                records[int(record["pix"])] = record
        self.records = records
        return records

    def update(self, record):
        """Take one finished cell's record into account (driver side)."""
        self.records[int(record["pix"])] = record

    def cells(self, status):
        """Sorted cells of one status."""
        return np.array(sorted(p for p, r in self.records.items() if r["status"] == status), dtype=np.int64)

    def todo(self, cells):
        """Of ``cells``, those not done and not known to be without data (failed cells are retried)."""
        finished = {p for p, r in self.records.items() if r["status"] in ("done", "nodata")}
        return np.array([c for c in cells if int(c) not in finished], dtype=np.int64)

    def mocs(self):
        """``{"done": MOC, "failed": MOC, "nodata": MOC}`` of the cells recorded so far."""
        return {s: cells_moc(self.cells(s), self.order) for s in STATUSES}

    def failures(self):
        """A `~astropy.table.Table` of the failed cells: ``pix``, ``order``, ``reason``."""
        from astropy.table import Table

        rows = [
            (p, self.order, r.get("reason", "")) for p, r in sorted(self.records.items()) if r["status"] == "failed"
        ]
        return Table(rows=rows or None, names=("pix", "order", "reason"), dtype=(np.int64, np.int32, str))

    def write(self):
        """Write the three MOCs and the failure table under ``workdir/coverage/``, each atomically.

        Returns
        -------
        dict
            ``{status: path}`` of the MOC files, and ``failures`` the table's path.
        """
        folder = os.path.join(self.workdir, "coverage")
        os.makedirs(folder, exist_ok=True)
        paths = {}
        for status, moc in self.mocs().items():
            path = os.path.join(folder, f"{status}.moc.fits")
            with atomic_path(path) as tmp:
                moc.save(tmp, format="fits", overwrite=True)
            paths[status] = path
        path = os.path.join(folder, "failures.ecsv")
        with atomic_path(path) as tmp:
            self.failures().write(tmp, format="ascii.ecsv", overwrite=True)
        paths["failures"] = path
        return paths

    def summary(self, cells=None):
        """Counts per status (and ``todo`` of ``cells``), sources, cutouts and seconds spent."""
        out = {s: int(len(self.cells(s))) for s in STATUSES}
        if cells is not None:
            out["cells"] = int(len(cells))
            out["todo"] = int(len(self.todo(cells)))
        done = [r for r in self.records.values() if r["status"] == "done"]
        out["sources"] = int(sum(r.get("n_sources", 0) for r in done))
        out["cutouts"] = int(sum(r.get("n_cutouts", 0) for r in done))
        for key in ("service_s", "compute_s", "seconds"):
            out[key] = float(sum(r.get(key, 0.0) for r in self.records.values()))
        return out
