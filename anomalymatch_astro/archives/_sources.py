"""Surveys for `mine`: for one HEALPix cell, its images per band and its catalogued sources.

A survey is any picklable object with

* ``bands``: the band names, in cutout order;
* ``image_size()``: the side of a typical image (an angle; it sets the cell order);
* ``cell_images(center, radius)``: ``{band: [image, ...]}`` of the images that may cover the
  circle, each image a dict with ``path`` (a local FITS file) and the provenance keys
  ``dataset_id``, ``access_url`` and ``method``; a band without images means "no data here";
* ``cell_sources(center, radius)``: a `~astropy.table.Table` with ``id``, ``ra``, ``dec`` (deg)
  of the sources in the circle (more is fine: `mine` keeps those of the cell and region), or
  None to detect sources on the images (`detect_sources_on_images`);
* ``describe()``: a JSON-able dict recorded in the workdir (a rerun must describe the same survey).

`LocalSurvey` serves FITS mosaics and a catalogue on disk; `VOSurvey` an SIA 2 (or HiPS)
image service and, optionally, a TAP source table, through an `ArchiveClient` whose rate
limit is held across all Dask workers (`GlobalRateLimit`).
"""

import logging
import os

import numpy as np
from astropy import units as u

from ..utils.exceptions import InvalidInputError, ServiceError
from ._ratelimit import GlobalRateLimit, LimitedClient
from ._results import filter_rows, results_table

__all__ = ["LocalSurvey", "VOSurvey", "image_footprint"]

log = logging.getLogger(__name__)

# per-process caches: (path, mtime) -> (shape, WCS); catalogue path -> Table
_HEADERS = {}
_CATALOGS = {}


def image_footprint(path):
    """``(shape, wcs)`` of the first image HDU with a celestial WCS in a FITS file (cached per process)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    key = (os.fspath(path), os.stat(path).st_mtime_ns)
    if key not in _HEADERS:
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul:
                if hdu.header.get("NAXIS", 0) >= 2 and hdu.is_image:
                    wcs = WCS(hdu.header, naxis=2)
                    if wcs.has_celestial:
                        _HEADERS[key] = ((int(hdu.header["NAXIS2"]), int(hdu.header["NAXIS1"])), wcs)
                        break
            else:
                msg = f"{os.fspath(path)!r} has no image with a celestial WCS"
                raise InvalidInputError(msg)
    return _HEADERS[key]


def _touches(path, center, radius):
    """True when the image at ``path`` may meet the circle (its corners' circle overlaps it)."""
    from astropy.coordinates import SkyCoord

    (ny, nx), wcs = image_footprint(path)
    corners = wcs.pixel_to_world([-0.5, nx - 0.5, nx - 0.5, -0.5], [-0.5, -0.5, ny - 0.5, ny - 0.5])
    mid = wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    half_diag = float(mid.separation(SkyCoord(corners)).max().deg)
    return float(mid.separation(center).deg) <= half_diag + radius


class LocalSurvey:
    """A survey on disk: FITS images of each band and an optional source catalogue.

    Parameters
    ----------
    images : dict
        ``{band: path or list of paths}`` in cutout order; the images of a band may be
        tiles of a mosaic (each with its own WCS).
    catalog : str, os.PathLike or `~astropy.table.Table`, optional
        The sources: a table (or a file astropy reads) with ``ra``/``dec`` in degrees and
        ids in ``id_column``.  None: sources are detected on the images of each cell.
    id_column : str, optional
        Column of the ids (default ``"id"``; e.g. ``"source_id"``).

    Examples
    --------
    >>> from anomalymatch_astro.archives import LocalSurvey
    >>> survey = LocalSurvey({"g": ["g_00.fits", "g_01.fits"], "r": ["r_00.fits", "r_01.fits"]},
    ...                      catalog="sources.ecsv")   # doctest: +SKIP
    """

    def __init__(self, images, *, catalog=None, id_column="id"):
        if not isinstance(images, dict) or not images:
            msg = "images must be a dict {band: path or list of paths} with at least one band"
            raise InvalidInputError(msg)
        self.images = {
            str(b): [os.path.abspath(os.fspath(p)) for p in ([v] if isinstance(v, (str, os.PathLike)) else v)]
            for b, v in images.items()
        }
        for band, paths in self.images.items():
            missing = [p for p in paths if not os.path.exists(p)]
            if not paths or missing:
                msg = f"band {band!r}: no image files, or missing files {missing[:3]}"
                raise InvalidInputError(msg)
        self.bands = tuple(self.images)
        self.id_column = str(id_column)
        if catalog is None or isinstance(catalog, (str, os.PathLike)):
            self.catalog = None if catalog is None else os.path.abspath(os.fspath(catalog))
            self._table = None
        else:
            self.catalog, self._table = None, catalog

    def __repr__(self):
        n = sum(len(v) for v in self.images.values())
        return f"<LocalSurvey bands={list(self.bands)} images={n} catalog={self.catalog or self._table is not None}>"

    def describe(self):
        """The survey as a JSON-able dict (recorded in the mining workdir)."""
        return {
            "kind": "local",
            "images": self.images,
            "catalog": self.catalog if self._table is None else f"<table of {len(self._table)} rows>",
            "id_column": self.id_column,
        }

    def image_size(self):
        """The side of the largest image of the first band."""
        sides = []
        for path in self.images[self.bands[0]]:
            (ny, nx), wcs = image_footprint(path)
            scale = np.sqrt(abs(np.linalg.det(wcs.celestial.pixel_scale_matrix)))
            sides.append(max(ny, nx) * scale)
        return max(sides) * u.deg

    def pixel_scale(self):
        """The pixel scale of the first image of the first band."""
        _, wcs = image_footprint(self.images[self.bands[0]][0])
        return float(np.sqrt(abs(np.linalg.det(wcs.celestial.pixel_scale_matrix)))) * u.deg

    def cell_images(self, center, radius):
        """``{band: [image dict]}`` of the files that may meet the circle."""
        out = {}
        for band, paths in self.images.items():
            out[band] = [
                {"path": p, "dataset_id": os.path.basename(p), "access_url": p, "method": "file"}
                for p in paths
                if _touches(p, center, radius)
            ]
        return out

    def _catalog_table(self):
        from astropy.table import Table

        if self._table is not None:
            table = self._table
        elif self.catalog is None:
            return None
        else:
            if self.catalog not in _CATALOGS:
                _CATALOGS[self.catalog] = Table.read(self.catalog)
            table = _CATALOGS[self.catalog]
        if self.id_column not in table.colnames:
            msg = f"the catalogue has no id column {self.id_column!r} (columns: {table.colnames}); pass id_column="
            raise InvalidInputError(msg)
        return table

    def cell_sources(self, center, radius):
        """The catalogue rows within ``radius`` degrees of ``center`` (None: detect on the images)."""
        from astropy.coordinates import SkyCoord

        table = self._catalog_table()
        if table is None:
            return None
        coords = SkyCoord(np.asarray(table["ra"], float) * u.deg, np.asarray(table["dec"], float) * u.deg)
        rows = table[coords.separation(center).deg <= radius]
        return _with_id(rows, self.id_column)


def _plain(col):
    """A column's values as a plain numpy array: units dropped, masked entries NaN (floats), 0 or ""."""
    mask = np.asarray(getattr(col, "mask", False))
    values = getattr(col, "unmasked", col)
    values = np.asarray(getattr(values, "value", values))
    if mask.any():
        values = values.copy()
        values[mask] = np.nan if values.dtype.kind == "f" else ("" if values.dtype.kind in "US" else 0)
    return values


def _with_id(table, id_column):
    from astropy.table import Table

    table = Table({name: _plain(table[name]) for name in table.colnames if getattr(table[name], "ndim", 1) == 1})
    if id_column != "id":
        if "id" in table.colnames:
            table.rename_column("id", "id_catalog")
        table.rename_column(id_column, "id")
    table["id"] = np.asarray(table["id"]).astype(str)
    table.meta = {}
    return table


class VOSurvey:
    """A survey served by VO services: SIA 2 (or HiPS) images, sources from TAP or detection.

    Parameters
    ----------
    images_url : str or None
        The SIA 2 query URL, or a hips2fits endpoint for ``hips`` (None: astroquery's default).
    bands : sequence of str or dict
        Band names in cutout order; a dict maps them to the service's band names (SIA 2,
        matched as by `cutouts_from_service`) or to HiPS IDs (with ``hips=True``).
    tap_url, tap_table : str, optional
        The TAP service and table of the sources (``ra``, ``dec`` columns in degrees).
        Without them, sources are detected on the images.
    id_column : str, optional
        The id column of the TAP table (default ``"id"``).
    collection : str, optional
        Only images of this collection (SIA 2 ``COLLECTION``).
    soda : bool, optional
        Cut the cell out of each image on the server (DataLink/SODA) where offered (default
        True), instead of downloading whole images.
    hips : bool, optional
        ``images_url`` is a hips2fits service and ``bands`` map to HiPS IDs.
    pixel_scale : `~astropy.units.Quantity`, optional
        Pixel scale of HiPS images (required with ``hips``).
    image_size : `~astropy.units.Quantity`, optional
        A typical image side (default: asked from the service, the ``s_fov`` of an image).
    rate_limit : float, optional
        Most requests per second to the services, across every worker together (default 0: none).
    cache_dir, timeout, retries, backoff : optional
        Passed on to the `ArchiveClient` of each worker.
    """

    def __init__(
        self,
        images_url,
        *,
        bands,
        tap_url=None,
        tap_table=None,
        id_column="id",
        collection=None,
        soda=True,
        hips=False,
        pixel_scale=None,
        image_size=None,
        rate_limit=0.0,
        cache_dir=None,
        timeout=None,
        retries=None,
        backoff=None,
    ):
        if isinstance(bands, str):
            bands = [bands]
        self.band_map = (
            {str(k): str(v) for k, v in bands.items()} if isinstance(bands, dict) else {str(b): str(b) for b in bands}
        )
        if not self.band_map:
            msg = "bands is empty; give at least one band"
            raise InvalidInputError(msg)
        if (tap_url is None) != (tap_table is None):
            msg = "give both tap_url and tap_table (or neither, to detect sources on the images)"
            raise InvalidInputError(msg)
        if hips and pixel_scale is None:
            msg = "hips=True needs pixel_scale (e.g. 0.4 * u.arcsec)"
            raise InvalidInputError(msg)
        if not hips and not images_url:
            msg = "images_url (an SIA 2 query URL) is required unless hips=True"
            raise InvalidInputError(msg)
        self.bands = tuple(self.band_map)
        self.images_url, self.tap_url, self.tap_table = images_url, tap_url, tap_table
        self.id_column, self.collection, self.soda, self.hips = str(id_column), collection, bool(soda), bool(hips)
        self.pixel_scale_ = None if pixel_scale is None else u.Quantity(pixel_scale, u.arcsec)
        self._given_scale = None if pixel_scale is None else float(self.pixel_scale_.to_value(u.arcsec))
        self._image_size = None if image_size is None else u.Quantity(image_size, u.deg)
        self.limiter = GlobalRateLimit(rate_limit)
        self.client_options = {"cache_dir": cache_dir, "timeout": timeout, "retries": retries, "backoff": backoff}
        self._client = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_client"] = None  # each worker makes its own session
        return state

    def __repr__(self):
        return f"<VOSurvey {self.images_url or 'hips2fits'} bands={list(self.bands)} tap={self.tap_table}>"

    @property
    def client(self):
        """The `ArchiveClient` of this process (rate limited by ``limiter``)."""
        if self._client is None:
            self._client = LimitedClient(self.limiter, **self.client_options)
        return self._client

    def describe(self):
        """The survey as a JSON-able dict (recorded in the mining workdir)."""
        return {
            "kind": "hips" if self.hips else "sia2",
            "images_url": self.images_url,
            "bands": self.band_map,
            "tap_url": self.tap_url,
            "tap_table": self.tap_table,
            "id_column": self.id_column,
            "collection": self.collection,
            "soda": self.soda,
            "pixel_scale": self._given_scale,
        }

    def pixel_scale(self):
        """The pixel scale: given (HiPS), else the ``s_pixel_scale`` of the service's images (None if unknown)."""
        if self.pixel_scale_ is None and not self.hips:
            rows = self._search(None, 180.0, raw=True)
            col = rows["s_pixel_scale"] if "s_pixel_scale" in rows.colnames else []
            values = [float(v) for v in np.ma.filled(np.ma.asarray(col, dtype=float), np.nan) if np.isfinite(v)]
            self.pixel_scale_ = float(np.median(values)) * u.arcsec if values else None
        return self.pixel_scale_

    def image_size(self):
        """The side of a typical image: given, else the ``s_fov`` of the service's first image."""
        if self._image_size is not None:
            return self._image_size
        if self.hips:
            msg = "a HiPS survey has no image size; pass image_size= (or order= to mine)"
            raise InvalidInputError(msg)
        rows = self._search(None, 180.0, raw=True)
        fov = rows["s_fov"] if "s_fov" in rows.colnames else []
        values = [float(v) for v in np.ma.filled(np.ma.asarray(fov, dtype=float), np.nan) if np.isfinite(v)]
        if not values:
            msg = f"{self.images_url} gives no image size (s_fov); pass image_size= or order="
            raise ServiceError(msg)
        return float(np.median(values)) * u.deg

    def _search(self, center, radius, *, raw=False):
        import pyvo

        def attempt():
            service = pyvo.dal.SIA2Service(self.images_url, session=self.client.session, check_baseurl=False)
            kwargs = {"collection": self.collection} if self.collection else {}
            if center is None:
                return service.search(maxrec=50, **kwargs)
            pos = (center.ra.deg * u.deg, center.dec.deg * u.deg, radius * u.deg)
            return service.search(pos=pos, **kwargs)

        results = self.client.call(attempt, what=f"SIA 2 query of {self.images_url}")
        if raw:
            return results.to_table()
        return results_table(results, protocol="sia2", service_url=self.images_url)

    def cell_images(self, center, radius):
        """``{band: [image dict]}``: SODA cut-outs of the circle (or whole images, or HiPS cut-outs)."""
        if self.hips:
            scale = self.pixel_scale_.to_value(u.deg)
            n = int(np.ceil(2 * radius / scale)) + 2
            out = {}
            for band, hips_id in self.band_map.items():
                path = self.client.hips_cutout(
                    hips_id, center, size=n, pixel_scale=self.pixel_scale_, server=self.images_url
                )
                out[band] = [
                    {
                        "path": path,
                        "dataset_id": hips_id,
                        "access_url": self.images_url or "hips2fits",
                        "method": "hips",
                    }
                ]
            return out
        rows = self._search(center, radius)
        out = {}
        for band, wanted in self.band_map.items():
            sub = filter_rows(rows.copy(), wanted=[wanted], image_format="fits")
            images = []
            for row in sub:
                entry = {"dataset_id": str(row["dataset_id"]), "access_url": str(row["access_url"]), "method": "image"}
                if self.soda and row["datalink_url"]:
                    try:
                        entry["path"] = self.client.soda_cutout(str(row["datalink_url"]), center, radius * u.deg)
                        entry["method"], entry["access_url"] = "soda", str(row["datalink_url"])
                    except ServiceError as exc:  # e.g. the circle misses the image's pixels
                        log.info("no SODA cut-out of %s here (%s)", row["dataset_id"], exc)
                        continue
                else:
                    entry["path"] = self.client.download(str(row["access_url"]))
                images.append(entry)
            out[band] = images
        return out

    def cell_sources(self, center, radius):
        """The TAP table's rows within ``radius`` degrees of ``center`` (None without TAP: detect)."""
        if self.tap_url is None:
            return None
        import pyvo

        query = (
            f"SELECT * FROM {self.tap_table} WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
            f"CIRCLE('ICRS', {float(center.ra.deg)!r}, {float(center.dec.deg)!r}, {float(radius)!r}))"
        )

        def attempt():
            return pyvo.dal.TAPService(self.tap_url, session=self.client.session).run_sync(query)

        table = self.client.call(attempt, what=f"TAP query of {self.tap_url}").to_table()
        if self.id_column not in table.colnames:
            msg = f"{self.tap_table} has no id column {self.id_column!r} (columns: {table.colnames}); pass id_column="
            raise ServiceError(msg)
        return _with_id(table, self.id_column)
