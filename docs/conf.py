"""Sphinx configuration for anomalymatch_astro (plain Sphinx + sphinx-automodapi + numpydoc; offline)."""

import os
import sys
from importlib.metadata import version as _version

sys.path.insert(0, os.path.abspath(".."))

project = "anomalymatch_astro"
author = "anomalymatch_astro developers"
copyright = "2026, anomalymatch_astro developers"
release = _version("anomalymatch_astro")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_automodapi.automodapi",
    "sphinx_automodapi.smart_resolver",
    "numpydoc",
    "pytest_doctestplus.sphinx.doctestplus",
]
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
automodapi_toctreedirnm = "api"
automodsumm_inherited_members = False
autodoc_typehints = "none"
default_role = "obj"
nitpicky = False
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "alabaster"
html_static_path = []
suppress_warnings = ["ref.python"]
