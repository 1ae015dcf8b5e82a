"""`Gallery`: the state and actions of the labelling UI, independent of how it is shown.

Both front ends -- the Jupyter widget (`LabelWidget`) and the standalone server
(`LabelServer`) -- hold one `Gallery` and talk to it with the same small JSON
protocol: an action dict in (`Gallery.dispatch`), a state dict out
(`Gallery.state`).  Every label goes straight to the session's SQLite store.
"""

import logging
import threading
import time

import numpy as np

from ..normalization import STRETCHES
from ..utils.exceptions import InvalidInputError
from ._candidates import Systems, coord_columns, fetch_candidates, merge_candidates
from ._links import tile_position
from ._render import TileRenderer, score_histogram_png

__all__ = ["Gallery", "ACTIONS", "LABEL_CHOICES"]

log = logging.getLogger(__name__)

#: What a tile can be marked as.  ``"skip"`` is kept in the UI only (not in the label store).
LABEL_CHOICES = ("anomaly", "normal", "skip")

#: Actions accepted by `Gallery.dispatch`, with their parameters.
ACTIONS = {
    "state": (),
    "status": (),
    "label": ("id", "label"),
    "undo": (),
    "page": ("page",),
    "refresh": (),
    "view": ("view",),
    "stretch": ("stretch",),
    "strategy": ("strategy", "like"),
    "mode": ("mode",),
    "retrain": ("mode",),
}


class Gallery:
    """State and actions of the labelling gallery of an active-learning session.

    The gallery shows a queue of candidates (from the session's ``candidates``
    with the chosen strategy) a page at a time.  The queue is frozen while you
    label, so labelled tiles stay in place with their mark; it is rebuilt after
    retraining, a change of strategy, or `refresh`.  Before the session is first
    trained, unlabelled objects are shown in file order.

    Parameters
    ----------
    session : `~anomalymatch_astro.active_learning.ActiveLearningSession`
        The session; labels are written to its store on each `label` call.
    strategy : {"top", "uncertainty", "diversity", "mix", "similar"}, optional
        Candidate strategy (``"similar"`` needs ``like``).
    page_size : int, optional
        Tiles per page.
    view : str, optional
        ``"lupton"``, ``"colour"`` or ``"band:<name>"`` (see `cutout_rgb`).
    stretch : {"asinh", "log", "sqrt", "linear"}, optional
        Stretch of the ``"colour"`` and per-band views.
    mode : {"fast", "fixmatch", "both"}, optional
        Training mode of `retrain`.
    like : str or list of str, optional
        Query object(s) of the ``"similar"`` strategy.
    histogram : bool, optional
        Include a score histogram (PNG) in full states.
    background_training : bool, optional
        Whether the ``"retrain"`` action of `dispatch` trains in a thread and
        returns at once (the standalone server) or blocks (the widget).
    group : bool, optional
        One tile per system (the session's `~anomalymatch_astro.active_learning.ActiveLearningSession.systems`:
        fragments of one object, close neighbours), showing its first unlabelled member
        with the count and list of the others.  Labelling a tile labels that object
        only; the system comes back (with its next member) after a refresh.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro import CutoutSet
    >>> from anomalymatch_astro.active_learning import ActiveLearningSession
    >>> from anomalymatch_astro.ui import Gallery
    >>> cs = CutoutSet.from_arrays(np.random.default_rng(0).normal(size=(30, 1, 16, 16)))
    >>> g = Gallery(ActiveLearningSession(cs, user="me"), page_size=4)
    >>> [t["id"] for t in g.state()["tiles"]]        # not trained yet: file order
    ['obj00', 'obj01', 'obj02', 'obj03']
    >>> g.label("obj01", "anomaly")["tiles"][1]["label"]
    'anomaly'
    >>> g.session.labels
    {'obj01': 'anomaly'}
    >>> g.undo()["counts"]["labelled"]
    0
    """

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
        background_training=False,
        group=True,
    ):
        from ..active_learning import MODES, STRATEGIES

        self.session = session
        self._strategies = tuple(STRATEGIES)
        self._modes = tuple(MODES)
        self.page_size = int(page_size)
        if not 1 <= self.page_size <= 500:
            msg = f"page_size must be between 1 and 500, got {page_size}"
            raise InvalidInputError(msg)
        self.renderer = TileRenderer(session.cutouts)
        self.histogram = bool(histogram)
        self.background_training = bool(background_training)
        self._lock = threading.RLock()
        self._check(strategy, self._strategies, "strategy")
        self._check(mode, self._modes, "mode")
        self._check(view, self.renderer.views, "view")
        self._check(stretch, STRETCHES, "stretch")
        self.strategy, self.mode, self.view, self.stretch = strategy, mode, view, stretch
        self.like = self._check_like(strategy, like)
        self.page = 0
        self.message = ""
        self.error = ""
        self.training = None  # {"mode", "started"} while a training runs
        self.last_train = None
        self.version = 0  # bumped whenever the page content or its images change
        self._skipped = set()
        self._undo = []  # ("label" | "skip", id) of this sitting
        self._ra, self._dec = coord_columns(session.cutouts)
        self._row = {obj_id: i for i, obj_id in enumerate(np.asarray(session.cutouts.ids).astype(str))}
        self.group = bool(group)
        systems = session.systems if self.group else None
        self._systems = None if systems is None else Systems(systems, session.cutouts.ids, self._row)
        self._hist = None
        self._thread = None
        self._generation = 0  # bumped by each refresh: a slower, older one does not overwrite a newer one
        self._queue, self._info, self._exhausted = [], {}, False
        self.refresh()

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _check(value, allowed, what):
        if value not in allowed:
            msg = f"{what} must be one of {list(allowed)}, got {value!r}"
            raise InvalidInputError(msg)
        return value

    def _check_like(self, strategy, like):
        if strategy != "similar":
            return None
        if like is None or like == "" or like == []:
            msg = 'strategy "similar" needs an object to look like (click "more like this" on a tile)'
            raise InvalidInputError(msg)
        like = [like] if isinstance(like, str) else [str(x) for x in like]
        self.session.cutouts.index_of(like)  # UnknownIDError for unknown ids
        return like

    def _wanted(self, n):
        """How many candidates to ask for so that the queue reaches n ids (0: none needed); under the lock."""
        if len(self._queue) >= n or self._exhausted:
            return 0
        labelled = self.session.labelled_mask()
        if self._systems is None:
            pending = sum(1 for i in self._queue if not labelled[self._row[i]])
        else:  # a queued system comes back from the session while any member is unlabelled
            pending = self._systems.pending(self._queue, labelled)
        return pending + (n - len(self._queue))

    def _merge(self, found, want):
        """Append the new ids of ``found`` (from `fetch_candidates`) to the queue; under the lock."""
        system_of = None if self._systems is None else self._systems.system_of
        merge_candidates(self._queue, self._info, found, system_of=system_of)
        if len(found[0]) < want:
            self._exhausted = True

    def _bump(self):
        self.version += 1

    # ------------------------------------------------------------------ actions
    def refresh(self):
        """Rebuild the candidate queue from the session's current scores (back to page 1).

        The candidates are computed without holding the gallery's lock, so labels
        made meanwhile are not kept waiting; when another refresh (or a change of
        strategy) starts before this one ends, the newer one wins.
        """
        with self._lock:
            self._generation += 1
            generation, strategy, like = self._generation, self.strategy, self.like
        found, error = None, ""
        try:
            found = fetch_candidates(self.session, self.page_size, strategy, like, group=self.group)
        except Exception as exc:
            log.warning("could not get candidates: %s", exc)
            error = f"could not get candidates: {exc}"
        with self._lock:
            if generation != self._generation:  # superseded while computing
                return self.state()
            self._queue, self._info, self._exhausted = [], {}, False
            self.page = 0
            self._hist = None
            if found is not None:
                self._merge(found, self.page_size)
            else:
                self.error = error
            if not self._queue and not self.error:
                done = self.session.labelled_mask().all()
                self.message = "no candidates: every object is labelled" if done else "no candidates for this strategy"
            self._bump()
            return self.state()

    def page_ids(self):
        """The ids on the current page, in order."""
        start = self.page * self.page_size
        return self._queue[start : start + self.page_size]

    def goto(self, page):
        """Show page ``page`` (0-based), extending the queue as needed."""
        page = int(page)
        if page < 0:
            msg = f"page must be >= 0, got {page}"
            raise InvalidInputError(msg)
        need = (page + 1) * self.page_size
        with self._lock:
            generation, strategy, like, want = self._generation, self.strategy, self.like, self._wanted(need)
        found = fetch_candidates(self.session, want, strategy, like, group=self.group) if want else None  # unlocked
        with self._lock:
            if found is not None and generation == self._generation:
                self._merge(found, want)
            if page * self.page_size >= len(self._queue) and page > 0:
                self.message = "no more candidates"
            else:
                self.page = page
                self.message = ""
            self._bump()
            return self.state()

    def set_view(self, *, view=None, stretch=None):
        """Change the tile view and/or stretch."""
        with self._lock:
            if view is not None:
                self.view = self._check(view, self.renderer.views, "view")
            if stretch is not None:
                self.stretch = self._check(stretch, STRETCHES, "stretch")
            self._bump()
            return self.state()

    def set_strategy(self, strategy, *, like=None):
        """Change the candidate strategy (``like`` for ``"similar"``) and rebuild the queue."""
        with self._lock:
            self._check(strategy, self._strategies, "strategy")
            self.like = self._check_like(strategy, like)
            self.strategy = strategy
            self.message = ""
            self.error = ""
        return self.refresh()

    def set_mode(self, mode):
        """Choose the training mode of `retrain`."""
        with self._lock:
            self.mode = self._check(mode, self._modes, "mode")
            return self.state(images=False)

    def label(self, obj_id, label):
        """Mark ``obj_id`` as ``"anomaly"``, ``"normal"`` (saved to the store at once) or ``"skip"``."""
        with self._lock:
            obj_id = str(obj_id)
            self._check(label, LABEL_CHOICES, "label")
            if label == "skip":
                if obj_id not in self._row:
                    msg = f"unknown id {obj_id!r}"
                    raise InvalidInputError(msg)
                self._skipped.add(obj_id)
                self._undo.append(("skip", obj_id))
                self.message = f"skipped {obj_id}"
            else:
                self.session.label({obj_id: label}, source="human")
                self._skipped.discard(obj_id)
                self._undo.append(("label", obj_id))
                self.message = f"{obj_id}: {label} (saved)"
            self._hist = None
            self.error = ""
            return self.state(images=False)

    def undo(self):
        """Undo the last label or skip of this sitting (labels are removed from the store)."""
        with self._lock:
            self.error = ""
            if not self._undo:
                self.message = "nothing to undo"
                return self.state(images=False)
            kind, obj_id = self._undo.pop()
            if kind == "skip":
                self._skipped.discard(obj_id)
                self.message = f"undid skip of {obj_id}"
            else:
                event = self.session.undo()
                if event is None:
                    self.message = "nothing to undo in the label store"
                elif event["id"] != obj_id:
                    self.message = f"undid the newest label in the store ({event['id']}), made elsewhere"
                else:
                    self.message = f"undid label of {obj_id}"
            self._hist = None
            return self.state(images=False)

    def _train(self, mode):
        t0 = time.perf_counter()
        try:
            result = self.session.train(mode=mode, progress=False)
        except Exception as exc:
            log.warning("training failed: %s", exc)
            with self._lock:
                self.training = None
                self.error = f"training ({mode}) failed: {exc}  (your labels are kept)"
                self.message = ""
                self._bump()
            return None
        with self._lock:
            self.training = None
            self.last_train = {
                "mode": result.mode,
                "seconds": round(float(result.seconds), 3),
                "cycle": int(result.cycle),
                "n_anomalies": int(result.n_anomalies),
                "n_normals": int(result.n_normals),
            }
            self._undo.clear()
            self._skipped.clear()
            self.error = ""
        self.refresh()  # takes the lock itself, and not while computing
        with self._lock:
            self.message = (
                f"retrained ({result.mode}) in {result.seconds:.1f} s on {result.n_anomalies} "
                f"anomalies + {result.n_normals} normals; cycle {result.cycle}"
            )
        log.info("gallery retrain took %.2f s", time.perf_counter() - t0)
        return result

    def retrain(self, *, mode=None, background=False):
        """Train the session (``mode`` or the gallery's mode), then refresh scores and order.

        Parameters
        ----------
        mode : {"fast", "fixmatch", "both"}, optional
        background : bool, optional
            Run in a thread and return at once (the state's ``training`` says it
            runs); used by the standalone server.  Otherwise block until done.

        Returns
        -------
        dict
            The state (after training, unless ``background``).  A failed training
            is reported in ``error``; labels are kept.
        """
        with self._lock:
            mode = self._check(self.mode if mode is None else mode, self._modes, "mode")
            self.mode = mode
            if self.training is not None:
                self.message = "a training is already running"
                return self.state(images=False)
            self.training = {"mode": mode, "started": time.time()}
            self.error = ""
            self.message = f"training ({mode}) ..."
        if background:
            self._thread = threading.Thread(target=self._train, args=(mode,), name="amui-train", daemon=True)
            self._thread.start()
            return self.state(images=False)
        self._train(mode)
        return self.state()

    def training_preview(self, *, mode=None):
        """The state to show just before a training of ``mode`` starts (None when none would start).

        Parameters
        ----------
        mode : str, optional
            The training mode (default: the gallery's).

        Returns
        -------
        dict or None
            `state` without images, with ``training`` set and a message.
        """
        with self._lock:
            mode = mode or self.mode
            if mode not in self._modes or self.training is not None:
                return None
            state = self.state(images=False)
            return dict(state, training={"mode": mode, "elapsed": 0.0}, message=f"training ({mode}) ...")

    def wait(self, *, timeout=None):
        """Wait for a background training to finish (True when none runs any more)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # ------------------------------------------------------------------ protocol
    def dispatch(self, request):
        """Run one action from a front end and return the new state.

        Parameters
        ----------
        request : dict
            ``{"action": name, ...parameters}``; see ``ACTIONS``.  Errors (bad input,
            unknown ids) are reported in the returned state's ``error``, never raised.

        Returns
        -------
        dict
            JSON-serialisable state (see `state`).
        """
        if not isinstance(request, dict):
            return self._failed("a request must be a JSON object")
        action = request.get("action")
        if action not in ACTIONS:
            return self._failed(f"unknown action {action!r}; expected one of {sorted(ACTIONS)}")
        extra = set(request) - {"action", *ACTIONS[action]}
        if extra:
            return self._failed(f"unexpected parameter(s) {sorted(extra)} for action {action!r}")
        if action not in ("state", "status"):
            with self._lock:
                self.error = ""  # an error is about the last action; a new one starts clean
        try:
            if action == "state":
                return self.state()
            if action == "status":
                return self.state(images=False)
            if action == "label":
                return self.label(request.get("id"), request.get("label"))
            if action == "undo":
                return self.undo()
            if action == "page":
                return self.goto(request.get("page", 0))
            if action == "refresh":
                self.message = ""
                self.error = ""
                return self.refresh()
            if action == "view":
                return self.set_view(view=request.get("view"))
            if action == "stretch":
                return self.set_view(stretch=request.get("stretch"))
            if action == "strategy":
                return self.set_strategy(request.get("strategy"), like=request.get("like"))
            if action == "mode":
                return self.set_mode(request.get("mode"))
            return self.retrain(mode=request.get("mode"), background=self.background_training)
        except Exception as exc:  # shown in the UI; the session and its labels are untouched
            log.warning("action %r failed: %s", action, exc)
            return self._failed(f"{action} failed: {exc}")

    def _failed(self, text):
        with self._lock:
            self.error = str(text)
            return self.state(images=False)

    def _histogram(self):
        if not self.histogram:
            return None
        if self._hist is None:
            s = self.session
            self._hist = score_histogram_png(
                s.scores if s.scores is not None else np.full(len(self._row), np.nan),
                labels=s.label_array(),
                threshold=s.threshold if s.scores is not None else None,
            )
        return self._hist

    def state(self, *, images=True):
        """The JSON-serialisable state of the gallery.

        Parameters
        ----------
        images : bool, optional
            Include the tiles' PNG data URLs and the histogram.  Without them the
            front end reuses the images it has for the same ``version``.

        Returns
        -------
        dict
            Keys: ``version``, ``images``, ``tiles`` (``id``, ``rank``, ``score``,
            ``label`` ("anomaly" | "normal" | "skip" | None), ``ra``, ``dec``,
            ``links``, ``error``, ``n_members`` and ``members`` (the other objects of
            the tile's system: ``id``, ``score``, ``label``; best score first),
            ``image`` when ``images``), ``group``, ``page``,
            ``page_size``, ``more`` (a next page may exist), ``strategy``,
            ``strategies``, ``like``, ``view``, ``views``, ``stretch``,
            ``stretches``, ``mode``, ``modes``, ``counts``, ``cycle``, ``scored``,
            ``training``, ``last_train``, ``message``, ``error``, ``can_undo``,
            ``histogram``.
        """
        with self._lock:
            s = self.session
            labels = s.labels
            ids = self.page_ids()
            rendered, errors = ({}, {})
            if images and ids:
                rendered, errors = self.renderer.render(ids, view=self.view, stretch=self.stretch)
            tiles = []
            groups = self._systems if self._systems is not None and self._systems.any_members else None
            scores = s.scores if groups is not None else None
            for obj_id in ids:
                score, rank = self._info.get(obj_id, (float("nan"), 0))
                tile = {
                    "id": obj_id,
                    "rank": int(rank),
                    "score": None if not np.isfinite(score) else round(float(score), 5),
                    "label": labels.get(obj_id, "skip" if obj_id in self._skipped else None),
                    **tile_position(self._ra, self._dec, self._row.get(obj_id)),
                    "error": errors.get(obj_id),
                }
                tile["members"] = groups.members(obj_id, scores, labels) if groups is not None else []
                tile["n_members"] = len(tile["members"])
                if images:
                    tile["image"] = rendered.get(obj_id)
                tiles.append(tile)
            n1 = sum(1 for v in labels.values() if v == "anomaly")
            more = (not self._exhausted) or (self.page + 1) * self.page_size < len(self._queue)
            return {
                "version": self.version,
                "images": bool(images),
                "tiles": tiles,
                "group": self._systems is not None,
                "page": self.page,
                "page_size": self.page_size,
                "more": bool(more),
                "strategy": self.strategy,
                "strategies": list(self._strategies),
                "like": self.like,
                "view": self.view,
                "views": self.renderer.views,
                "stretch": self.stretch,
                "stretches": list(STRETCHES),
                "mode": self.mode,
                "modes": list(self._modes),
                "counts": {"anomaly": n1, "normal": len(labels) - n1, "labelled": len(labels), "total": len(self._row)},
                "cycle": s.cycle,
                "scored": s.scores is not None,
                "training": None
                if self.training is None
                else {"mode": self.training["mode"], "elapsed": round(time.time() - self.training["started"], 1)},
                "last_train": self.last_train,
                "message": self.message,
                "error": self.error,
                "can_undo": bool(self._undo),
                "histogram": self._histogram() if images else None,
            }
