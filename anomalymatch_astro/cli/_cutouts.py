"""``anomalymatch-astro cutouts``: cut multi-band cutouts at catalogue positions into an HDF5 CutoutSet."""

import os
import re
import time

HELP = "cut multi-band cutouts out of FITS images at catalogue positions"


def _band_image(text):
    import argparse

    if "=" not in text:
        msg = f"--image needs BAND=PATH (e.g. g=g.fits), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    band, path = text.split("=", 1)
    return band.strip(), path.strip()


def _bands(pairs):
    """``{band: path}`` from the ``--image`` pairs, refusing a band given twice."""
    from ..utils.exceptions import InvalidInputError

    images = {}
    for band, path in pairs:
        if band in images:
            msg = (
                f"--image gives the band {band!r} twice ({images[band]} and {path}); "
                "give each band once, with its own name (e.g. --image g=g.fits --image r=r.fits)"
            )
            raise InvalidInputError(msg)
        images[band] = path
    return images


def _file_of(path):
    """The file of an ``--image`` path, without a ``[ext]`` suffix (for the run manifest)."""
    match = re.match(r"^(.+)\[[^\[\]]+\]$", path)
    return match.group(1) if match and not os.path.exists(path) else path


def _size(text):
    """``--size``: a whole number of pixels >= 1, or an angle > 0 such as 12arcsec."""
    import argparse

    from astropy import units as u

    try:
        pixels = int(text)
    except ValueError:
        pixels = None
    if pixels is not None:
        if pixels < 1:
            msg = f"--size must be at least 1 pixel, got {text!r}"
            raise argparse.ArgumentTypeError(msg)
        return pixels
    try:
        size = u.Quantity(text)
        size.to(u.deg)
    except (ValueError, TypeError, u.UnitsError) as exc:
        msg = f"--size must be a whole number of pixels (e.g. 64) or an angle (e.g. 12arcsec), got {text!r}"
        raise argparse.ArgumentTypeError(msg) from exc
    if not size.isscalar or not (size.value > 0 and size.value < float("inf")):
        msg = f"--size must be a positive angle (e.g. 12arcsec), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return size


def add_arguments(parser):
    parser.add_argument("--catalog", required=True, help="catalogue with id, ra, dec (ECSV, FITS, CSV, VOTable...)")
    parser.add_argument(
        "--image",
        action="append",
        type=_band_image,
        required=True,
        metavar="BAND=PATH",
        help="an image per band, in band order (repeat: --image g=g.fits --image r=r.fits); "
        "choose a FITS extension with file.fits[2], file.fits[SCI] or file.fits[SCI,1] "
        "(default: the first extension holding an image)",
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
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--append", action="store_true", help="append to an existing output file")
    how.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    from ..cutouts import make_cutouts
    from . import read_catalog, write_run_manifest
    from ._outputs import check_output, write_cutout_set

    start = time.perf_counter()
    images = _bands(args.image)
    check_output(args.output, overwrite=args.overwrite, append=args.append)  # before any work
    catalog = read_catalog(args.catalog)
    cutouts = make_cutouts(
        images,
        catalog,
        args.size,
        reference_band=args.reference_band,
        reproject=args.reproject,
        on_missing=args.on_missing,
        progress=not args.no_progress,
    )
    write_cutout_set(cutouts, args.output, overwrite=args.overwrite, append=args.append)
    write_run_manifest(args, args.output, inputs=[args.catalog, *map(_file_of, images.values())])
    print(
        f"wrote {len(cutouts)} cutouts {cutouts.image_shape} in bands {list(cutouts.bands)} to {args.output} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return 0
