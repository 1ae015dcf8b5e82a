"""Scoring at scale: streaming, resumable scoring of HDF5 CutoutSets or FITS mosaics, and a Dask backend."""

from ._dask import score_cutouts_dask
from ._preprocess import prepare_batch
from ._store import ScoreStore, ids_digest
from ._stream import score_cutouts, score_images

__all__ = ["score_cutouts", "score_images", "score_cutouts_dask", "ScoreStore", "prepare_batch", "ids_digest"]
