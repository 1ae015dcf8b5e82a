"""Active learning: candidates -> human labels -> retrain, with a durable label store.

`ActiveLearningSession` ranks a CutoutSet with a fast head on cached embeddings
and/or the FixMatch classifier, proposes candidates by several strategies, records
every label in SQLite, and resumes after a crash or restart.  `simulate_oracle`
runs the paper's protocol with known truth.
"""

from ._labels import SOURCES, LabelStore
from ._oracle import OracleResult, simulate_oracle
from ._scorer import SessionScorer, reference_rank
from ._session import DEFAULT_HEAD, ActiveLearningSession
from ._strategies import (
    STRATEGIES,
    decision_threshold,
    first_per_system,
    select_diverse,
    select_mix,
    select_similar,
    select_top,
    select_uncertain,
    unit_embeddings,
)
from ._training import TrainResult, combine_scores
from ._workdir import MODES

__all__ = [
    "ActiveLearningSession",
    "SessionScorer",
    "reference_rank",
    "TrainResult",
    "LabelStore",
    "simulate_oracle",
    "OracleResult",
    "combine_scores",
    "MODES",
    "STRATEGIES",
    "SOURCES",
    "DEFAULT_HEAD",
    "decision_threshold",
    "select_top",
    "select_uncertain",
    "select_diverse",
    "select_mix",
    "select_similar",
    "unit_embeddings",
    "first_per_system",
]
