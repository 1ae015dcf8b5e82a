"""anomalymatch_astro: find the few strange objects among millions of survey images.

WCS-aware multi-band cutouts, astronomical normalisation, a FixMatch
semi-supervised EfficientNet classifier and active learning, with results as
Astropy catalogues.

Importing the package is light: torch and the other heavy dependencies are only
imported when a name that needs them is first used.
"""

import importlib

from .utils._version import __version__

# public name -> module that defines it (imported on first use)
_LAZY = {
    "CutoutSet": "anomalymatch_astro.cutouts",
    "make_cutouts": "anomalymatch_astro.cutouts",
    "Normalizer": "anomalymatch_astro.normalization",
    "AnomalyClassifier": "anomalymatch_astro.classifier",
    "ActiveLearningSession": "anomalymatch_astro.active_learning",
    "evaluate": "anomalymatch_astro.evaluation",
    "export_astronomaly": "anomalymatch_astro.catalogs",
    "import_astronomaly_labels": "anomalymatch_astro.catalogs",
    "crossmatch": "anomalymatch_astro.catalogs",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    msg = f"module 'anomalymatch_astro' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
