"""The session's workdir: everything `ActiveLearningSession` keeps on disk, in one place.

::

    workdir/
      session.json      format, cutout file, ids checksum, settings, embedding key, cycle
      labels.sqlite     every label event (WAL, one transaction per label() call)
      embeddings.h5     cached backbone embeddings (EmbeddingCache)
      scores.h5         the last scores (ids, score, per-model scores, cycle), written atomically
      model/            the last FixMatch classifier (AnomalyClassifier.save), swapped in atomically

`SessionWorkdir.restore_settings` is the one place where the settings recorded in
``session.json`` are read back.  Every file is replaced through
`~anomalymatch_astro.utils.atomic_path`, so a crash leaves the old file or the new one.
"""

import contextlib
import logging
import os
import shutil
import time

import h5py
import numpy as np

from ..embeddings import HEADS, EmbeddingCache, fit_pca
from ..utils import atomic_path, ids_digest, read_json, write_json_atomic
from ..utils.exceptions import CheckpointError, InvalidInputError, ReadError

__all__ = ["SessionWorkdir", "MODES", "recorded_cutouts_path"]

log = logging.getLogger(__name__)

#: Training modes of `ActiveLearningSession.train`.
MODES = ("fast", "fixmatch", "both")

#: The settings recorded in ``session.json``, in the order they are described.
SETTINGS = ("default_mode", "head", "rotation_average", "feature_stages", "zoom", "profile")

#: The settings the cached embeddings were made with: they cannot change once embeddings exist.
EMBEDDING_SETTINGS = ("rotation_average", "feature_stages", "zoom", "profile")

#: Values assumed for workdirs written before a setting was recorded (embeddings were then made
#: from the head features alone, without rotation averaging or centre views).
LEGACY_SETTINGS = {"rotation_average": False, "feature_stages": (), "zoom": (), "profile": False}

_FORMAT = "anomalymatch_astro.ActiveLearningSession"
_FORMAT_VERSION = 1

# prefixes of temporary files and folders left by a run killed while saving (any pid, old and new names)
_TMP_PREFIXES = {
    "model": ("model.tmp", ".model.tmp"),
    "scores.h5": ("scores.h5.tmp", ".scores.h5.tmp"),
}


def read_state(path):
    """The content of a ``session.json``, or a `CheckpointError` saying what to do.

    Parameters
    ----------
    path : str or os.PathLike
        The ``session.json`` file.

    Returns
    -------
    dict
    """
    try:
        state = read_json(path)  # a byte and a nesting limit
    except ReadError as exc:  # missing, too large or deep, not JSON, not UTF-8
        state = exc
    if not isinstance(state, dict):
        msg = (
            f"{path} is not a readable session file ({state}); it is written atomically, so it was "
            "changed by hand or the disk is damaged: restore it, or use a new workdir (the labels in "
            "labels.sqlite can be imported with labels=...)"
        )
        raise CheckpointError(msg)
    if state.get("format") != _FORMAT:
        msg = f"{path} is not an anomalymatch_astro session file"
        raise CheckpointError(msg)
    return state


def recorded_cutouts_path(workdir):
    """The CutoutSet file recorded in a workdir's ``session.json``.

    Parameters
    ----------
    workdir : str or os.PathLike
        A session's workdir.

    Returns
    -------
    str
    """
    path = os.path.join(os.fspath(workdir), "session.json")
    if not os.path.exists(path):
        msg = f"{os.fspath(workdir)!r} holds no session (no session.json)"
        raise CheckpointError(msg)
    cpath = read_state(path).get("cutouts_path")
    if not cpath:
        msg = (
            "this session was made from in-memory cutouts, so their file is unknown; use "
            "ActiveLearningSession(cutouts, workdir=...) with the same cutouts"
        )
        raise CheckpointError(msg)
    return cpath


def _same_setting(name, a, b):
    if name == "feature_stages":
        return [int(x) for x in a] == [int(x) for x in b]
    if name == "zoom":
        return [float(x) for x in a] == [float(x) for x in b]
    return a == b


class SessionWorkdir:
    """The files of one session's workdir (created if needed).

    Parameters
    ----------
    path : str or os.PathLike
        The workdir.
    """

    def __init__(self, path):
        self.path = os.path.abspath(os.fspath(path))
        # what was there before, so that a session that fails to start can leave it as it was
        self._entries_before = set(os.listdir(self.path)) if os.path.isdir(self.path) else None
        os.makedirs(self.path, exist_ok=True)
        self.state = {}
        self.existed = False

    def discard(self):
        """Undo the start of a new session that failed: remove what this object added.

        A workdir this object created is removed; in a folder that existed but held no
        session, only the entries added since are removed.  A workdir that already held a
        session is left alone.
        """
        if self.existed:
            return
        if self._entries_before is None:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for name in set(os.listdir(self.path)) - self._entries_before:
            target = self.file(name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(target)

    def file(self, name):
        """The path of ``name`` inside the workdir."""
        return os.path.join(self.path, name)

    @property
    def label_store_path(self):
        """Where the SQLite label store lives."""
        return self.file("labels.sqlite")

    @property
    def embeddings_path(self):
        """Where the embedding cache lives."""
        return self.file("embeddings.h5")

    # ------------------------------------------------------------------ session.json
    def open(self, ids, *, cutouts_path=None):
        """Read ``session.json`` (checking that it belongs to ``ids``), or start a new one.

        Parameters
        ----------
        ids : numpy.ndarray of str
            The ids of the session's cutouts.
        cutouts_path : str, optional
            The CutoutSet file, recorded in a new workdir for `ActiveLearningSession.open`.
        """
        path = self.file("session.json")
        if os.path.exists(path):
            state = read_state(path)
            if state.get("ids_sha256") != ids_digest(ids):
                msg = (
                    f"the workdir {self.path!r} belongs to a different CutoutSet ({state.get('n')} "
                    f"objects, other ids); open it with the same cutouts or use a new workdir"
                )
                raise InvalidInputError(msg)
            self.state = state
            self.existed = True
            return
        self.state = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "cutouts_path": os.path.abspath(cutouts_path) if cutouts_path else None,
            "n": len(ids),
            "ids_sha256": ids_digest(ids),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def recorded_settings(self):
        """The settings recorded in ``session.json`` (those of older workdirs completed).

        Returns
        -------
        dict
            ``{name: value}`` for the `SETTINGS` this workdir records; empty for a new workdir.
            ``rotation_average``, ``feature_stages`` and ``zoom`` missing from an older workdir
            are taken from its embedding key, else from `LEGACY_SETTINGS`.
        """
        if not self.existed:
            return {}
        state = self.state
        recorded = {}
        if state.get("default_mode") in MODES:
            recorded["default_mode"] = state["default_mode"]
        if state.get("head") in HEADS:
            recorded["head"] = state["head"]
        elif state.get("head") is not None:
            log.warning(
                "the workdir %r was trained with a custom head (%s), which cannot be restored; "
                "pass head=... to use it again",
                self.path,
                state["head"],
            )
        key = state.get("embedding_key") or {}
        if "rotation_average" in state:
            recorded["rotation_average"] = bool(state["rotation_average"])
        elif "rotation_average" in key:
            recorded["rotation_average"] = bool(key["rotation_average"])
        else:
            recorded["rotation_average"] = LEGACY_SETTINGS["rotation_average"]
        if "feature_stages" in state:
            recorded["feature_stages"] = tuple(int(x) for x in state["feature_stages"])
        elif key:
            recorded["feature_stages"] = tuple(int(x) for x in key.get("stages", ()))
        else:
            recorded["feature_stages"] = LEGACY_SETTINGS["feature_stages"]
        zoom = state["zoom"] if "zoom" in state else key.get("zoom", LEGACY_SETTINGS["zoom"])
        recorded["zoom"] = tuple(float(x) for x in zoom)
        recorded["profile"] = bool(state["profile"] if "profile" in state else key.get("profile", False))
        return recorded

    def restore_settings(self, **given):
        """The session's settings: the given ones, else the recorded ones.

        This is the one place where recorded settings are restored.  ``default_mode`` and
        ``head`` given explicitly replace the recorded ones (the head is refitted at every
        training).  ``rotation_average``, ``feature_stages`` and ``zoom`` are those of the cached
        embeddings: once the workdir holds embeddings, a different value is refused.

        Parameters
        ----------
        **given
            ``{name: value or None}`` for the `SETTINGS`; None means "not given".

        Returns
        -------
        dict
            ``{name: value}`` for every name of `SETTINGS`; None where it was neither given nor
            recorded (the caller's default applies).

        Raises
        ------
        InvalidInputError
            A given embedding setting differs from the one the cached embeddings were made with.
        """
        recorded = self.recorded_settings()
        has_embeddings = bool(self.state.get("embedding_key"))
        settings = {}
        for name in SETTINGS:
            value = given.get(name)
            if value is None:
                settings[name] = recorded.get(name)
                continue
            if (
                has_embeddings
                and name in EMBEDDING_SETTINGS
                and name in recorded
                and not _same_setting(name, value, recorded[name])
            ):
                msg = (
                    f"the workdir {self.path!r} holds embeddings made with {name}={recorded[name]!r}, "
                    f"not {value!r}; reopen it without {name}= (the recorded value is used) or use a "
                    f"new workdir for other settings"
                )
                raise InvalidInputError(msg)
            settings[name] = value
        return settings

    def save_state(self, **updates):
        """Update ``session.json`` with ``updates`` and write it atomically."""
        self.state = {**self.state, **updates}
        write_json_atomic(self.file("session.json"), self.state)

    # ------------------------------------------------------------------ embeddings
    @property
    def embedding_key(self):
        """The key of the cached embeddings (None before they are computed)."""
        return self.state.get("embedding_key")

    def cached_embeddings(self, n):
        """The cached embeddings and their block widths, or None when there are none for ``n`` objects.

        Parameters
        ----------
        n : int
            Number of cutouts.

        Returns
        -------
        tuple or None
            ``(embeddings (n, D), blocks list or None)``.
        """
        key = self.embedding_key
        if key is None:
            return None
        emb = EmbeddingCache(self.embeddings_path).load(key)
        if emb is None or len(emb) != n:
            return None
        return emb, self.state.get("embedding_blocks")

    def record_embeddings(self, key, blocks):
        """Record the key and the feature-level widths of newly computed embeddings."""
        self.save_state(embedding_key=key, embedding_blocks=None if blocks is None else [int(b) for b in blocks])

    def pca(self, embeddings, k):
        """PCA of the embeddings with ``k`` components, cached beside the embeddings when they are."""
        key = self.embedding_key
        cache = EmbeddingCache(self.embeddings_path) if key else None
        pca = cache.load_pca(key, k) if cache is not None else None
        if pca is None:
            pca = fit_pca(embeddings, n_components=k)
            if cache is not None:
                cache.save_pca(key, *pca)
        return pca

    # ------------------------------------------------------------------ model
    def _remove_leftovers(self, name):
        prefixes = _TMP_PREFIXES[name]
        for entry in os.listdir(self.path):
            if entry.startswith(prefixes):
                path = self.file(entry)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)

    def load_model(self):
        """The last saved classifier, or None.

        ``model.old`` is used when a crash came between the two renames of the swap.
        """
        for name in ("model", "model.old"):
            if os.path.isdir(self.file(name)):
                from ..classifier import AnomalyClassifier

                return AnomalyClassifier.load(self.file(name))
        return None

    def save_model(self, classifier):
        """Save ``classifier`` to ``model/``; the old one is moved aside until the new one is in place."""
        final = self.file("model")
        old = self.file("model.old")
        self._remove_leftovers("model")
        with atomic_path(final) as tmp:
            os.mkdir(tmp)  # a fresh, empty folder of this session's own: nothing in it to replace
            classifier.save(tmp)
            if os.path.exists(old):
                shutil.rmtree(old)
            if os.path.exists(final):  # a folder cannot be renamed over another one
                os.replace(final, old)
        if os.path.exists(old):
            shutil.rmtree(old)

    # ------------------------------------------------------------------ scores
    def load_scores(self, ids):
        """The saved scores when they belong to ``ids``, else None.

        Returns
        -------
        dict or None
            ``scores``, ``parts`` (per model), ``threshold``, ``mode``, ``cycle``.
        """
        path = self.file("scores.h5")
        if not os.path.exists(path):
            return None
        try:
            with h5py.File(path, "r") as f:
                saved_ids = f["ids"].asstr()[...]
                if len(saved_ids) != len(ids) or not np.array_equal(saved_ids, ids):
                    return None
                return {
                    "scores": np.asarray(f["score"][...], dtype=np.float64),
                    "parts": {k: np.asarray(f["parts"][k][...], dtype=np.float64) for k in f.get("parts", {})},
                    "threshold": float(f.attrs.get("threshold", 0.5)),
                    "mode": str(f.attrs.get("mode", "")) or None,
                    "cycle": int(f.attrs.get("cycle", 0)),
                }
        except (OSError, KeyError) as exc:
            log.warning("could not read the saved scores %s (%s); train again", path, exc)
            return None

    def save_scores(self, ids, scores, parts, *, threshold, mode, cycle):
        """Write ``scores.h5`` atomically."""
        self._remove_leftovers("scores.h5")
        with atomic_path(self.file("scores.h5")) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("ids", data=np.asarray(ids).astype(object), dtype=h5py.string_dtype())
            f.create_dataset("score", data=scores)
            grp = f.create_group("parts")
            for name, values in parts.items():
                grp.create_dataset(name, data=values)
            f.attrs["cycle"] = int(cycle)
            f.attrs["mode"] = mode
            f.attrs["threshold"] = float(threshold)
            f.attrs["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
