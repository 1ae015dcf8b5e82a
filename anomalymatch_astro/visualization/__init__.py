"""Pictures: galleries of candidates, score histograms, ROC and precision-recall curves, sky coverage."""

from ._coverage import plot_coverage
from ._gallery import plot_gallery

__all__ = ["plot_gallery", "plot_coverage"]

try:  # written alongside; present once the evaluation plots land
    from ._curves import plot_roc_pr, plot_score_histogram  # noqa: F401

    __all__ += ["plot_roc_pr", "plot_score_histogram"]
except ImportError:  # pragma: no cover
    pass
