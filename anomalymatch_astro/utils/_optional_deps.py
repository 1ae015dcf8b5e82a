"""Import optional dependencies with an error that says how to install them."""

import importlib

from .exceptions import MissingDependencyError

__all__ = ["require", "MissingDependencyError"]

_EXTRA_OF = {
    "pyvo": "vo",
    "astroquery": "vo",
    "requests": "vo",
    "regions": "catalogs",
    "dask": "distributed",
    "distributed": "distributed",
    "ipywidgets": "jupyter",
    "anywidget": "jupyter",
    "voila": "jupyter",
    "astrocut": "benchmark",
    "hdf5plugin": "storage",
    "mocpy": "mining",
    "cdshealpix": "mining",
    "hats": "mining",
    "lsdb": "mining",
    "pyarrow": "mining",
    "photutils": "detection",
}


def require(module_name, *, feature):
    """Import ``module_name`` or raise an error naming the pip extra to install.

    Parameters
    ----------
    module_name : str
        The module to import, e.g. ``"pyvo"``.
    feature : str
        What the user was trying to do, for the message.

    Returns
    -------
    module
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        extra = _EXTRA_OF.get(module_name.split(".")[0], "all")
        msg = (
            f"{feature} needs the optional package {module_name!r}, which is not installed. "
            f"Install it with: pip install 'anomalymatch_astro[{extra}]'"
        )
        raise MissingDependencyError(msg) from exc
