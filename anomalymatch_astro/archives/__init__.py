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

`mine` scans a whole region of a survey (`LocalSurvey` on disk, `VOSurvey` on SIA 2 /
HiPS and TAP) cell by cell on a Dask cluster, resumably, with MOCs of the cells done,
failed and without data, and writes the scored sources as a HATS catalogue.

pyvo, astroquery, mocpy, hats and dask are imported only when used, so importing this
subpackage is cheap.
"""

from ._cells import choose_order, parse_region, region_cells
from ._cellwork import cut_sources, detect_sources_on_images
from ._client import ArchiveClient
from ._config import Conf, conf
from ._coverage import Coverage
from ._errors import NoCoverageError
from ._hats import write_hats
from ._http import RETRY_STATUS, HTTPClient, network_errors
from ._mining import MiningResult, mine, mining_status, score_with
from ._pipeline import cutouts_from_service
from ._ratelimit import GlobalRateLimit
from ._sources import LocalSurvey, VOSurvey

__all__ = [
    "ArchiveClient",
    "HTTPClient",
    "RETRY_STATUS",
    "network_errors",
    "Conf",
    "conf",
    "NoCoverageError",
    "cutouts_from_service",
    "mine",
    "mining_status",
    "MiningResult",
    "LocalSurvey",
    "VOSurvey",
    "GlobalRateLimit",
    "Coverage",
    "parse_region",
    "choose_order",
    "region_cells",
    "cut_sources",
    "detect_sources_on_images",
    "score_with",
    "write_hats",
]
