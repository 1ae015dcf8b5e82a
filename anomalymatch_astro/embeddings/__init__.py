"""Embeddings: a cache of backbone features and fast heads trained on them.

`compute_embeddings` runs the classifier's backbone once over a CutoutSet and keeps
the features in HDF5 (keyed by model hash, normaliser, rotation flag and ids);
`LogisticHead`, `KNNHead`, `LabelSpreadingHead` and `EnsembleHead` rank objects from
those features with a few labels.  The active-learning session's ``"fast"`` mode is
built on them.
"""

from ._cache import EmbeddingCache, center_crop, check_zoom, compute_embeddings, embedding_key, rotation_averaged
from ._heads import HEADS, EnsembleHead, KNNHead, LabelSpreadingHead, LogisticHead, fit_pca, make_head, rank_normalize
from ._profile import PROFILE_STATISTICS, profile_features, profile_width

__all__ = [
    "EmbeddingCache",
    "center_crop",
    "check_zoom",
    "compute_embeddings",
    "embedding_key",
    "rotation_averaged",
    "LogisticHead",
    "KNNHead",
    "LabelSpreadingHead",
    "EnsembleHead",
    "fit_pca",
    "make_head",
    "HEADS",
    "rank_normalize",
    "profile_features",
    "profile_width",
    "PROFILE_STATISTICS",
]
