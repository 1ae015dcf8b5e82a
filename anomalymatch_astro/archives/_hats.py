"""The mined candidates as a HATS catalogue: Parquet partitioned by HEALPix pixel.

The per-cell Parquet files of a mining workdir are gathered into partitions of one
HEALPix order (the cell order, or a coarser one), each sorted by the ``_healpix_29``
spatial index, in the HATS layout::

    catalog/properties
    catalog/partition_info.csv
    catalog/dataset/_metadata, _common_metadata
    catalog/dataset/Norder=<k>/Dir=<d>/Npix=<n>.parquet

which `hats.read_hats` and `lsdb.open_catalog` read.  The metadata files are written with
``hats``' own functions.  The catalogue is built beside its final place and swapped in.
"""

import logging
import os
import shutil

import numpy as np

from ..utils import require
from ..utils.exceptions import InvalidInputError, OutputExistsError

__all__ = ["write_hats"]

log = logging.getLogger(__name__)


def _read(paths):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) for p in paths]
    tables = [t.replace_schema_metadata(None) for t in tables]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def write_hats(cell_files, cell_order, output, *, partition_order=None, catalog_name="candidates", overwrite=True):
    """Write the cells' Parquet files as one HATS catalogue.

    Parameters
    ----------
    cell_files : dict
        ``{cell pix: Parquet path}`` (cells of ``cell_order`` with at least one row).
    cell_order : int
        The order of the cells.
    output : str or os.PathLike
        The catalogue folder (replaced as a whole).
    partition_order : int, optional
        The order of the partitions (default ``cell_order``; a smaller order merges cells).
    catalog_name : str, optional
        The ``catalog_name`` property.
    overwrite : bool, optional
        Replace an existing catalogue (default True: it is rebuilt from the cells).

    Returns
    -------
    int
        The number of rows.
    """
    pa = require("pyarrow", feature="The HATS catalogue of mined candidates")
    import pyarrow.parquet as pq

    hats = require("hats", feature="The HATS catalogue of mined candidates")
    from hats.catalog import PartitionInfo, TableProperties
    from hats.io import paths
    from hats.pixel_math import HealpixPixel
    from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN, compute_spatial_index

    order = int(cell_order if partition_order is None else partition_order)
    if order > cell_order or order < 0:
        msg = f"partition_order must be between 0 and the cell order {cell_order}, got {partition_order}"
        raise InvalidInputError(msg)
    output = os.fspath(output)
    if os.path.exists(output) and not overwrite:
        msg = f"{output!r} exists; pass overwrite=True to rebuild it"
        raise OutputExistsError(msg)
    shift = 2 * (int(cell_order) - order)
    partitions = {}
    for pix, path in sorted(cell_files.items()):
        partitions.setdefault(int(pix) >> shift, []).append(path)

    tmp = output.rstrip(os.sep) + ".building"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    total, pixels, schema = 0, [], None
    for ppix, files in sorted(partitions.items()):
        table = _read(files)
        if table.num_rows == 0:
            continue
        ra = np.asarray(table.column("ra").to_numpy(zero_copy_only=False), float)
        dec = np.asarray(table.column("dec").to_numpy(zero_copy_only=False), float)
        index = compute_spatial_index(ra, dec)
        if SPATIAL_INDEX_COLUMN in table.column_names:
            table = table.drop_columns([SPATIAL_INDEX_COLUMN])
        table = table.add_column(0, SPATIAL_INDEX_COLUMN, pa.array(np.asarray(index, dtype=np.int64)))
        table = table.take(pa.array(np.argsort(index, kind="stable")))
        if schema is None:
            schema = table.schema
        else:
            table = table.cast(schema) if table.schema != schema else table
        pixel = HealpixPixel(order, int(ppix))
        path = paths.pixel_catalog_file(tmp, pixel)
        os.makedirs(os.path.dirname(str(path)), exist_ok=True)
        pq.write_table(table, str(path))
        pixels.append(pixel)
        total += table.num_rows
    if not pixels:
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("no candidates: no HATS catalogue written")
        return 0
    PartitionInfo.from_healpix(pixels).write_to_file(os.path.join(tmp, "partition_info.csv"))
    hats.io.write_parquet_metadata(tmp)
    props = TableProperties(
        catalog_name=catalog_name,
        catalog_type="object",
        total_rows=total,
        ra_column="ra",
        dec_column="dec",
        healpix_column=SPATIAL_INDEX_COLUMN,
        healpix_order=29,
    )
    props.to_properties_file(tmp)
    if os.path.exists(output):
        old = output.rstrip(os.sep) + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(output, old)
        os.replace(tmp, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, output)
    return total
