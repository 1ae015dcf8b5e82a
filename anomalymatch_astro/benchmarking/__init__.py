"""Benchmarks: the paper's protocol, the strategies comparison, scoring throughput and the training step.

This layer sits above the library and below only the command line: it drives the public
API of the layers below (`~anomalymatch_astro.ActiveLearningSession`,
`~anomalymatch_astro.AnomalyClassifier`, `anomalymatch_astro.scoring`,
`anomalymatch_astro.datasets`) and returns tables and dicts; ``anomalymatch-astro benchmark``
and the scripts in ``benchmarks/`` print them.  The numbers measured so far are in the
benchmarks page of the documentation.
"""

from ._protocol import (
    LOCAL_PROTOCOLS,
    METHODS,
    N_IMAGE_FOLDER_CLASSES,
    PROTOCOLS,
    VARIANTS,
    compare_strategies,
    run_protocol,
    summarize_protocol,
)
from ._throughput import run_throughput_benchmark
from ._training import run_training_benchmark

__all__ = [
    "run_protocol",
    "summarize_protocol",
    "compare_strategies",
    "run_throughput_benchmark",
    "run_training_benchmark",
    "PROTOCOLS",
    "LOCAL_PROTOCOLS",
    "METHODS",
    "VARIANTS",
    "N_IMAGE_FOLDER_CLASSES",
]
