"""Embedding cache: compute backbone embeddings once, keep them in HDF5, reuse them.

Embeddings of a CutoutSet under a given model are a pure function of (the model
weights, the normalisation, the rotation-averaging flag, the ids and pixels).  They
are stored in an HDF5 file, one group per key::

    /                       attrs: format = "anomalymatch_astro.EmbeddingCache"
    /entries/<digest>/      attrs: key (JSON), complete; datasets: embeddings (N, D) float32, ids (N,)
    /entries/<digest>/pca<k>/  (optional) mean (D,), components (k, D)

``digest`` is a SHA-256 of the key, so that embeddings of several models (the
pretrained backbone and a fine-tuned one, say) live side by side.  Every write
builds a new file beside the cache (the complete entries it keeps, copied, plus the
new one) and renames it over the cache, so an interrupted write leaves the old cache
as it was.
"""

import contextlib
import hashlib
import json
import logging
import os

import h5py
import numpy as np

from ..utils import atomic_path, ids_digest, loads_json, progress_bar
from ..utils.exceptions import InvalidInputError
from ._profile import profile_features

__all__ = ["EmbeddingCache", "center_crop", "check_zoom", "compute_embeddings", "embedding_key", "rotation_averaged"]

log = logging.getLogger(__name__)

_FORMAT = "anomalymatch_astro.EmbeddingCache"


def _normalizer_of(classifier):
    norm = getattr(classifier, "normalizer", None)
    if norm is None:
        config = getattr(classifier, "config", None)
        norm = getattr(config, "normalizer", None)
    if norm is None:
        return None
    if hasattr(norm, "to_dict"):
        return norm.to_dict()
    if isinstance(norm, dict):
        return norm
    return repr(norm)


def embedding_key(cutouts, classifier, *, rotation_average=False, stages=(), zoom=(), profile=False):
    """The cache key of the embeddings of ``cutouts`` under ``classifier``.

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet`
        The cutouts.
    classifier : object
        Anything with ``embed(cutouts, *, batch_size)`` and a ``model_hash`` string,
        normally an `~anomalymatch_astro.AnomalyClassifier`.
    rotation_average : bool, optional
        Whether the embeddings are averaged over the 8 rotations/flips.
    stages : sequence of int, optional
        The backbone stages appended to the head features (see
        `~anomalymatch_astro.AnomalyClassifier.embed`).
    zoom : sequence of float, optional
        The centre views appended (see `compute_embeddings`).
    profile : bool, optional
        Whether the residual profile features are appended (see `compute_embeddings`).

    Returns
    -------
    dict
        JSON-serialisable: model hash, normaliser settings, rotation flag, stages and zoom
        (when any), number of cutouts, SHA-256 of the ids and the image shape and bands.
    """
    model_hash = _model_hash(classifier, cutouts)
    if not isinstance(model_hash, str) or not model_hash:
        msg = (
            "the classifier has no model_hash string; pass an AnomalyClassifier (or an object with "
            "embed() and model_hash)"
        )
        raise InvalidInputError(msg)
    return {
        "model_hash": model_hash,
        "normalizer": _normalizer_of(classifier),
        "rotation_average": bool(rotation_average),
        "n": int(len(cutouts)),
        "ids_sha256": ids_digest(cutouts.ids),
        "image_shape": [int(x) for x in cutouts.image_shape],
        "bands": list(cutouts.bands),
        **({"stages": [int(x) for x in stages]} if stages else {}),
        **({"zoom": [float(f) for f in check_zoom(zoom)]} if zoom else {}),
        **({"profile": True} if profile else {}),
    }


def check_zoom(zoom):
    """``zoom`` as a tuple of floats, each a crop fraction in (0, 1); ``None`` or ``()`` for none."""
    try:
        fractions = tuple(float(f) for f in (zoom or ()))
    except (TypeError, ValueError):
        fractions = None
    if fractions is None or not all(0 < f < 1 for f in fractions):
        msg = f"zoom must be a sequence of crop fractions in (0, 1) such as (0.5,), got {zoom!r}"
        raise InvalidInputError(msg)
    return fractions


def center_crop(cutouts, fraction):
    """The central ``fraction`` of every cutout (side ``round(fraction * size)``), as an in-memory set.

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet`
        The cutouts (read into memory: pass a slice of a large set).
    fraction : float
        The side of the crop over the side of the cutout, in (0, 1).

    Returns
    -------
    `~anomalymatch_astro.CutoutSet`
        Same ids, bands and meta (a crop of normalised pixels stays normalised).
    """
    from ..cutouts import CutoutSet

    (fraction,) = check_zoom((fraction,))
    h, w = cutouts.image_shape
    ch, cw = max(2, int(round(h * fraction))), max(2, int(round(w * fraction)))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    parts = [p[..., y0 : y0 + ch, x0 : x0 + cw] for _, p in cutouts.iter_batches(batch_size=max(1, len(cutouts)))]
    pixels = np.concatenate(parts) if parts else np.zeros((0, len(cutouts.bands), ch, cw), np.float32)
    return CutoutSet.from_arrays(pixels, ids=cutouts.ids, bands=cutouts.bands, meta=dict(cutouts.meta or {}))


def _model_hash(classifier, cutouts):
    """``classifier.model_hash``; a classifier that builds its network lazily is built first."""
    try:
        return getattr(classifier, "model_hash", None)
    except InvalidInputError:
        # an AnomalyClassifier has no network before its first fit/embed: embedding one
        # cutout builds it (with the pretrained weights), after which the hash exists
        if len(cutouts) == 0:
            raise
        classifier.embed(cutouts[:1], batch_size=1)
        return classifier.model_hash


def _digest(key):
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


class EmbeddingCache:
    """Embeddings kept in one HDF5 file, keyed by model, normalisation, rotation flag and ids.

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file (created on the first `save`).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from anomalymatch_astro.embeddings import EmbeddingCache
    >>> cache = EmbeddingCache(os.path.join(tempfile.mkdtemp(), "emb.h5"))
    >>> key = {"model_hash": "abc", "n": 2}
    >>> cache.load(key) is None
    True
    >>> cache.save(key, np.ones((2, 3)), ids=["a", "b"])
    >>> cache.load(key).shape
    (2, 3)
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def __repr__(self):
        return f"<EmbeddingCache {self.path!r}>"

    def keys(self):
        """The keys (dicts) of every complete entry in the file."""
        if not os.path.exists(self.path):
            return []
        out = []
        with h5py.File(self.path, "r") as f:
            for grp in f.get("entries", {}).values():
                if grp.attrs.get("complete", False):
                    out.append(loads_json(grp.attrs["key"], source=f"the key of {grp.name} in {self.path!r}"))
        return out

    def _group_name(self, key):
        return f"entries/{_digest(key)}"

    def contains(self, key):
        """Whether a complete entry for ``key`` is stored."""
        if not os.path.exists(self.path):
            return False
        try:
            with h5py.File(self.path, "r") as f:
                name = self._group_name(key)
                return name in f and bool(f[name].attrs.get("complete", False))
        except OSError:
            return False

    def load(self, key):
        """The embeddings stored under ``key`` (float32 (N, D)), or None when absent."""
        if not self.contains(key):
            return None
        with h5py.File(self.path, "r") as f:
            return np.asarray(f[self._group_name(key)]["embeddings"][...], dtype=np.float32)

    def save(self, key, embeddings, *, ids=None):
        """Store ``embeddings`` under ``key`` (replacing any entry with the same key).

        Parameters
        ----------
        key : dict
            JSON-serialisable key (see `embedding_key`).
        embeddings : array-like, shape (N, D)
            The embeddings; stored as float32.
        ids : sequence of str, optional
            The object ids, stored alongside for inspection.
        """
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2:
            msg = f"embeddings must be 2-d (N, D), got shape {embeddings.shape}"
            raise InvalidInputError(msg)
        name = self._group_name(key)
        with self._rewrite(drop=name) as f:
            grp = f.create_group(name)
            grp.attrs["key"] = json.dumps(key, sort_keys=True)
            grp.create_dataset(
                "embeddings", data=embeddings, chunks=(min(len(embeddings), 4096) or 1, embeddings.shape[1])
            )
            if ids is not None:
                grp.create_dataset(
                    "ids", data=np.asarray([str(i) for i in ids], dtype=object), dtype=h5py.string_dtype()
                )
            grp.attrs["complete"] = True
        log.info("cached %s embeddings in %s", embeddings.shape, self.path)

    @contextlib.contextmanager
    def _rewrite(self, *, drop=None):
        """Yield a new HDF5 file holding the complete entries (less ``drop``); it then replaces the cache."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with atomic_path(self.path) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = _FORMAT
                entries = f.create_group("entries")
                self._copy_entries(entries, drop=drop)
                yield f

    def _copy_entries(self, entries, *, drop=None):
        if not os.path.exists(self.path):
            return
        try:
            with h5py.File(self.path, "r") as old:
                for gname, grp in old.get("entries", {}).items():
                    if f"entries/{gname}" != drop and grp.attrs.get("complete", False):
                        old.copy(grp, entries, name=gname)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:  # h5py: a damaged file
            log.warning("the embedding cache %s is unreadable (%s); starting it afresh", self.path, exc)

    def load_pca(self, key, n_components):
        """The stored PCA of the entry ``key`` with ``n_components`` components, or None.

        Returns
        -------
        tuple or None
            ``(mean (D,), components (k, D))`` float32.
        """
        if not self.contains(key):
            return None
        with h5py.File(self.path, "r") as f:
            grp = f[self._group_name(key)]
            pname = f"pca{int(n_components)}"
            if pname not in grp:
                return None
            return (
                np.asarray(grp[pname]["mean"][...], dtype=np.float32),
                np.asarray(grp[pname]["components"][...], dtype=np.float32),
            )

    def save_pca(self, key, mean, components):
        """Store a PCA (``mean``, ``components``) with the entry ``key``."""
        if not self.contains(key):
            msg = "store the embeddings before their PCA"
            raise InvalidInputError(msg)
        with self._rewrite() as f:
            grp = f[self._group_name(key)]
            pname = f"pca{len(components)}"
            if pname in grp:
                del grp[pname]
            sub = grp.create_group(pname)
            sub.create_dataset("mean", data=np.asarray(mean, dtype=np.float32))
            sub.create_dataset("components", data=np.asarray(components, dtype=np.float32))


def _dihedral_views(pixels):
    """The 8 rotations/flips of a batch (n, C, H, W) (requires H == W for the 90-degree ones)."""
    views = []
    for flip in (False, True):
        base = pixels[..., ::-1] if flip else pixels
        for k in range(4):
            views.append(np.ascontiguousarray(np.rot90(base, k=k, axes=(-2, -1))))
    return views


def rotation_averaged(cutouts, classifier, *, batch_size=256, stages=()):
    """Embeddings averaged over the 8 rotations (0/90/180/270 degrees) and flips of each cutout.

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet`
        Square cutouts.
    classifier : object
        Has ``embed(cutouts, *, batch_size)`` (and ``stages=`` when ``stages`` is given).
    batch_size : int, optional
        Cutouts per forward pass.
    stages : sequence of int, optional
        Backbone stages to append (see `~anomalymatch_astro.AnomalyClassifier.embed`).

    Returns
    -------
    numpy.ndarray
        float32 (N, D).
    """
    from ..cutouts import CutoutSet

    h, w = cutouts.image_shape
    if h != w:
        msg = f"rotation averaging needs square cutouts, got {h}x{w}"
        raise InvalidInputError(msg)
    out = None
    for rows, pixels in cutouts.iter_batches(batch_size=batch_size):
        acc = None
        for view in _dihedral_views(pixels):
            sub = CutoutSet.from_arrays(view, ids=cutouts.ids[rows], bands=cutouts.bands)
            emb = np.asarray(_embed(classifier, sub, batch_size, stages), dtype=np.float64)
            acc = emb if acc is None else acc + emb
        acc = (acc / 8.0).astype(np.float32)
        if out is None:
            out = np.empty((len(cutouts), acc.shape[1]), dtype=np.float32)
        out[rows] = acc
    if out is None:
        out = np.zeros((0, 0), dtype=np.float32)
    return out


def _embed(classifier, cutouts, batch_size, stages):
    # stand-in embedders need only embed(cutouts, *, batch_size); stages are asked for only when used
    if stages:
        return classifier.embed(cutouts, batch_size=batch_size, stages=stages)
    return classifier.embed(cutouts, batch_size=batch_size)


def _embed_view(classifier, cutouts, batch_size, stages, rotation_average):
    if rotation_average:
        return rotation_averaged(cutouts, classifier, batch_size=batch_size, stages=stages)
    return np.asarray(_embed(classifier, cutouts, batch_size, stages), dtype=np.float32)


def compute_embeddings(
    cutouts,
    classifier,
    *,
    cache_path=None,
    rotation_average=False,
    stages=(),
    zoom=(),
    profile=False,
    batch_size=256,
    progress=True,
):
    """Embeddings of every cutout under ``classifier``, computed once and cached in HDF5.

    The cache entry is keyed by ``classifier.model_hash``, the normaliser, the
    rotation flag and the ids (`embedding_key`): a second call with the same key
    reads the file instead of running the network; a changed model (new hash) is
    computed afresh and stored beside the old entry.

    Parameters
    ----------
    cutouts : `~anomalymatch_astro.CutoutSet`
        The cutouts.
    classifier : `~anomalymatch_astro.AnomalyClassifier`
        Anything with ``embed(cutouts, *, batch_size)`` -> (N, D) and ``model_hash``.
        An unfitted AnomalyClassifier gives the pretrained (ImageNet) features.
    cache_path : str or os.PathLike, optional
        The HDF5 cache file.  Default: ``<cutout file>.embeddings.h5`` beside a
        CutoutSet read from HDF5; no caching for an in-memory set.
    rotation_average : bool, optional
        Average the embeddings over the 8 rotations/flips (8x the cost; gives
        orientation-invariant features).
    stages : sequence of int, optional
        Append the pooled feature maps of these backbone stages to the head features
        (see `~anomalymatch_astro.AnomalyClassifier.embed`).
    zoom : sequence of float, optional
        Centre views: for each fraction ``f``, the embeddings of the central ``f`` of every
        cutout (`center_crop`, resized to the network's input like the full cutout) are
        appended, one block of the same width per view, so the features of a small object
        in a crowded field are not only those of its neighbours (``(0.5,)``: the central
        half at twice the scale).  ``()``: the full cutouts alone.
    profile : bool, optional
        Append `profile_features` (the radial residual profile of every cutout, per band:
        the faint structure a smooth elliptical galaxy at the centre does not explain) as a
        last block of `profile_width` columns.
    batch_size : int, optional
        Cutouts per forward pass.
    progress : bool, optional
        Show a progress bar while computing.

    Returns
    -------
    numpy.ndarray
        float32 (N, D), row i for cutout i.
    """
    if cache_path is None:
        if getattr(cutouts, "path", None):
            cache_path = os.fspath(cutouts.path) + ".embeddings.h5"
    stages, zoom = tuple(int(x) for x in stages), check_zoom(zoom)
    settings = {"rotation_average": rotation_average, "stages": stages, "zoom": zoom, "profile": profile}
    key = embedding_key(cutouts, classifier, **settings)
    cache = EmbeddingCache(cache_path) if cache_path is not None else None
    if cache is not None:
        cached = cache.load(key)
        if cached is not None:
            log.debug("embeddings read from %s", cache.path)
            return cached
    if rotation_average and not zoom:
        emb = rotation_averaged(cutouts, classifier, batch_size=batch_size, stages=stages)
        if profile:
            emb = np.concatenate([emb, profile_features(cutouts)], axis=1)
    else:
        parts = []
        n = len(cutouts)
        bar = progress_bar(total=n, desc="embedding", progress=progress, unit="img")
        chunk = max(batch_size * 16, 4096)
        with bar:
            for start in range(0, n, chunk):
                sub = cutouts[start : start + chunk]
                views = [sub] + [center_crop(sub, f) for f in zoom]
                blocks = [_embed_view(classifier, v, batch_size, stages, rotation_average) for v in views]
                parts.append(np.concatenate(blocks + ([profile_features(sub)] if profile else []), 1))
                bar.update(len(sub))
        emb = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    if len(emb) != len(cutouts):
        msg = f"the classifier returned {len(emb)} embeddings for {len(cutouts)} cutouts"
        raise InvalidInputError(msg)
    if cache is not None:
        cache.save(key, emb, ids=cutouts.ids)
    return emb
