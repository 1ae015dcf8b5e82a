"""Reading VOTables answered by VO services: error documents, DataLink and service descriptors."""

import io

from ..utils import filters_changed
from ..utils.exceptions import ServiceError

__all__ = ["parse_votable", "check_query_status", "adhoc_services", "datalink_url_column", "soda_request"]

SODA_SYNC = "ivo://ivoa.net/std/soda#sync"
DATALINK = "ivo://ivoa.net/std/datalink"


def parse_votable(content, *, source):
    """Parse VOTable bytes, raising `ServiceError` for malformed documents and error statuses.

    Parameters
    ----------
    content : bytes
        The document.
    source : str
        What answered it (for messages).

    Returns
    -------
    `astropy.io.votable.tree.VOTableFile`
    """
    from astropy.io.votable import parse
    from astropy.io.votable.exceptions import VOWarning

    try:
        with filters_changed(("ignore", VOWarning)):
            votable = parse(io.BytesIO(content), verify="ignore")
    except Exception as exc:  # noqa: BLE001 -- any parse failure means a malformed answer
        start = content[:200].decode("utf-8", "replace") if isinstance(content, bytes) else str(content)[:200]
        msg = (
            f"{source} answered something that is not a VOTable ({type(exc).__name__}: {exc}); "
            f"it starts with {start!r}. Check the service URL and protocol."
        )
        raise ServiceError(msg) from exc
    check_query_status(votable, source=source)
    return votable


def _infos(votable):
    yield from getattr(votable, "infos", [])
    for resource in votable.resources:
        yield from resource.infos


def check_query_status(votable, *, source):
    """Raise `ServiceError` with the server's message when QUERY_STATUS is ERROR."""
    for info in _infos(votable):
        if info.name == "QUERY_STATUS" and str(info.value).upper() == "ERROR":
            text = (info.content or "").strip() or "no message"
            msg = f"{source} reported an error: {text}"
            raise ServiceError(msg)


def adhoc_services(votable):
    """Service descriptors (``RESOURCE type="meta" utype="adhoc:service"``) of a VOTable.

    Returns
    -------
    list of dict
        Each with ``ID``, ``standardID``, ``accessURL``, ``params`` (fixed input
        parameters ``{name: value}``) and ``refs`` (input parameters bound to a
        field: ``{name: field ID}``).
    """
    out = []
    for resource in votable.resources:
        if resource.type != "meta" or (resource.utype or "").lower() != "adhoc:service":
            continue
        fixed = {p.name: p.value for p in resource.params}
        desc = {
            "ID": resource.ID,
            "standardID": str(fixed.get("standardID") or ""),
            "accessURL": str(fixed.get("accessURL") or ""),
            "params": {},
            "refs": {},
        }
        for group in resource.groups:
            if group.name != "inputParams":
                continue
            for param in group.entries:
                if getattr(param, "ref", None):
                    desc["refs"][param.name] = param.ref
                elif param.datatype in ("char", "unicodeChar") and param.value not in (None, "", b""):
                    # fixed string parameters are sent as they are; numeric ones only
                    # describe ranges (astropy turns their empty values into zeros)
                    value = param.value
                    desc["params"][param.name] = value.decode() if isinstance(value, bytes) else str(value)
        out.append(desc)
    return out


def _field_name(votable, field_id):
    for table in votable.iter_tables():
        for field in table.fields:
            if field.ID == field_id or field.name == field_id:
                return field.name
    return None


def datalink_url_column(votable):
    """Return ``(base_url, id_column, fixed_params)`` of the DataLink service of a result, or None."""
    for desc in adhoc_services(votable):
        if DATALINK not in desc["standardID"].lower() or not desc["accessURL"]:
            continue
        for name, ref in desc["refs"].items():
            if name.upper() == "ID":
                column = _field_name(votable, ref)
                if column:
                    return desc["accessURL"], column, desc["params"]
    return None


def soda_request(votable, *, source):
    """Find the SODA sync service in a DataLink document.

    Returns
    -------
    (str, dict)
        The SODA access URL and the parameters that identify the data set (``ID``).

    Raises
    ------
    ServiceError
        When the document offers no SODA service.
    """
    services = {d["ID"]: d for d in adhoc_services(votable)}
    try:
        table = votable.get_first_table().to_table()
    except IndexError as exc:  # astropy: "No table found in VOTABLE file."
        msg = f"{source} answered a DataLink document without a results table; check the DataLink URL"
        raise ServiceError(msg) from exc
    names = {c.lower(): c for c in table.colnames}
    for row in table:
        service_def = row[names["service_def"]] if "service_def" in names else None
        if service_def is None or str(service_def) in ("", "--") or str(service_def) not in services:
            continue
        desc = services[str(service_def)]
        if SODA_SYNC not in desc["standardID"].lower():
            continue
        params = dict(desc["params"])
        for name, ref in desc["refs"].items():
            column = _field_name(votable, ref)
            if column is not None and column in table.colnames:
                value = row[column]
                params[name] = value.decode() if isinstance(value, bytes) else str(value)
        if "ID" not in params and "id" in names:
            params["ID"] = str(row[names["id"]])
        return desc["accessURL"], params
    msg = f"{source} offers no SODA cutout service for this data set; download the whole image instead (soda=False)"
    raise ServiceError(msg)
