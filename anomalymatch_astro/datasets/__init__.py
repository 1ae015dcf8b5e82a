"""Synthetic and offline data sets with known anomalies.

`make_mock_survey` writes a multi-band FITS survey (bands on different pixel
grids, real TAN WCS) with injected lenses, mergers, artefacts and odd colours,
and its truth catalogue; `make_lens_survey` is the hard variant (faint thin arcs
at 1%).  `make_morphology_set`, `make_digits_set` and `load_benchmark_set` give
in-memory benchmark sets; `start_labels` draws the protocol's start labels.
"""

from ._benchmarks import (
    BENCHMARK_SETS,
    MORPHOLOGY_CLASSES,
    load_benchmark_set,
    make_digits_set,
    make_morphology_set,
    start_labels,
)
from ._mock_survey import ANOMALY_KINDS, MockSurvey, make_lens_survey, make_mock_survey

__all__ = ["ANOMALY_KINDS", "BENCHMARK_SETS", "MORPHOLOGY_CLASSES", "MockSurvey", "load_benchmark_set",
           "make_digits_set", "make_lens_survey", "make_mock_survey", "make_morphology_set", "start_labels"]
