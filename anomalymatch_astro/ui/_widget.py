"""`LabelWidget`: the labelling gallery as a Jupyter widget (anywidget, one ES module)."""

import logging
import pathlib

import anywidget
import traitlets

from ._gallery import Gallery

__all__ = ["LabelWidget"]

log = logging.getLogger(__name__)

_STATIC = pathlib.Path(__file__).parent / "static"


class LabelWidget(anywidget.AnyWidget):
    """Label candidates of an active-learning session in Jupyter (Lab, Notebook, Voila).

    A paged gallery of candidates with colour composites or per-band views,
    score and rank, sky position with links out (Legacy Survey viewer, ESASky,
    SIMBAD), anomaly / normal / skip buttons, keyboard labelling (``a`` / ``n`` /
    ``s``, arrows to move, ``u`` to undo, ``[`` / ``]`` to page, ``r`` to
    retrain), retraining with a mode selector and a score histogram.  Every label
    is written to the session's SQLite store as it is made.

    The Python side is a `Gallery` (``widget.gallery``); the browser side is
    ``static/gallery.js``, which sends actions as custom messages and gets the
    state back the same way.

    Parameters
    ----------
    session : `~anomalymatch_astro.active_learning.ActiveLearningSession`
        The session to label.
    strategy : {"top", "uncertainty", "diversity", "mix", "similar"}, optional
        Candidate strategy.
    page_size : int, optional
        Tiles per page.
    **kwargs
        Passed to `Gallery` (``view``, ``stretch``, ``mode``, ``like``,
        ``histogram``); the rest to `anywidget.AnyWidget`.

    Examples
    --------
    .. code-block:: python

        from anomalymatch_astro.ui import LabelWidget
        LabelWidget(session, strategy="top", page_size=24)   # last line of a cell
    """

    _esm = _STATIC / "gallery.js"
    _css = _STATIC / "gallery.css"
    #: Incremented on every state sent, so tests and observers can follow updates.
    updates = traitlets.Int(0).tag(sync=True)

    def __init__(
        self,
        session,
        *,
        strategy="top",
        page_size=24,
        view="lupton",
        stretch="asinh",
        mode="fast",
        like=None,
        histogram=True,
        **kwargs,
    ):
        gallery = Gallery(
            session,
            strategy=strategy,
            page_size=page_size,
            view=view,
            stretch=stretch,
            mode=mode,
            like=like,
            histogram=histogram,
            background_training=False,
        )
        super().__init__(**kwargs)
        self.gallery = gallery
        self.on_msg(self._handle_message)

    @property
    def session(self):
        """The session being labelled."""
        return self.gallery.session

    def _push(self, state):
        self.send({"type": "state", "state": state})
        self.updates += 1

    def _handle_message(self, widget, content, buffers):
        """Run one action from the browser and send the new state back."""
        if isinstance(content, dict) and content.get("action") == "retrain":
            # show the progress indicator before the (blocking) training starts
            preview = self.gallery.training_preview(mode=content.get("mode"))
            if preview is not None:
                self._push(preview)
        self._push(self.gallery.dispatch(content))

    def handle(self, action):
        """Run an action as if it came from the browser; returns the new state (for scripts and tests).

        Parameters
        ----------
        action : dict
            ``{"action": "label", "id": ..., "label": "anomaly"}`` etc. (see `Gallery.dispatch`).

        Returns
        -------
        dict
        """
        self._handle_message(self, action, [])
        return self.gallery.state(images=False)
