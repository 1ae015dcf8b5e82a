"""``anomalymatch-astro cutouts``: cut multi-band cutouts at catalogue positions into an HDF5 CutoutSet."""

import os
import re
import time

from ._outputs import non_negative_int

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


def _read_segmentation(path):
    """The first 2-D image of a FITS segmentation map, as integer labels, with its WCS."""
    import numpy as np
    from astropy.io import fits
    from astropy.wcs import WCS

    from ..utils.exceptions import ReadError

    try:
        with fits.open(path) as hdul:
            hdu = next((h for h in hdul if h.data is not None and h.data.ndim == 2), None)
            if hdu is None:
                msg = f"--segmentation {path!r} holds no 2-D image (a segmentation map of integer labels)"
                raise ReadError(msg)
            data, header = np.asarray(hdu.data), hdu.header
    except (OSError, ValueError) as exc:
        msg = f"could not read the segmentation map {path!r}: {exc}"
        raise ReadError(msg) from exc
    if not np.issubdtype(data.dtype, np.integer) and not np.all(np.isfinite(data) & (data == np.round(data))):
        msg = f"--segmentation {path!r} is not a map of integer labels (its pixels are {data.dtype})"
        raise ReadError(msg)
    return data.astype(np.int64), WCS(header).celestial


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
    parser.add_argument(
        "--mask-neighbours",
        action="store_true",
        help="replace the pixels of the other catalogued sources in each cutout with background noise "
        "(their ellipses from the catalogue's shape columns, or discs; see the crowded-fields guide)",
    )
    parser.add_argument(
        "--segmentation",
        metavar="PATH",
        help="a FITS segmentation map of the image (integer labels, 0 = sky, with its WCS): mask the neighbours' "
        "segments too (implies --mask-neighbours; best with --mask-dilate 3)",
    )
    parser.add_argument(
        "--keep-blended",
        action="store_true",
        help="with --segmentation, keep the segments touching each object's own (the other deblended pieces of its "
        "parent) unless over 10 times brighter: a deblended fragment shows with its galaxy",
    )
    parser.add_argument(
        "--saturation",
        type=float,
        nargs="+",
        metavar="LEVEL",
        help="with --keep-blended, the pixel value at which the images saturate (one for all bands, or one per "
        "band in --image order, e.g. the SATURATE header keyword): a touching segment with a saturated pixel is "
        "masked whatever its contrast (a clipped star's peak passes the 10-times test)",
    )
    parser.add_argument(
        "--mask-dilate",
        type=non_negative_int,
        default=0,
        metavar="PIXELS",
        help="grow the neighbours' masks by this many pixels (halos and spikes beyond the segments)",
    )
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--append", action="store_true", help="append to an existing output file")
    how.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    from ..cutouts import make_cutouts
    from ..utils.exceptions import InvalidInputError
    from . import read_catalog, write_run_manifest
    from ._outputs import check_output, write_cutout_set

    start = time.perf_counter()
    if args.keep_blended and not args.segmentation:
        msg = "--keep-blended needs --segmentation (the blends come from the segmentation map)"
        raise InvalidInputError(msg)
    if args.saturation and not args.keep_blended:
        msg = "--saturation is used by --keep-blended only (it stops a blend at a saturated segment): pass both"
        raise InvalidInputError(msg)
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
    inputs = [args.catalog, *map(_file_of, images.values())]
    if args.mask_neighbours or args.segmentation:
        from ..cutouts import mask_neighbours

        segmentation, wcs = _read_segmentation(args.segmentation) if args.segmentation else (None, None)
        cutouts = mask_neighbours(
            cutouts,
            catalog,
            segmentation=segmentation,
            wcs=wcs,
            dilate=args.mask_dilate,
            keep_blended=args.keep_blended,
            saturation=args.saturation,
            progress=not args.no_progress,
        )
        inputs += [args.segmentation] if args.segmentation else []
    write_cutout_set(cutouts, args.output, overwrite=args.overwrite, append=args.append)
    write_run_manifest(args, args.output, inputs=inputs)
    print(
        f"wrote {len(cutouts)} cutouts {cutouts.image_shape} in bands {list(cutouts.bands)} to {args.output} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return 0
