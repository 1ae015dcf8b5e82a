"""A generated notebook that opens a session workdir and shows the `LabelWidget` (for Voila)."""

import json
import os

from ..utils import write_json_atomic
from ..utils.exceptions import InvalidInputError, OutputExistsError

__all__ = ["write_label_notebook"]


def write_label_notebook(workdir, path, *, strategy="top", page_size=24, mode="fast", overwrite=False):
    """Write a notebook that opens the session in ``workdir`` and shows its `LabelWidget`.

    Serve it with Voila (``voila --Voila.ip=127.0.0.1 NOTEBOOK``) to get the
    widget as a web page, or open it in JupyterLab.  Only the arguments are
    written into the notebook (as JSON literals), no other code.

    Parameters
    ----------
    workdir : str or os.PathLike
        The session's workdir (must hold ``session.json``).
    path : str or os.PathLike
        The ``.ipynb`` file to write.
    strategy, page_size, mode
        Passed to `LabelWidget`.
    overwrite : bool, optional
        Replace an existing ``path`` (written beside it, then renamed); by default an existing
        file is refused with `~anomalymatch_astro.utils.exceptions.OutputExistsError`.

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> import json, os, tempfile
    >>> from anomalymatch_astro.ui import write_label_notebook
    >>> d = tempfile.mkdtemp()
    >>> nb = write_label_notebook(d, os.path.join(d, "label.ipynb"))
    >>> with open(nb) as f:
    ...     json.load(f)["cells"][0]["cell_type"]
    'code'
    """
    workdir = os.path.abspath(os.fspath(workdir))
    if not isinstance(page_size, int) or isinstance(page_size, bool):
        msg = f"page_size must be an int, got {page_size!r}"
        raise InvalidInputError(msg)
    args = ", ".join(
        f"{k}={json.dumps(v)}" for k, v in (("strategy", str(strategy)), ("page_size", page_size), ("mode", str(mode)))
    )
    source = (
        "from anomalymatch_astro.active_learning import ActiveLearningSession\n"
        "from anomalymatch_astro.ui import LabelWidget\n"
        f"session = ActiveLearningSession.open({json.dumps(workdir)})\n"
        f"LabelWidget(session, {args})"
    )
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "amui-label",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = os.fspath(path)
    if os.path.lexists(path) and not overwrite:
        msg = f"{path!r} exists; pass overwrite=True to replace it (it is left as it was)"
        raise OutputExistsError(msg)
    write_json_atomic(path, nb, indent=1, sort_keys=False)
    return path
