"""What a mining run builds from its done cells: the HATS catalogue and the top-candidates table."""

import logging
import os

import numpy as np
from astropy import units as u

from ..utils import atomic_path, read_json, write_json_atomic
from ..utils.exceptions import ReadError

__all__ = ["BUILD_FILE", "build_products"]

log = logging.getLogger(__name__)

#: what the catalogue and the top table were last built from (in the catalogue folder)
BUILD_FILE = "anomalymatch_build.json"


def build_products(coverage, workdir, order, partition_order, top):
    """Build the HATS catalogue and the top-candidates table from the done cells.

    Skipped when neither the done cells' files nor the settings changed since the last build
    (a rerun with nothing left to do rewrites nothing).
    """
    from ._hats import write_hats

    files = {}
    for pix in coverage.cells("done"):
        path = coverage.cell_path(pix, ".parquet")
        if os.path.exists(path):
            files[int(pix)] = path
    paths = {"catalog": os.path.join(workdir, "catalog"), "top": os.path.join(workdir, "top_candidates.ecsv")}
    stamp_path = os.path.join(paths["catalog"], BUILD_FILE)
    stamp = {
        "order": int(order),
        "partition_order": None if partition_order is None else int(partition_order),
        "top": int(top),
        "cells": [[pix, os.stat(path).st_size, os.stat(path).st_mtime_ns] for pix, path in sorted(files.items())],
    }
    # the record lives in the catalogue folder: no folder, no record, a rebuild
    if (os.path.exists(paths["top"]) or not files) and _read_stamp(stamp_path) == stamp:
        log.info("the catalogue and the top table are up to date with the %d done cell(s)", len(files))
        return paths
    write_hats(files, order, paths["catalog"], partition_order=partition_order)
    if files:
        table = _top_table(list(files.values()), top)
        with atomic_path(paths["top"]) as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
    if os.path.isdir(paths["catalog"]):  # no catalogue without a done cell
        write_json_atomic(stamp_path, stamp, indent=None)
    return paths


def _read_stamp(path):
    """The recorded build, or None (no record, or a damaged one: rebuild)."""
    if not os.path.exists(path):
        return None
    try:
        return read_json(path)
    except ReadError:
        return None


def _top_table(files, n):
    """The ``n`` best-scored rows of the cells' Parquet files, as a QTable with a SkyCoord column.

    Only the ``score`` and ``id`` columns of every file are read to rank; the whole rows are
    read for the ``n`` chosen ones only, so memory follows ``n``, not the number of sources.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from astropy.coordinates import SkyCoord
    from astropy.table import QTable

    n = max(int(n), 0)
    scores, ids, where = [], [], []
    for k, path in enumerate(files):
        part = pq.read_table(path, columns=["score", "id"])
        s = part.column("score").to_numpy()
        i = np.asarray(part.column("id").to_pylist(), dtype=str)
        best = np.lexsort((i, -s))[:n]  # a file's rows outside its own top n cannot be in the overall top n
        scores.append(s[best])
        ids.append(i[best])
        where.append(np.stack([np.full(len(best), k), best], axis=1))
    scores, ids, where = np.concatenate(scores), np.concatenate(ids), np.concatenate(where)
    chosen = where[np.lexsort((ids, -scores))[:n]]
    # every file's columns, as the concatenation of whole files had them (a file may lack a column)
    schema = pa.unify_schemas([pq.read_schema(p).remove_metadata() for p in files], promote_options="permissive")
    by_file = np.argsort(chosen[:, 0], kind="stable")  # the chosen rows file by file, in rank order in each
    pieces = [schema.empty_table()]
    for k in np.unique(chosen[:, 0]):
        rows = chosen[chosen[:, 0] == k, 1]
        pieces.append(pq.read_table(files[int(k)]).replace_schema_metadata(None).take(pa.array(rows)))
    table = pa.concat_tables(pieces, promote_options="permissive")  # rows in the order of chosen[by_file]
    order = np.argsort(by_file)  # back into rank order
    out = QTable(table.take(pa.array(order)).to_pydict())
    out["ra"].unit = out["dec"].unit = u.deg
    out.add_column(SkyCoord(out["ra"], out["dec"], frame="icrs"), name="coord", index=1)
    out.add_column(np.arange(1, len(out) + 1), name="rank", index=2)
    return out
