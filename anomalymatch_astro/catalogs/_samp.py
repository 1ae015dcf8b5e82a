"""Send a catalogue to SAMP-enabled tools (TOPCAT, Aladin, DS9).

SAMP comes from ``pyvo.samp`` (astropy.samp moved there; astropy 8 deprecates
``astropy.samp``), falling back to ``astropy.samp`` when pyvo is too old.
"""

import logging
import os
import tempfile
from pathlib import Path

from ..utils.exceptions import ArchiveError, InvalidInputError

__all__ = ["send_table_samp"]

log = logging.getLogger(__name__)


def samp_module():
    """The SAMP implementation: ``pyvo.samp``, else ``astropy.samp`` (deprecated in astropy 8)."""
    try:
        import pyvo.samp as samp

        if hasattr(samp, "SAMPIntegratedClient"):
            return samp
    except ImportError:
        pass
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import astropy.samp as samp
    return samp


def _hub_params(hub_url):
    """Hub parameters from a lock file path or URL (``file://...`` or ``std-lockurl:...``)."""
    import importlib

    read_lockfile = importlib.import_module(samp_module().__name__ + ".lockfile_helpers").read_lockfile

    url = str(hub_url)
    if url.startswith("std-lockurl:"):
        url = url[len("std-lockurl:") :]
    if "://" not in url:
        url = Path(url).resolve().as_uri()
    try:
        return read_lockfile(url)
    except OSError as exc:
        msg = f"could not read the SAMP hub lock file {hub_url!r}: {exc}"
        raise ArchiveError(msg) from exc


def send_table_samp(table, *, client_name="anomalymatch_astro", hub_url=None, timeout=10, name=None, recipient=None):
    """Send a table to the tools connected to a SAMP hub (``table.load.votable``).

    The table is written to a temporary VOTable (kept, so that the tools can read it
    later) and its ``file://`` URL is sent to every client subscribed to
    ``table.load.votable`` (or to ``recipient``), each asked to reply within ``timeout``.

    Parameters
    ----------
    table : `~astropy.table.Table`
        The catalogue (SkyCoord columns are written as ``<name>_lon``/``<name>_lat``).
    client_name : str, optional
        This client's name as shown by the hub.
    hub_url : str, optional
        The hub's lock file (path, ``file://`` URL or ``std-lockurl:`` URL); default: the
        standard hub discovery (``SAMP_HUB`` or ``~/.samp``).
    timeout : float, optional
        Seconds to wait for each recipient's reply.
    name : str, optional
        The table name shown by the recipients (default: ``client_name`` candidates).
    recipient : str, optional
        A SAMP client id to send to, instead of every subscribed client.

    Returns
    -------
    dict
        ``{client id: reply}`` of the clients that answered (``samp.status`` ``samp.ok``
        when they loaded the table).

    Raises
    ------
    ArchiveError
        No hub is running or it cannot be reached.
    """
    samp = samp_module()
    SAMPClientError, SAMPHubError, SAMPProxyError = (
        samp.SAMPClientError,
        samp.SAMPHubError,
        samp.SAMPProxyError,
    )

    from ._io import write_table

    if timeout <= 0:
        msg = f"timeout must be positive, got {timeout}"
        raise InvalidInputError(msg)
    fd, path = tempfile.mkstemp(prefix="anomalymatch_", suffix=".xml")
    os.close(fd)
    write_table(table, path, format="votable", overwrite=True)
    url = Path(path).resolve().as_uri()
    name = name or f"{client_name} candidates"
    message = {
        "samp.mtype": "table.load.votable",
        "samp.params": {"url": url, "name": name, "table-id": Path(path).stem},
    }
    client = samp.SAMPIntegratedClient(name=client_name, description="anomalymatch_astro catalogue sender")
    try:
        client.connect(hub_params=_hub_params(hub_url) if hub_url else None)
    except (SAMPHubError, SAMPClientError, OSError) as exc:
        msg = f"could not connect to a SAMP hub ({exc}); start TOPCAT, Aladin or DS9 (they run a hub), or give hub_url="
        raise ArchiveError(msg) from exc
    replies = {}
    try:
        targets = [recipient] if recipient else list(client.get_subscribed_clients("table.load.votable"))
        if not targets:
            log.warning("no SAMP client is subscribed to table.load.votable; nothing received %s", url)
        for target in targets:
            try:
                replies[target] = client.call_and_wait(target, message, str(int(max(1, timeout))))
            except (SAMPProxyError, SAMPClientError, SAMPHubError, OSError) as exc:
                log.warning("SAMP client %s did not load the table: %s", target, exc)
    finally:
        client.disconnect()
    log.info("sent %s (%d rows) to %d SAMP client(s)", url, len(table), len(replies))
    return replies
