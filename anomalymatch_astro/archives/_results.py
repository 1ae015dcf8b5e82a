"""Result normalisation: a pyvo answer (SIA 1, SIA 2 or ObsCore) as one table of the `find_images` columns."""

import os
import re
from urllib.parse import quote, urlsplit

import numpy as np
from astropy.table import Table

from ..utils.exceptions import ServiceError
from ._votable import datalink_url_column

__all__ = ["IMAGE_COLUMNS", "results_table", "filter_rows", "stack_rows", "empty_rows"]

#: The columns of `ArchiveClient.find_images`, in order.
IMAGE_COLUMNS = (
    "pos_index",
    "id",
    "ra",
    "dec",
    "band",
    "title",
    "dataset_id",
    "access_url",
    "format",
    "datalink_url",
    "s_ra",
    "s_dec",
    "pixel_scale",
    "service",
    "protocol",
)
_BAND_COLUMNS = (
    "band",
    "filter",
    "bandpassid",
    "bandpass_id",
    "energy_bandpassname",
    "em_filter",
    "filter_name",
)


def _col(table, *names):
    lower = {c.lower(): c for c in table.colnames}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def _ucd_col(votable_table, *ucds):
    for field in votable_table.fields:
        if field.ucd and field.ucd.lower() in ucds:
            return field.name
    return None


def _text(value):
    if value is None or value is np.ma.masked:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def empty_rows():
    """An empty table of the `find_images` columns."""
    t = Table()
    for name in IMAGE_COLUMNS:
        if name in ("pos_index",):
            t[name] = np.zeros(0, dtype=np.int64)
        elif name in ("ra", "dec", "s_ra", "s_dec", "pixel_scale"):
            t[name] = np.zeros(0, dtype=float)
        else:
            t[name] = np.zeros(0, dtype="U1")
    return t


def results_table(results, *, protocol, service_url):
    """Normalise a pyvo result (SIA 1 or ObsCore) to the `find_images` columns.

    Parameters
    ----------
    results : pyvo result
        The answer of one search.
    protocol : {"sia1", "sia2", "tap"}
        How it was asked.
    service_url : str
        Where it was asked.

    Returns
    -------
    `~astropy.table.Table`
        One row per image, without the position columns, plus ``_words`` (title, obs_id
        and file name) for `filter_rows`.
    """
    table = results.to_table()
    vot = results.votable
    n = len(table)
    out = empty_rows()
    if n == 0:
        return out
    first = vot.get_first_table()
    if protocol == "sia1":
        url_col = _ucd_col(first, "vox:image_accessreference") or _col(table, "accref", "access_url")
        fmt_col = _ucd_col(first, "vox:image_format") or _col(table, "mime", "format")
        title_col = _ucd_col(first, "vox:image_title") or _col(table, "imagetitle", "title")
        band_col = _ucd_col(first, "vox:bandpass_id") or _col(table, *_BAND_COLUMNS)
        ra_col = _ucd_col(first, "pos_eq_ra_main", "pos.eq.ra;meta.main") or _col(table, "centeralpha")
        dec_col = _ucd_col(first, "pos_eq_dec_main", "pos.eq.dec;meta.main") or _col(table, "centerdelta")
        did_col = _col(table, "pub_did", "pubdid", "obs_publisher_did", "dataset_id")
        scale_col, scale_unit = _ucd_col(first, "vox:image_scale") or _col(table, "pixelscale"), 3600.0
    else:
        url_col = _col(table, "access_url")
        fmt_col = _col(table, "access_format")
        title_col = _col(table, "obs_title", "obs_id")
        band_col = _col(table, *_BAND_COLUMNS)
        ra_col, dec_col = _col(table, "s_ra"), _col(table, "s_dec")
        did_col = _col(table, "obs_publisher_did", "obs_id")
        scale_col, scale_unit = _col(table, "s_pixel_scale"), 1.0
    if url_col is None:
        msg = (
            f"the {protocol.upper()} answer of {service_url} has no access URL column (columns: "
            f"{table.colnames}); is this the right protocol?"
        )
        raise ServiceError(msg)
    datalink = datalink_url_column(vot)
    obs_id_col = _col(table, "obs_id")
    rows = {name: [] for name in IMAGE_COLUMNS}
    for row in table:
        url = _text(row[url_col])
        title = _text(row[title_col]) if title_col else ""
        rows["access_url"].append(url)
        rows["format"].append(_text(row[fmt_col]) if fmt_col else "")
        rows["title"].append(title)
        rows["band"].append(_text(row[band_col]) if band_col else "")
        rows["dataset_id"].append(_text(row[did_col]) if did_col else url)
        rows["s_ra"].append(float(row[ra_col]) if ra_col and row[ra_col] is not np.ma.masked else np.nan)
        rows["s_dec"].append(float(row[dec_col]) if dec_col and row[dec_col] is not np.ma.masked else np.nan)
        rows["pixel_scale"].append(_scale(row[scale_col], scale_unit) if scale_col else np.nan)
        words = " ".join([title, _text(row[obs_id_col]) if obs_id_col else "", os.path.basename(urlsplit(url).path)])
        rows["_words"] = rows.get("_words", []) + [words]
        if datalink is not None:
            base, column, fixed = datalink
            params = dict(fixed)
            params["ID"] = _text(row[column])
            rows["datalink_url"].append(
                base
                + ("&" if "?" in base else "?")
                + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
            )
        else:
            rows["datalink_url"].append("")
    words = rows.pop("_words")
    for name in ("pos_index", "id", "ra", "dec", "service", "protocol"):
        rows.pop(name)
    out = Table({name: rows[name] for name in rows})
    out["service"] = [service_url] * n
    out["protocol"] = [protocol] * n
    out["_words"] = words
    return out


def _scale(value, factor):
    """Pixel scale in arcsec from a scalar or per-axis value (NaN when unknown)."""
    try:
        values = np.abs(np.ma.filled(np.ma.asarray(value, dtype=float).ravel(), np.nan))
    except (TypeError, ValueError):
        return np.nan
    return float(values[0]) * factor if values.size and np.isfinite(values[0]) else np.nan


def _tokens(text):
    return {t for t in re.split(r"[^0-9a-z]+", text.lower()) if t}


def filter_rows(rows, *, wanted, image_format):
    """Keep the rows of the wanted bands and image format; name each kept row's band.

    Parameters
    ----------
    rows : `~astropy.table.Table`
        A `results_table`.
    wanted : list of str or None
        Band names, matched against the band column or else the words of the row.
    image_format : str or None
        A word the format must contain (rows without a format are kept).

    Returns
    -------
    `~astropy.table.Table`
    """
    if len(rows) == 0:
        return empty_rows()
    keep = np.ones(len(rows), dtype=bool)
    if image_format:
        fmt = np.array([f.lower() for f in rows["format"]])
        keep &= np.array([(image_format.lower() in f) or f == "" for f in fmt])
    if wanted is not None:
        matched = []
        for i, row in enumerate(rows):
            band = str(row["band"])
            hit = ""
            for w in wanted:
                if band:
                    if band.lower() == w.lower():
                        hit = w
                        break
                elif w.lower() in _tokens(row["_words"]):
                    hit = w
                    break
            matched.append(hit)
            keep[i] &= bool(hit)
        rows["band"] = matched
    rows = rows[keep]
    rows.remove_column("_words")
    return rows


def stack_rows(tables):
    """Stack per-position tables into one of the `find_images` columns."""
    from astropy.table import vstack

    tables = [t for t in tables if len(t)]
    if not tables:
        return empty_rows()
    out = vstack(tables, metadata_conflicts="silent")
    return out[list(IMAGE_COLUMNS)]
