"""Scoring at scale: streaming, resumable scoring of HDF5 CutoutSets or FITS mosaics, and a Dask backend.

Every route predicts through the classifier's own inference path
(`~anomalymatch_astro.classifier.AnomalyClassifier.inference`);
`~anomalymatch_astro.classifier.prepare_batch` and `~anomalymatch_astro.utils.ids_digest` are
re-exported here for older code.
"""

from ..utils import ids_digest
from ._dask import gpu_cluster, score_cutouts_dask
from ._store import ScoreStore
from ._stream import score_cutouts, score_images

__all__ = [
    "score_cutouts",
    "score_images",
    "score_cutouts_dask",
    "gpu_cluster",
    "ScoreStore",
    "prepare_batch",
    "ids_digest",
]


def __getattr__(name):
    # prepare_batch lives in the classifier (torch); resolved on first use so that importing
    # scoring stays light
    if name == "prepare_batch":
        from ..classifier import prepare_batch

        return prepare_batch
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
