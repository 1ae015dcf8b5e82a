"""Catalogue outputs and interoperability.

Scores as an Astropy `~astropy.table.QTable` with a SkyCoord column and provenance
(`scores_to_table`), written and read back exactly in FITS, VOTable, ECSV, Parquet and
HDF5 (`write_table`, `read_table`); cross-matching against local catalogues
(`crossmatch`) and remote services (SIMBAD, VizieR, any TAP service); the
Astronomaly bundle (`export_astronomaly`, `import_astronomaly_labels`); DS9/CRTF region
files (`write_regions`) and SAMP (`send_table_samp`); grouping of candidates into
systems in crowded fields (`group_systems`, `collapse_systems`).

Importing this subpackage is light: regions, pyvo, astroquery and astropy.samp are
imported only when a function that needs them runs.
"""

from ._astronomaly import export_astronomaly
from ._astronomaly_inputs import safe_ids
from ._astronomaly_labels import import_astronomaly_labels
from ._crossmatch import crossmatch
from ._io import TABLE_FORMATS, read_table, write_table
from ._regions import write_regions
from ._remote import crossmatch_simbad, crossmatch_tap, crossmatch_vizier
from ._samp import send_table_samp
from ._systems import collapse_systems, group_systems, rank_systems
from ._tables import scores_to_table

__all__ = [
    "scores_to_table",
    "write_table",
    "read_table",
    "TABLE_FORMATS",
    "crossmatch",
    "crossmatch_simbad",
    "crossmatch_vizier",
    "crossmatch_tap",
    "export_astronomaly",
    "import_astronomaly_labels",
    "safe_ids",
    "write_regions",
    "send_table_samp",
    "group_systems",
    "collapse_systems",
    "rank_systems",
]
