"""Evaluation: ranking metrics of anomaly scores (AUROC, average precision, top-k) and their summaries.

The benchmark drivers (the protocol, the strategies comparison, throughput) live in
`anomalymatch_astro.benchmarking`.
"""

from ._metrics import EvaluationResult, evaluate, summarize, top_k_hits

__all__ = ["evaluate", "EvaluationResult", "summarize", "top_k_hits"]
