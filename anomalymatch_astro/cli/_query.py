"""``anomalymatch-astro query``: cutouts at catalogue positions from a VO service or HiPS survey."""

import time

from ._outputs import non_negative_float, non_negative_int, positive_float, positive_int

HELP = "get cutouts from a VO service (SIA/SODA/TAP) or HiPS survey"


def _band(text):
    import argparse

    name, _, remote = text.partition("=")
    if not name.strip() or (_ and not remote.strip()):
        msg = f"--band needs NAME or NAME=SERVICE_BAND (e.g. g or v=F606W), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return name.strip(), (remote.strip() or name.strip())


def _angle(text):
    import argparse

    from astropy import units as u

    try:
        value = u.Quantity(text)
        value.to(u.deg)
    except (ValueError, TypeError, u.UnitsError) as exc:
        msg = f"expected an angle like 1arcsec or 0.2 arcsec, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from exc
    if not value.isscalar or not (0 < value.value < float("inf")):
        msg = f"expected a positive angle like 1arcsec or 0.2 arcsec, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_arguments(parser):
    parser.add_argument(
        "--service",
        help="service URL: SIA 2 query URL, SIA 1 or TAP base URL, or a "
        "hips2fits endpoint for --protocol hips (default: CDS)",
    )
    parser.add_argument("--catalog", required=True, help="catalogue with id, ra, dec (ECSV, FITS, CSV, VOTable...)")
    parser.add_argument(
        "--band",
        action="append",
        type=_band,
        required=True,
        metavar="NAME[=SERVICE_BAND]",
        help="a band, in output order (repeat: --band g --band r); NAME=X fetches the service's "
        "band X (or HiPS X) as NAME",
    )
    parser.add_argument("--size", type=positive_int, default=64, help="cutout size in pixels (default 64)")
    parser.add_argument("-o", "--output", required=True, help="output HDF5 CutoutSet")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--append", action="store_true", help="append to an existing output file")
    how.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--protocol", default="sia2", choices=["sia2", "sia1", "tap", "hips"])
    parser.add_argument(
        "--hips",
        metavar="NAME",
        help="HiPS ID for --protocol hips; '{band}' in it is replaced by each band name (e.g. CDS/P/SDSS9/{band})",
    )
    parser.add_argument("--pixel-scale", type=_angle, help="pixel scale of HiPS cutouts (e.g. 0.4arcsec)")
    parser.add_argument("--workdir", help="folder of the resumable progress record (a re-run skips done positions)")
    parser.add_argument(
        "--soda",
        default="auto",
        choices=["auto", "yes", "no"],
        help="server-side cutouts through DataLink/SODA (default: when offered)",
    )
    parser.add_argument("--radius", type=_angle, default=None, help="search radius (default 1arcsec)")
    parser.add_argument("--tap-async", action="store_true", help="run TAP queries as asynchronous jobs")
    parser.add_argument(
        "--on-missing",
        default="raise",
        choices=["raise", "skip"],
        help="positions without an image in some band: stop (default) or skip",
    )
    parser.add_argument("--cache-dir", help="download cache (default: archives.conf.cache_dir)")
    parser.add_argument("--timeout", type=positive_float, help="seconds per request")
    parser.add_argument("--retries", type=non_negative_int, help="retries after timeouts and 5xx answers")
    parser.add_argument("--rate-limit", type=non_negative_float, help="most requests per second (0: no limit)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    from astropy import units as u

    from ..archives import ArchiveClient, cutouts_from_service
    from ..utils.exceptions import InvalidInputError
    from . import read_catalog, write_run_manifest
    from ._outputs import check_output, write_cutout_set

    start = time.perf_counter()
    check_output(args.output, overwrite=args.overwrite, append=args.append)  # before any request
    if args.protocol != "hips" and not args.service:
        msg = f"--service is required for --protocol {args.protocol}"
        raise InvalidInputError(msg)
    catalog = read_catalog(args.catalog)
    bands = dict(args.band)
    if args.protocol == "hips":
        if args.hips:
            if "{band}" not in args.hips and len(bands) > 1:
                msg = "with several bands, --hips needs '{band}' (e.g. CDS/P/SDSS9/{band}), or use --band NAME=HIPS"
                raise InvalidInputError(msg)
            bands = {name: args.hips.replace("{band}", remote) for name, remote in bands.items()}
        if args.pixel_scale is None:
            msg = "--protocol hips needs --pixel-scale (e.g. 0.4arcsec)"
            raise InvalidInputError(msg)
    client = ArchiveClient(
        cache_dir=args.cache_dir, timeout=args.timeout, retries=args.retries, rate_limit=args.rate_limit
    )
    cutouts = cutouts_from_service(
        args.service,
        catalog,
        args.size,
        bands=bands,
        protocol=args.protocol,
        client=client,
        workdir=args.workdir,
        soda={"auto": "auto", "yes": True, "no": False}[args.soda],
        radius=args.radius if args.radius is not None else 1 * u.arcsec,
        pixel_scale=args.pixel_scale,
        tap_async=args.tap_async,
        on_missing=args.on_missing,
        progress=not args.no_progress,
    )
    write_cutout_set(cutouts, args.output, overwrite=args.overwrite, append=args.append)
    write_run_manifest(args, args.output, inputs=[args.catalog, args.service], extra={"n_requests": client.n_requests})
    print(
        f"wrote {len(cutouts)} cutouts {cutouts.image_shape} in bands {list(cutouts.bands)} from "
        f"{args.service or 'hips2fits'} ({args.protocol}) to {args.output} "
        f"({client.n_requests} requests, {time.perf_counter() - start:.1f} s)"
    )
    return 0
