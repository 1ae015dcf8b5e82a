"""Archive access: find, download and cut images from Virtual Observatory services.

Images covering catalogue positions are found through pyvo (SIA 2, SIA 1, ObsCore via
TAP), downloaded once into a cache, optionally cut on the server through DataLink/SODA,
or taken from all-sky HiPS surveys through astroquery's hips2fits; everything ends in
`~anomalymatch_astro.cutouts.make_cutouts` and a `~anomalymatch_astro.CutoutSet` whose
``meta`` and per-row columns record where each pixel came from.

All network traffic goes through one HTTP layer, `HTTPClient` (one requests session,
retries with backoff, a rate limit, failures mapped to
`~anomalymatch_astro.utils.exceptions.ArchiveError` and
`~anomalymatch_astro.utils.exceptions.ServiceError` by exception type);
`ArchiveClient` is such a client, and the remote cross-matches of
`anomalymatch_astro.catalogs` use one too.

pyvo and astroquery are imported only when a query runs, so importing this subpackage
is cheap.
"""

from ._client import ArchiveClient
from ._config import Conf, conf
from ._errors import NoCoverageError
from ._http import RETRY_STATUS, HTTPClient, network_errors
from ._pipeline import cutouts_from_service

__all__ = [
    "ArchiveClient",
    "HTTPClient",
    "RETRY_STATUS",
    "network_errors",
    "Conf",
    "conf",
    "NoCoverageError",
    "cutouts_from_service",
]
