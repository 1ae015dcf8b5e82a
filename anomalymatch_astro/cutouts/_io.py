"""One normaliser for every kind of image input: path, HDU, HDUList, NDData, (array, wcs).

Like reproject's ``parse_input_data``: every public function that takes images calls
`parse_image`, so every input kind is accepted everywhere and every failure reads the same.
"""

import logging
import os
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.nddata import NDData
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import wcs_to_celestial_frame

from ..utils import check_declared_size, filters_changed
from ..utils.exceptions import AnomalyMatchError, InvalidInputError, MissingWCSError, ReadError
from ._photometry import header_photometry

__all__ = ["ImageInput", "parse_image", "parse_images"]

log = logging.getLogger(__name__)

#: Largest tile of a tile-compressed image that is decompressed (a tile is read whole).
MAX_TILE_BYTES = 1 << 30


@dataclass
class ImageInput:
    """A 2-D image ready for cutting: lazily sliceable data, its celestial WCS, and where it came from.

    Attributes
    ----------
    data : array-like
        2-D, sliceable without reading the whole image (a memory map or a FITS section).
    wcs : `~astropy.wcs.WCS`
        Celestial 2-D WCS of ``data``.
    source : str
        Human-readable origin (file name and extension, or the kind of object).
    unit : str or None
        BUNIT when known.
    photometry : dict or None
        The photometric zero-point keywords of the header (``PHOTFLAM``, ``PHOTPLAM``,
        ``MAGZERO``, ...; those of the primary header where the image HDU lacks them), or
        None when the header has none.  `make_cutouts` turns them into per-band flux scales
        for colour composites.
    """

    data: object
    wcs: WCS
    source: str
    unit: str | None = None
    photometry: dict | None = None
    _hdul: object = field(default=None, repr=False)

    @property
    def shape(self):
        """(ny, nx) of the image."""
        return tuple(self.data.shape)

    def close(self):
        """Close the FITS file this image was read from, if we opened it."""
        if self._hdul is not None:
            self._hdul.close()
            self._hdul = None


def _celestial_wcs(header_or_wcs, source):
    with filters_changed(("ignore", FITSFixedWarning)):
        try:
            wcs = header_or_wcs if isinstance(header_or_wcs, WCS) else WCS(header_or_wcs)
        except Exception as exc:
            msg = f"{source}: the WCS keywords could not be parsed ({exc}); fix the header's CTYPE/CRVAL/CD keywords"
            raise MissingWCSError(msg) from exc
    if not wcs.has_celestial:
        msg = (
            f"{source} has no celestial WCS (CTYPE1/2 like RA---TAN, DEC--TAN); cutouts at sky "
            "positions need one. Give (array, wcs) with a WCS, or fix the FITS header"
        )
        raise MissingWCSError(msg)
    celestial = wcs.celestial
    if celestial.naxis != 2:
        msg = f"{source}: the celestial WCS must have 2 axes, it has {celestial.naxis}"
        raise MissingWCSError(msg)
    try:
        wcs_to_celestial_frame(celestial)
    except ValueError as exc:  # e.g. RA---TAN axes with RADESYS='GALACTIC'
        msg = (
            f"{source}: the sky frame of the WCS cannot be determined ({exc}); fix CTYPE1/2 and "
            "RADESYS/EQUINOX (e.g. RA---TAN, DEC--TAN with RADESYS='ICRS')"
        )
        raise MissingWCSError(msg) from exc
    return celestial


def _squeeze_to_2d(data, source):
    shape = tuple(data.shape)
    if len(shape) == 2:
        return data
    if len(shape) > 2 and all(n == 1 for n in shape[:-2]):
        index = (0,) * (len(shape) - 2)
        if isinstance(data, np.ndarray):
            return data[index]
        return _SectionView(data, index)
    msg = (
        f"{source}: image data must be 2-D (or have only length-1 extra axes), got shape {shape}; "
        "pass one plane, e.g. (cube[k], wcs.celestial)"
    )
    raise InvalidInputError(msg)


class _SectionView:
    """A 2-D view of an N-D lazily read FITS section with leading length-1 axes."""

    def __init__(self, section, index):
        self._section = section
        self._index = index
        self.shape = tuple(section.shape[len(index) :])
        self.dtype = getattr(section, "dtype", np.float32)

    def __getitem__(self, item):
        if not isinstance(item, tuple):
            item = (item,)
        return self._section[self._index + item]


def _header_int(header, key, default, source):
    value = header.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        msg = f"{source}: the header keyword {key} = {value!r} is not a count; the header is damaged"
        raise ReadError(msg)
    return int(value)


def _bytes_per_pixel(header, key, source):
    value = header.get(key, 8)
    if value not in (8, 16, 32, 64, -32, -64) or isinstance(value, bool):
        msg = f"{source}: the header keyword {key} = {value!r} is not a FITS pixel type; the header is damaged"
        raise ReadError(msg)
    return abs(int(value)) // 8


def _table_header(hdu):
    """The header of the binary table that stores a tile-compressed image (ZNAXISn, ZTILEn, ZBITPIX)."""
    table = getattr(hdu, "_bintable", None)  # astropy >= 6.1 keeps the table apart; before, _header was it
    return table.header if table is not None else hdu._header


def _check_declared(hdu, source):
    """Refuse an HDU whose header declares more data than its file holds, or tiles too large to decompress.

    Checked from the header alone, before any pixel is read, so a header declaring a
    10^6 x 10^6 image in a few kilobytes fails at once (`ReadError`), in bounded memory.
    Scaled (BSCALE/BZERO) images are checked by their stored BITPIX, as stored.
    """
    if isinstance(hdu, fits.CompImageHDU):
        header = _table_header(hdu)
        naxes = _header_int(header, "ZNAXIS", 0, source)
        tile = _bytes_per_pixel(header, "ZBITPIX", source) * 8
        ntiles = 1
        for k in range(1, naxes + 1):
            size = _header_int(header, f"ZNAXIS{k}", 0, source)
            step = _header_int(header, f"ZTILE{k}", size if k == 1 else 1, source) or 1
            tile *= min(step, size) if size else 1
            ntiles *= -(-size // step)
        tile //= 8
        if tile > MAX_TILE_BYTES:
            msg = (
                f"{source} declares compression tiles of {tile} bytes, over the limit of {MAX_TILE_BYTES}; "
                "the header is damaged (or recompress the image with smaller tiles)"
            )
            raise ReadError(msg)
        rows = _header_int(header, "NAXIS2", 0, source)
        if ntiles != rows:
            msg = f"{source} declares {ntiles} compression tiles but stores {rows}; the file is damaged"
            raise ReadError(msg)
    try:
        info = hdu.fileinfo()
    except Exception:  # noqa: BLE001 -- an HDU made in memory has no file
        info = None
    size = getattr(info["file"], "size", None) if info else None
    if not size:
        return
    header = _table_header(hdu) if isinstance(hdu, fits.CompImageHDU) else hdu.header
    declared = _bytes_per_pixel(header, "BITPIX", source)
    count = _header_int(header, "PCOUNT", 0, source)
    naxes = _header_int(header, "NAXIS", 0, source)
    pixels = 1 if naxes else 0
    for k in range(1, naxes + 1):
        pixels *= _header_int(header, f"NAXIS{k}", 0, source)
    declared *= _header_int(header, "GCOUNT", 1, source) * (count + pixels)
    check_declared_size(int(info["datLoc"]) + declared, int(size), source=source)


def _from_hdu(hdu, source, hdul=None):
    if hdu.header.get("NAXIS", 0) < 2 and not isinstance(hdu, fits.CompImageHDU):
        msg = f"{source} holds no image data (NAXIS={hdu.header.get('NAXIS', 0)})"
        raise ReadError(msg)
    _check_declared(hdu, source)
    wcs = _celestial_wcs(hdu.header, source)
    # Plain float/int images: the memory map is lazy and fast.  Tile-compressed or scaled
    # (BSCALE/BZERO) images: .section reads and scales only the tiles/rows that are sliced.
    scaled = "BSCALE" in hdu.header or "BZERO" in hdu.header
    if hdul is not None and (isinstance(hdu, fits.CompImageHDU) or scaled) and hasattr(hdu, "section"):
        data = hdu.section
    else:
        data = hdu.data
    if data is None:
        msg = f"{source} holds no image data"
        raise ReadError(msg)
    data = _squeeze_to_2d(data, source)
    return ImageInput(
        data=data,
        wcs=wcs,
        source=source,
        unit=hdu.header.get("BUNIT"),
        photometry=header_photometry(hdu.header, hdul[0].header if hdul is not None and len(hdul) else None),
        _hdul=hdul,
    )


def _first_image_hdu(hdul, source):
    for i, hdu in enumerate(hdul):
        if _is_image_hdu(hdu):
            return i, hdu
    msg = f"{source} contains no image extension; give the HDU that holds the image"
    raise ReadError(msg)


#: ``file.fits[2]``, ``file.fits[SCI]``, ``file.fits[SCI,1]``: the extension syntax of astropy and cfitsio.
_EXTENSION = re.compile(r"^(?P<path>.+)\[(?P<ext>[^\[\]]+)\]$")


def _split_extension(path):
    """Split ``"file.fits[ext]"`` into ``("file.fits", ext)``, the cfitsio/astropy extension syntax.

    ``ext`` is an int (``[2]``), a name (``[SCI]``) or a (name, version) tuple (``[SCI,1]``);
    ``None`` when ``path`` has no such suffix or names an existing file (brackets and all).

    Parameters
    ----------
    path : str or os.PathLike
        A file name, perhaps with an extension suffix.

    Returns
    -------
    tuple
        ``(path, ext)``.

    Examples
    --------
    >>> _split_extension("image.fits[SCI,2]")
    ('image.fits', ('SCI', 2))
    >>> _split_extension("image.fits[1]")
    ('image.fits', 1)
    """
    path = os.fspath(path)
    match = _EXTENSION.match(path)
    if match is None or os.path.exists(path):
        return path, None
    text = match["ext"].strip()
    name, _, version = text.partition(",")
    name, version = name.strip(), version.strip()
    if not name:
        msg = f"{path!r}: the extension in brackets is empty; give a number or a name, e.g. file.fits[1] or [SCI]"
        raise InvalidInputError(msg)
    if not version:
        return match["path"], int(name) if name.lstrip("+-").isdigit() else name
    if not version.lstrip("+-").isdigit():
        msg = f"{path!r}: the extension version after the comma must be a whole number, e.g. file.fits[SCI,1]"
        raise InvalidInputError(msg)
    return match["path"], (name, int(version))


def _hdu_summary(hdul):
    parts = []
    for i, hdu in enumerate(hdul):
        kind = f"image of shape {tuple(hdu.shape)}" if _is_image_hdu(hdu) else type(hdu).__name__
        parts.append(f"[{i}] {hdu.name or '-'}{f',{hdu.ver}' if hdu.ver > 1 else ''} ({kind})")
    return "; ".join(parts)


def _is_image_hdu(hdu):
    return isinstance(hdu, fits.CompImageHDU) or (
        isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)) and hdu.header.get("NAXIS", 0) >= 2
    )


def _select_hdu(hdul, ext, source):
    """The HDU ``ext`` of ``hdul``, or a `ReadError` listing the HDUs there are."""
    try:
        hdu = hdul[ext]
    except (KeyError, IndexError) as exc:
        msg = f"{source} has no extension [{_ext_text(ext)}]; it has: {_hdu_summary(hdul)}"
        raise ReadError(msg) from exc
    if not _is_image_hdu(hdu):
        msg = (
            f"the extension [{_ext_text(ext)}] of {source} holds no image ({type(hdu).__name__}, "
            f"NAXIS={hdu.header.get('NAXIS', 0)}); its HDUs: {_hdu_summary(hdul)}"
        )
        raise ReadError(msg)
    return hdu


def _ext_text(ext):
    return ",".join(str(e) for e in ext) if isinstance(ext, tuple) else str(ext)


def _open_path(path, ext=None):
    path = os.fspath(path)
    base, bracket = _split_extension(path)
    if bracket is not None:
        if ext is not None:
            msg = f"{path!r} names an extension in brackets and ext={ext!r} is given too; give one of them"
            raise InvalidInputError(msg)
        path, ext = base, bracket
    if not os.path.exists(path):
        msg = f"FITS file {path!r} does not exist"
        raise ReadError(msg)
    try:
        with filters_changed(("error", VerifyWarning)):
            # memmap=None: memory-mapped, yet scaled (BSCALE/BZERO) images stay readable (memmap=True refuses them)
            hdul = fits.open(path, memmap=None, lazy_load_hdus=False)
    except Exception as exc:
        msg = (
            f"could not open {path!r} as FITS ({type(exc).__name__}: {exc}); the file may be "
            "truncated or corrupt: download or copy it again"
        )
        raise ReadError(msg) from exc
    try:
        if ext is None:
            ext, hdu = _first_image_hdu(hdul, repr(path))
        else:
            hdu = _select_hdu(hdul, ext, repr(path))
        image = _from_hdu(hdu, f"{os.path.basename(path)}[{_ext_text(ext)}]", hdul=hdul)
        _check_readable(image, path)
    except AnomalyMatchError:
        hdul.close()
        raise
    except Exception as exc:  # noqa: BLE001 -- astropy raises many kinds for damaged files
        hdul.close()
        msg = (
            f"could not read the image in {path!r} ({type(exc).__name__}: {exc}); the file may be "
            "truncated or corrupt: download or copy it again"
        )
        raise ReadError(msg) from exc
    return image


def _check_readable(image, path):
    """Touch the last row so truncated files fail now, with a clear message, not mid-run."""
    ny, nx = image.shape
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.data[ny - 1 : ny, nx - 1 : nx]
    except Exception as exc:
        msg = (
            f"{path!r}: the image data cannot be read ({type(exc).__name__}: {exc}); the file is "
            "probably truncated: download or copy it again"
        )
        raise ReadError(msg) from exc


def parse_image(image, *, ext=None):
    """Turn any supported image input into an `ImageInput`.

    Parameters
    ----------
    image : str, os.PathLike, HDU, `~astropy.io.fits.HDUList`, `~astropy.nddata.NDData` or tuple
        A FITS path (memory-mapped; tile-compressed ``.fz`` works; ``"file.fits[2]"``,
        ``"file.fits[SCI]"`` or ``"file.fits[SCI,1]"`` choose the extension as in astropy
        and cfitsio, unless a file of that very name exists), an image HDU, an
        HDUList (the first image extension is used), an NDData with a ``wcs``, or a
        tuple ``(array, wcs)`` where ``wcs`` is a `~astropy.wcs.WCS` or a header.
    ext : int or str, optional
        The extension to use for paths and HDULists (default: the first with an image); a
        ``(name, version)`` tuple such as ``("SCI", 1)`` works too.

    Returns
    -------
    ImageInput

    Raises
    ------
    ReadError
        Missing, truncated or corrupt files, or no image data.
    MissingWCSError
        No celestial WCS.
    InvalidInputError
        Unsupported input kinds or shapes.
    """
    if isinstance(image, ImageInput):
        return image
    if isinstance(image, (str, os.PathLike)):
        return _open_path(image, ext=ext)
    if isinstance(image, fits.HDUList):
        if ext is None:
            ext, hdu = _first_image_hdu(image, "HDUList")
        else:
            hdu = _select_hdu(image, ext, "HDUList")
        return _from_hdu(hdu, f"HDUList[{_ext_text(ext)}]")
    if isinstance(image, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
        return _from_hdu(image, type(image).__name__)
    if isinstance(image, NDData):
        if image.wcs is None:
            msg = "the NDData has no wcs; attach one (NDData(data, wcs=WCS(header)))"
            raise MissingWCSError(msg)
        wcs = image.wcs if isinstance(image.wcs, WCS) else getattr(image.wcs, "low_level_wcs", image.wcs)
        if not isinstance(wcs, WCS):
            msg = f"the NDData's wcs must be an astropy.wcs.WCS, got {type(image.wcs).__name__}"
            raise MissingWCSError(msg)
        data = np.asarray(image.data)
        if image.mask is not None:
            data = np.where(np.asarray(image.mask, dtype=bool), np.nan, data)
        return ImageInput(
            data=_squeeze_to_2d(data, "NDData"),
            wcs=_celestial_wcs(wcs, "NDData"),
            source="NDData",
            unit=str(image.unit) if image.unit is not None else None,
            photometry=header_photometry(image.meta) if hasattr(image.meta, "get") else None,
        )
    if isinstance(image, tuple) and len(image) == 2:
        data, wcs = image
        if isinstance(wcs, fits.Header):
            wcs = _celestial_wcs(wcs, "(array, header)")
        elif not isinstance(wcs, WCS):
            msg = f"the second item of an (array, wcs) tuple must be a WCS or a FITS Header, got {type(wcs).__name__}"
            raise MissingWCSError(msg)
        data = np.asarray(data)
        photometry = header_photometry(image[1]) if isinstance(image[1], fits.Header) else None
        return ImageInput(
            data=_squeeze_to_2d(data, "(array, wcs)"),
            wcs=_celestial_wcs(wcs, "(array, wcs)"),
            source="(array, wcs)",
            photometry=photometry,
        )
    msg = (
        f"cannot use {type(image).__name__} as an image; give a FITS path, an HDU, an HDUList, "
        "an NDData with a wcs, or an (array, wcs) tuple"
    )
    raise InvalidInputError(msg)


def parse_images(images):
    """Parse ``{band: image}`` (or one image, named ``"band0"``) into ``{band: ImageInput}``.

    Parameters
    ----------
    images : dict or image
        Band name -> anything `parse_image` accepts.

    Returns
    -------
    dict
        Band name -> `ImageInput`, in the given order.
    """
    if not isinstance(images, dict):
        images = {"band0": images}
    if not images:
        msg = "no images given; pass {band: path_or_hdu, ...}"
        raise InvalidInputError(msg)
    parsed = {}
    try:
        for band, image in images.items():
            parsed[str(band)] = parse_image(image)
    except Exception:
        for value in parsed.values():
            value.close()
        raise
    return parsed
