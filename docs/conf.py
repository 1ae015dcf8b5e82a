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
nitpicky = True
# The build is offline (no intersphinx inventories can be fetched), so references to other
# projects' objects cannot resolve: those, and only those, are exempt from nitpicky.  Every
# reference to this package's own objects must resolve.
_EXTERNAL = (
    "anywidget",
    "argparse",
    "astropy",
    "astroquery",
    "dask",
    "distributed",
    "h5py",
    "json",
    "matplotlib",
    "mocpy",
    "numpy",
    "os",
    "pathlib",
    "pyvo",
    "regions",
    "reproject",
    "requests",
    "scipy",
    "sklearn",
    "timm",
    "torch",
    "tqdm",
)
nitpick_ignore_regex = [(r"py:.*", rf"{name}(\..*)?") for name in _EXTERNAL]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "alabaster"
html_static_path = []
suppress_warnings = ["ref.python"]


# The stable names are also importable from the package root (``anomalymatch_astro.CutoutSet``),
# resolved lazily there; a reference written that way resolves to the documented object.
def _resolve_root_names(app, env, node, contnode):
    import anomalymatch_astro

    target = node.get("reftarget", "")
    head, _, rest = target.removeprefix("anomalymatch_astro.").partition(".")
    if (
        node.get("refdomain") != "py"
        or not target.startswith("anomalymatch_astro.")
        or head not in anomalymatch_astro._LAZY
    ):
        return None
    full = ".".join(filter(None, [anomalymatch_astro._LAZY[head], head, rest]))
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node["refdoc"], app.builder, node.get("reftype"), full, node, contnode)


def setup(app):
    app.connect("missing-reference", _resolve_root_names)
