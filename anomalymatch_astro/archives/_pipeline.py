"""`cutouts_from_service`: from a VO service or HiPS survey to a CutoutSet, resumable."""

import logging
import os
import warnings

import numpy as np
from astropy import units as u
from astropy.table import QTable

from ..utils import progress_bar, read_json, write_json_atomic
from ..utils.exceptions import (
    AnomalyMatchWarning,
    ArchiveError,
    InvalidInputError,
    NoOverlapError,
    ServiceError,
)
from ._client import PROTOCOLS, ArchiveClient
from ._errors import NoCoverageError
from ._results import filter_rows

__all__ = ["cutouts_from_service"]

log = logging.getLogger(__name__)

PROGRESS_FILE = "progress.json"
_FORMAT = "anomalymatch_astro.archives.progress"


def _band_map(bands):
    if bands is None:
        msg = "give the bands to fetch, e.g. bands=['g', 'r'] or {'g': 'CDS/P/SDSS9/g'} for HiPS"
        raise InvalidInputError(msg)
    if isinstance(bands, str):
        bands = [bands]
    if isinstance(bands, dict):
        out = {str(k): str(v) for k, v in bands.items()}
    else:
        out = {str(b): str(b) for b in bands}
    if not out:
        msg = "bands is empty; give at least one band"
        raise InvalidInputError(msg)
    return out


def _size_pixels(size):
    if isinstance(size, u.Quantity):
        msg = "size must be in pixels (int or (ny, nx)) for archive cutouts"
        raise InvalidInputError(msg)
    ny, nx = (size, size) if np.isscalar(size) else tuple(size)
    if int(ny) < 1 or int(nx) < 1:
        msg = f"size must be positive pixels, got {size!r}"
        raise InvalidInputError(msg)
    return int(ny), int(nx)


class _Progress:
    """The resumable record of a workdir: parts already cut (HDF5) and skipped ids (JSON)."""

    def __init__(self, workdir, config):
        self.workdir = workdir
        self.path = os.path.join(workdir, PROGRESS_FILE) if workdir else None
        self.state = {"format": _FORMAT, "version": 1, "config": config, "parts": [], "skipped": {}}
        if self.path and os.path.exists(self.path):
            try:
                state = read_json(self.path, error=InvalidInputError)
            except InvalidInputError as exc:
                state, why = None, f": {exc}"
            else:
                why = ""
            if not isinstance(state, dict) or not isinstance(state.get("parts"), list):
                msg = (
                    f"the workdir {workdir!r} holds a damaged {PROGRESS_FILE}{why}; delete it (or the whole "
                    "workdir) to start again"
                )
                raise InvalidInputError(msg)
            if state.get("format") != _FORMAT or state.get("config") != config:
                msg = (
                    f"the workdir {workdir!r} holds the progress of another query ({state.get('config')}); "
                    "use a new workdir, or delete it to start again"
                )
                raise InvalidInputError(msg)
            self.state = state

    @property
    def done_ids(self):
        ids = {i for part in self.state["parts"] for i in part["ids"]}
        return ids | set(self.state["skipped"])

    def _save(self):
        if not self.path:
            return
        write_json_atomic(self.path, self.state, indent=1, sort_keys=False)

    def add_part(self, cs):
        if not self.workdir:
            self.state["parts"].append({"file": None, "ids": [str(i) for i in cs.ids], "set": cs})
            return
        name = f"part-{len(self.state['parts']):05d}.h5"
        path = os.path.join(self.workdir, name)
        cs.to_hdf5(path, mode="w", overwrite=True)  # written beside, then renamed into place
        self.state["parts"].append({"file": name, "ids": [str(i) for i in cs.ids]})
        self._save()

    def skip(self, ids, reason):
        for i in ids:
            self.state["skipped"][str(i)] = reason
        self._save()

    def load_parts(self):
        from ..cutouts import CutoutSet

        out = []
        for part in self.state["parts"]:
            if part.get("set") is not None:
                out.append(part["set"])
            else:
                out.append(CutoutSet.from_hdf5(os.path.join(self.workdir, part["file"]), lazy=False))
        return out


def _pick(rows, ra, dec):
    """The row whose image centre is nearest the position (the first when centres are unknown)."""
    if len(rows) == 1:
        return rows[0]
    s_ra, s_dec = np.asarray(rows["s_ra"], float), np.asarray(rows["s_dec"], float)
    if not np.all(np.isfinite(s_ra) & np.isfinite(s_dec)):
        return rows[0]
    d = (np.cos(np.radians(dec)) * ((s_ra - ra + 180) % 360 - 180)) ** 2 + (s_dec - dec) ** 2
    return rows[int(np.argmin(d))]


def _fetch_position(
    client,
    service_url,
    coord,
    band_map,
    *,
    protocol,
    size,
    soda,
    radius,
    tap_table,
    tap_async,
    hips_pixel_scale,
):
    """Files (and provenance) of every band at one position: {band: dict} or missing bands."""
    files, missing = {}, []
    if protocol == "hips":
        for band, hips_id in band_map.items():
            path = client.hips_cutout(hips_id, coord, size=size, pixel_scale=hips_pixel_scale, server=service_url)
            files[band] = {
                "path": path,
                "dataset_id": hips_id,
                "access_url": service_url or "hips2fits",
                "method": "hips",
            }
        return files, missing
    rows = client.search(
        service_url,
        coord.ra.deg,
        coord.dec.deg,
        protocol=protocol,
        radius=radius,
        tap_table=tap_table,
        tap_async=tap_async,
    )
    for band, wanted in band_map.items():
        sub = filter_rows(rows.copy(), wanted=[wanted], image_format="fits")
        if len(sub) == 0:
            missing.append(band)
            continue
        row = _pick(sub, coord.ra.deg, coord.dec.deg)
        entry = {
            "dataset_id": str(row["dataset_id"]),
            "access_url": str(row["access_url"]),
            "method": "image",
        }
        use_soda = soda is True or (soda == "auto" and row["datalink_url"] and np.isfinite(row["pixel_scale"]))
        if use_soda:
            scale = float(row["pixel_scale"]) if np.isfinite(row["pixel_scale"]) else None
            if scale is None:
                msg = (
                    f"the service gives no pixel scale for {row['dataset_id']}, so a SODA cutout of "
                    f"{size} px cannot be sized; use soda='auto' or False"
                )
                raise InvalidInputError(msg)
            if not row["datalink_url"]:
                msg = f"{service_url} declares no DataLink/SODA service; use soda='auto' or False"
                raise ServiceError(msg)
            circle = max(size) * scale * 0.75 * u.arcsec  # half-diagonal plus a margin
            try:
                entry["path"] = client.soda_cutout(str(row["datalink_url"]), coord, circle)
                entry["method"] = "soda"
                entry["access_url"] = str(row["datalink_url"])
            except ArchiveError as exc:
                if soda is True:
                    raise
                log.info("SODA cutout failed (%s); downloading the whole image", exc)
        if "path" not in entry:
            entry["path"] = client.download(str(row["access_url"]))
        files[band] = entry
    return files, missing


def _with_provenance(cs, plans, service_url, protocol, band_map):
    from ..cutouts import CutoutSet, cutout_wcs

    table = QTable(cs.table, copy=True)
    n = len(table)
    table["service"] = [service_url or "hips2fits"] * n
    table["protocol"] = [protocol] * n
    by_id = {str(i): plans[str(i)] for i in table["id"]}
    for band in band_map:
        table[f"dataset_id_{band}"] = [by_id[str(i)][band]["dataset_id"] for i in table["id"]]
        table[f"access_url_{band}"] = [by_id[str(i)][band]["access_url"] for i in table["id"]]
        table[f"method_{band}"] = [by_id[str(i)][band]["method"] for i in table["id"]]
    table["cutout_wcs"] = [
        cutout_wcs(cs.meta["grid_wcs"], int(x), int(y)).to_header_string(relax=True)
        for x, y in zip(table["x_origin"], table["y_origin"])
    ]
    return CutoutSet(cs.data, table, cs.bands, meta=cs.meta)


def cutouts_from_service(
    service_url,
    positions,
    size,
    *,
    bands,
    protocol="sia2",
    client=None,
    workdir=None,
    soda="auto",
    radius=1 * u.arcsec,
    pixel_scale=None,
    tap_table="ivoa.obscore",
    tap_async=False,
    on_missing="raise",
    reproject="interp",
    progress=True,
):
    """Cutouts at catalogue positions from a VO image service or a HiPS survey, in one call.

    For each position the service is searched, the best image of every band (nearest
    centre) is fetched -- a server-side SODA cutout when the service offers DataLink,
    else the whole image, cached -- and `~anomalymatch_astro.cutouts.make_cutouts` cuts
    all bands on one pixel grid.  With a ``workdir`` the finished cutouts are kept there
    (``progress.json`` + HDF5 parts) and a re-run skips the positions already done.

    Parameters
    ----------
    service_url : str or None
        SIA 2 query URL, SIA 1 base URL, TAP base URL, or hips2fits endpoint for
        ``protocol="hips"`` (None: astroquery's default).
    positions : `~astropy.coordinates.SkyCoord` or `~astropy.table.Table`
        Positions; a table's ``id`` column names them and its other columns are kept.
    size : int or (int, int)
        Cutout size in pixels of the first band's image.
    bands : sequence of str or dict
        Bands in output order.  A dict maps output names to the service's band names
        (e.g. ``{"g": "F606W"}``) or, for HiPS, to HiPS IDs (``{"r": "CDS/P/DSS2/red"}``).
    protocol : {"sia2", "sia1", "tap", "hips"}, optional
        How to find images.
    client : `ArchiveClient`, optional
        Session, cache, retries and rate limit (default: a new client with ``conf`` settings).
    workdir : str or os.PathLike, optional
        Folder of the resumable progress record.
    soda : {"auto", True, False}, optional
        Server-side cutouts through DataLink/SODA: when offered (default), always
        (error when not offered), or never.
    radius : `~astropy.units.Quantity`, optional
        Search radius around each position.
    pixel_scale : `~astropy.units.Quantity`, optional
        Pixel scale of HiPS cutouts (required for ``protocol="hips"``).
    tap_table, tap_async : optional
        ObsCore table and asynchronous jobs for ``protocol="tap"``.
    on_missing : {"raise", "skip"}, optional
        Positions where some band has no image: raise `NoCoverageError` listing them
        (after the other positions were cut and saved), or leave them out (their ids
        are in ``meta["archive"]["skipped_ids"]``).
    reproject : str, optional
        Resampling of bands not on the first band's grid (see ``make_cutouts``).
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    `~anomalymatch_astro.CutoutSet`
        In input order.  ``meta["archive"]`` records service, protocol and bands; per-row
        columns ``service``, ``protocol``, ``dataset_id_<band>``, ``access_url_<band>``,
        ``method_<band>`` (``image``, ``soda`` or ``hips``) and ``cutout_wcs`` (each
        cutout's WCS header) come with ``make_cutouts``' columns.

    Raises
    ------
    NoCoverageError
        When some band has no image at some positions and ``on_missing="raise"``.
    ServiceError, ArchiveError
        When the service fails (see `ArchiveClient`).
    """
    from ..cutouts import concatenate, make_cutouts, parse_positions

    protocols = PROTOCOLS + ("hips",)
    if protocol not in protocols:
        msg = f"protocol must be one of {protocols}, got {protocol!r}"
        raise InvalidInputError(msg)
    if on_missing not in ("raise", "skip"):
        msg = f"on_missing must be 'raise' or 'skip', got {on_missing!r}"
        raise InvalidInputError(msg)
    if soda not in ("auto", True, False):
        msg = f"soda must be 'auto', True or False, got {soda!r}"
        raise InvalidInputError(msg)
    if protocol == "hips" and pixel_scale is None:
        msg = "protocol='hips' needs pixel_scale (e.g. 0.2 * u.arcsec)"
        raise InvalidInputError(msg)
    band_map = _band_map(bands)
    size = _size_pixels(size)
    client = client if client is not None else ArchiveClient()
    coords, ids, extra = parse_positions(positions)
    coords = coords.icrs
    if ids is None:
        ids = np.array([f"obj{i}" for i in range(len(coords))])
    table = QTable({"id": ids, "ra": coords.ra.deg * u.deg, "dec": coords.dec.deg * u.deg})
    if extra is not None:
        for name in extra.colnames:
            table[name] = extra[name]

    config = {
        "service": service_url,
        "protocol": protocol,
        "bands": band_map,
        "size": list(size),
        "soda": soda,
        "reproject": reproject,
        "pixel_scale": None if pixel_scale is None else u.Quantity(pixel_scale, u.arcsec).value,
    }
    if workdir is not None:
        workdir = os.fspath(workdir)
        os.makedirs(workdir, exist_ok=True)
    record = _Progress(workdir, config)
    done = record.done_ids
    todo = [k for k, i in enumerate(ids) if str(i) not in done]
    if done:
        log.info("resuming: %d of %d positions already done in %s", len(ids) - len(todo), len(ids), workdir)

    plans, missing = {}, {}
    groups = {}
    for k in progress_bar(todo, desc="archive", progress=progress, unit="pos"):
        files, absent = _fetch_position(
            client,
            service_url,
            coords[k],
            band_map,
            protocol=protocol,
            size=size,
            soda=soda,
            radius=radius,
            tap_table=tap_table,
            tap_async=tap_async,
            hips_pixel_scale=pixel_scale,
        )
        if absent:
            missing[str(ids[k])] = absent
            continue
        plans[str(ids[k])] = files
        key = tuple(files[b]["path"] for b in band_map)
        groups.setdefault(key, []).append(k)

    for key, rows in groups.items():
        images = dict(zip(band_map, key))
        try:
            cs = make_cutouts(
                images,
                table[rows],
                size,
                reproject=reproject,
                on_missing="skip" if on_missing == "skip" else "raise",
                progress=False,
            )
        except NoOverlapError as exc:
            msg = f"{exc} (the service listed these images as covering the positions)"
            raise NoCoverageError(msg, ids=[str(ids[r]) for r in rows]) from exc
        for sid in cs.meta.get("skipped_ids", []):
            missing[sid] = list(band_map)
        if len(cs):
            record.add_part(_with_provenance(cs, plans, service_url, protocol, band_map))

    if missing and on_missing == "raise":
        lines = [f"{i} (no {', '.join(b)})" for i, b in list(missing.items())[:10]]
        msg = (
            f"{service_url or 'hips2fits'} has no image for {len(missing)} position(s): {'; '.join(lines)}. "
            "Check the band names and positions, or pass on_missing='skip'"
        )
        if workdir:
            msg += f"; the other positions are saved in {workdir}"
        raise NoCoverageError(msg, ids=list(missing))
    if missing:
        record.skip(missing, "no coverage")
        warnings.warn(
            f"skipped {len(missing)} position(s) without coverage in every band: {list(missing)[:10]}",
            AnomalyMatchWarning,
            stacklevel=2,
        )

    parts = record.load_parts()
    if not parts:
        msg = f"{service_url or 'hips2fits'} gave no cutouts at all: no position is covered in every band"
        raise NoCoverageError(msg, ids=[str(i) for i in ids])
    cs = concatenate(parts) if len(parts) > 1 else parts[0]
    order = [str(i) for i in ids if str(i) in set(cs.ids)]
    cs = cs[cs.index_of(order)]
    meta = dict(parts[0].meta)
    grids = {p.meta.get("grid_wcs") for p in parts}
    if len(grids) > 1:  # one grid per image group: each row's WCS is in its cutout_wcs column
        meta.pop("grid_wcs", None)
        meta.pop("images", None)
    skipped = sorted(record.state["skipped"])
    meta["archive"] = {
        "service": service_url or "hips2fits",
        "protocol": protocol,
        "bands": band_map,
        "size": list(size),
        "soda": soda,
        "skipped_ids": skipped,
        "workdir": workdir,
    }
    from ..cutouts import CutoutSet

    return CutoutSet(cs.data, cs.table, cs.bands, meta=meta)
