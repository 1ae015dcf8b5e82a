"""Labelling UI: a candidate gallery to label anomalies by mouse or keyboard.

Two front ends share one browser module (``static/gallery.js``) and one Python
state (`Gallery`):

* `LabelWidget`, a Jupyter widget (anywidget; needs the ``jupyter`` extra);
* `LabelServer`, a small standalone web server on 127.0.0.1 behind a token,
  started by ``anomalymatch-astro label --workdir DIR``.

Images are rendered server-side (`TileRenderer`, `score_histogram_png`) and
links out to sky viewers are plain URLs (`sky_links`).
"""

import importlib

from ._gallery import ACTIONS, LABEL_CHOICES, Gallery
from ._links import SKY_LINKS, sky_links
from ._notebook import write_label_notebook
from ._render import VIEWS_COMPOSITE, TileRenderer, cutout_rgb, render_png, score_histogram_png
from ._server import STATIC_DIR, TOKEN_HEADER, LabelServer

__all__ = [
    "LabelWidget",
    "Gallery",
    "LabelServer",
    "TileRenderer",
    "render_png",
    "cutout_rgb",
    "score_histogram_png",
    "sky_links",
    "write_label_notebook",
    "ACTIONS",
    "LABEL_CHOICES",
    "SKY_LINKS",
    "VIEWS_COMPOSITE",
    "STATIC_DIR",
    "TOKEN_HEADER",
]


def __getattr__(name):
    # LabelWidget needs anywidget (the "jupyter" extra); import it only when asked for.
    if name == "LabelWidget":
        try:
            module = importlib.import_module("anomalymatch_astro.ui._widget")
        except ImportError as exc:
            msg = (
                "LabelWidget needs anywidget and ipywidgets: pip install 'anomalymatch_astro[jupyter]' "
                f"({exc}); or use the standalone server: anomalymatch-astro label --workdir DIR"
            )
            raise ImportError(msg) from exc
        globals()[name] = module.LabelWidget
        return module.LabelWidget
    msg = f"module 'anomalymatch_astro.ui' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__():
    return sorted(set(globals()) | {"LabelWidget"})
