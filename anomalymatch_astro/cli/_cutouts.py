"""``anomalymatch-astro cutouts``: cut multi-band cutouts at catalogue positions into an HDF5 CutoutSet."""

import time

HELP = "cut multi-band cutouts out of FITS images at catalogue positions"


def _band_image(text):
    import argparse

    if "=" not in text:
        msg = f"--image needs BAND=PATH (e.g. g=g.fits), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    band, path = text.split("=", 1)
    return band.strip(), path.strip()


def _size(text):
    from astropy import units as u

    try:
        return int(text)
    except ValueError:
        return u.Quantity(text)


def add_arguments(parser):
    parser.add_argument("--catalog", required=True, help="catalogue with id, ra, dec (ECSV, FITS, CSV, VOTable...)")
    parser.add_argument(
        "--image",
        action="append",
        type=_band_image,
        required=True,
        metavar="BAND=PATH",
        help="an image per band, in band order (repeat: --image g=g.fits --image r=r.fits)",
    )
    parser.add_argument("--size", type=_size, default=64, help="cutout size in pixels, or an angle like 12arcsec")
    parser.add_argument("-o", "--output", required=True, help="output HDF5 CutoutSet")
    parser.add_argument("--reference-band", help="band whose pixel grid is used (default: the first)")
    parser.add_argument(
        "--reproject", default="interp", choices=["interp", "reproject_interp", "reproject_adaptive", "reproject_exact"]
    )
    parser.add_argument(
        "--on-missing",
        default="raise",
        choices=["raise", "flag", "skip"],
        help="positions not covered by every band: stop, keep flagged, or skip",
    )
    parser.add_argument("--append", action="store_true", help="append to an existing output file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    from ..cutouts import make_cutouts
    from . import read_catalog, write_run_manifest

    start = time.perf_counter()
    catalog = read_catalog(args.catalog)
    images = dict(args.image)
    cutouts = make_cutouts(
        images,
        catalog,
        args.size,
        reference_band=args.reference_band,
        reproject=args.reproject,
        on_missing=args.on_missing,
        progress=not args.no_progress,
    )
    cutouts.to_hdf5(args.output, mode="a" if args.append else "w")
    write_run_manifest(args, args.output, inputs=[args.catalog, *images.values()])
    print(
        f"wrote {len(cutouts)} cutouts {cutouts.image_shape} in bands {list(cutouts.bands)} to {args.output} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return 0
