"""``anomalymatch-astro crossmatch``: cross-match candidates against a local catalogue file."""

HELP = "cross-match candidates against a catalogue"


def add_arguments(parser):
    """Add the ``crossmatch`` arguments to an argparse parser."""
    parser.add_argument(
        "--candidates",
        required=True,
        help="the candidates (ECSV/FITS/VOTable/Parquet/HDF5 with coord or ra/dec)",
    )
    parser.add_argument("--catalog", required=True, help="the catalogue file (any format astropy reads)")
    parser.add_argument("--radius", required=True, help="match radius with unit, e.g. 1arcsec")
    parser.add_argument("-o", "--output", required=True, help="output table (format from the extension)")
    parser.add_argument(
        "--mode",
        choices=("nearest", "all"),
        default="nearest",
        help="nearest: one row per candidate; all: every pair within the radius",
    )
    parser.add_argument("--prefix", default="cat_", help="prefix of the catalogue's columns (default cat_)")
    parser.add_argument("--ra-column", help="the catalogue's RA column (deg), if not found automatically")
    parser.add_argument("--dec-column", help="the catalogue's Dec column (deg), if not found automatically")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args):
    """Run ``crossmatch``; returns the exit code."""
    import os

    from astropy.table import QTable

    from ..catalogs import TABLE_FORMATS, crossmatch, read_table, write_table
    from ..utils.exceptions import InvalidInputError, ReadError
    from . import read_catalog
    from ._outputs import check_output

    check_output(args.output, overwrite=args.overwrite)  # before any work
    candidates = read_table(args.candidates)
    if not os.path.exists(args.catalog):
        msg = f"catalogue file {args.catalog!r} does not exist"
        raise ReadError(msg)
    if args.catalog.lower().endswith(tuple(e for ends in TABLE_FORMATS.values() for e in ends)):
        catalog = read_table(args.catalog)
    else:
        catalog = read_catalog(args.catalog, table_class=QTable, error=ReadError)
    if bool(args.ra_column) != bool(args.dec_column):
        msg = "give both --ra-column and --dec-column, or neither"
        raise InvalidInputError(msg)
    coord = (args.ra_column, args.dec_column) if args.ra_column else None
    result = crossmatch(
        candidates, catalog, radius=args.radius, mode=args.mode, catalog_coord=coord, prefix=args.prefix
    )
    write_table(result, args.output, overwrite=args.overwrite)
    info = result.meta["crossmatch"]
    print(
        f"{info['n_matched']} of {info['n_candidates']} candidates matched within {args.radius} "
        f"({len(result)} rows) -> {args.output}"
    )
    return 0
