"""Evaluation: ranking metrics of anomaly scores (AUROC, average precision, top-k) and their summaries."""

from ._metrics import evaluate, summarize, top_k_hits

__all__ = ["evaluate", "summarize", "top_k_hits"]
