"""A local copy of GalaxyMNIST as a benchmark set.

Nothing is downloaded: the loader reads a copy the user already has on disk and
returns a `~anomalymatch_astro.CutoutSet` built like the offline sets of
`load_benchmark_set` (shuffled, float32 pixels in [0, 1], a table with ``class``
and ``is_anomaly``).  Which images form the set is decided from the labels alone,
before any pixel is read, and only those images are read.
"""

import logging

import numpy as np
from astropy.table import Table

from ..utils import progress_bar
from ..utils.exceptions import InvalidInputError
from ._files import _LAYOUTS, _existing, _pickles_in, _refuse_pickle
from ._sampling import _check_positive_int, _choose

__all__ = ["GALAXY_MNIST_CLASSES", "GALAXY_MNIST_FILES", "load_galaxy_mnist"]

log = logging.getLogger(__name__)

#: The GalaxyMNIST classes, in the order of their integer labels 0-3.
GALAXY_MNIST_CLASSES = ("smooth_round", "smooth_cigar", "edge_on_disk", "unbarred_spiral")

#: File names of the two splits of a GalaxyMNIST copy (as its authors publish them).
GALAXY_MNIST_FILES = {"train": "train_dataset.hdf5", "test": "test_dataset.hdf5"}
_HDF5_CHUNK = 256


def _galaxy_mnist_files(p, split):
    """The ``[(split name, file)]`` to read for ``path`` and ``split``."""
    _refuse_pickle(p)
    if p.is_file():
        if p.name.lower().endswith(".gz"):
            msg = (
                f"{str(p)!r} is gzip-compressed; decompress it first (gunzip {p.name}) and pass the .hdf5 file "
                "or its folder"
            )
            raise InvalidInputError(msg)
        stem = p.name.split(".")[0]
        name = "train" if stem.startswith("train") else "test" if stem.startswith("test") else stem
        return [(name, p)]
    if split not in ("train", "test", "both"):
        msg = f"split must be 'train', 'test' or 'both', got {split!r}"
        raise InvalidInputError(msg)
    wanted = ("train", "test") if split == "both" else (split,)
    folders = [f for f in (p, p / "raw", p / "GalaxyMNIST" / "raw", p / "GalaxyMNISTHighrez" / "raw") if f.is_dir()]
    for folder in folders:
        have = {s: folder / name for s, name in GALAXY_MNIST_FILES.items() if (folder / name).is_file()}
        if have:
            missing = [GALAXY_MNIST_FILES[s] for s in wanted if s not in have]
            if missing:
                msg = (
                    f"{str(folder)!r} has no {missing[0]} for split={split!r}; it holds only "
                    f"{sorted(f.name for f in have.values())}: choose split={next(iter(have))!r}"
                )
                raise InvalidInputError(msg)
            return [(s, have[s]) for s in wanted]
    gz = sorted(f.name for folder in folders for f in folder.glob("*.hdf5.gz"))
    if gz:
        msg = f"{str(p)!r} holds only compressed files {gz}; decompress them first (gunzip {gz[0]})"
        raise InvalidInputError(msg)
    pickles = _pickles_in(p)
    if pickles:
        _refuse_pickle(pickles[0])
    msg = f"found no GalaxyMNIST file (train_dataset.hdf5 or test_dataset.hdf5) in {str(p)!r}.\n{_LAYOUTS}"
    raise InvalidInputError(msg)


def _open_galaxy_file(f):
    """Open one GalaxyMNIST HDF5 file and check it; return (h5py.File, channels_last, labels)."""
    import h5py

    try:
        h = h5py.File(f, "r")
    except OSError as err:
        msg = (
            f"{str(f)!r} is not a readable HDF5 file ({err}); a GalaxyMNIST copy is an HDF5 file with the "
            "datasets 'images' and 'labels': download it again, or decompress it if it ends in .gz"
        )
        raise InvalidInputError(msg) from err
    try:
        missing = [k for k in ("images", "labels") if not isinstance(h.get(k), h5py.Dataset)]
        if missing:
            msg = (
                f"{str(f)!r} has no {' or '.join(repr(k) for k in missing)} dataset (it holds {sorted(h.keys())}); "
                "a GalaxyMNIST file has 'images' (N, H, W, 3) uint8 and 'labels' (N,) integers 0-3"
            )
            raise InvalidInputError(msg)
        images, labels = h["images"], h["labels"]
        if images.ndim != 4 or 3 not in (images.shape[-1], images.shape[1]):
            msg = (
                f"{str(f)!r}: 'images' has shape {images.shape}; expected (N, H, W, 3) colour images (or (N, 3, H, W))"
            )
            raise InvalidInputError(msg)
        if images.dtype != np.uint8:
            msg = f"{str(f)!r}: 'images' is {images.dtype}; expected uint8 pixels (0-255) as in GalaxyMNIST"
            raise InvalidInputError(msg)
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            msg = (
                f"{str(f)!r}: 'labels' has shape {labels.shape} for {images.shape[0]} images; "
                "expected one label per image"
            )
            raise InvalidInputError(msg)
        values = labels[()]
        if not np.issubdtype(values.dtype, np.integer) or (len(values) and (values.min() < 0 or values.max() > 3)):
            msg = (
                f"{str(f)!r}: 'labels' must be integers 0-3 ({', '.join(GALAXY_MNIST_CLASSES)}), got "
                f"{values.dtype} values {np.unique(values)[:8].tolist()}"
            )
            raise InvalidInputError(msg)
    except BaseException:
        h.close()
        raise
    channels_last = images.shape[-1] == 3
    return h, channels_last, values.astype(np.int64)


def _resize_batch(x, size):
    """Bilinear resize of float32 (N, C, H, W) to (size, size), antialiased when shrinking."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    t = torch.from_numpy(np.ascontiguousarray(x))
    y = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=size < max(h, w))
    return y.clamp_(0.0, 1.0).numpy()


def _read_rows(dataset, rows, channels_last, size):
    """uint8 images at sorted unique ``rows`` of ``dataset`` -> float32 (n, 3, size, size) in [0, 1]."""
    span = int(rows[-1] - rows[0] + 1)
    if span <= 4 * len(rows):  # dense: one contiguous read, then pick
        block = dataset[int(rows[0]) : int(rows[-1]) + 1][rows - rows[0]]
    else:  # sparse: point selection (h5py wants increasing indices)
        block = dataset[rows]
    if channels_last:
        block = block.transpose(0, 3, 1, 2)
    x = block.astype(np.float32) / np.float32(255.0)
    return x if size is None else _resize_batch(x, size)


def load_galaxy_mnist(
    path,
    *,
    anomaly_class="unbarred_spiral",
    anomaly_fraction=0.25,
    split="train",
    n_per_class=None,
    image_size=None,
    seed=0,
    progress=True,
):
    """A local copy of GalaxyMNIST as a benchmark set, one class as the anomaly.

    GalaxyMNIST (Walmsley et al., github.com/mwalmsley/galaxy_mnist) holds 10,000
    DECaLS g, r, z colour images of galaxies confidently labelled by Galaxy Zoo
    volunteers as one of four classes (``GALAXY_MNIST_CLASSES``), split 80/20 into
    ``train_dataset.hdf5`` and ``test_dataset.hdf5`` (datasets ``images``,
    (N, 64, 64, 3) uint8, and ``labels``, (N,) integers 0-3; the high-resolution
    variant has the same file names with 224-pixel images).  ``anomaly_class`` is the
    anomaly; every other class is normal and contributes the same number of images,
    and anomalies are drawn so that they are ``anomaly_fraction`` of the set, with as
    many images as the copy (and ``n_per_class``) allows: at the paper's 25% every
    class contributes equally.  Nothing is downloaded.

    Parameters
    ----------
    path : str or os.PathLike
        A folder holding ``train_dataset.hdf5`` and/or ``test_dataset.hdf5`` (or its
        ``raw/``, ``GalaxyMNIST/raw/`` or ``GalaxyMNISTHighrez/raw/`` subfolder, as
        torchvision stores them), or one HDF5 file of that format under any name.
    anomaly_class : str or int, optional
        The anomalous class: a name in ``GALAXY_MNIST_CLASSES`` or its label 0-3.
    anomaly_fraction : float, optional
        Fraction of anomalies in the set, in (0, 1).
    split : {"train", "test", "both"}, optional
        Which file(s) of a folder to use.  Ignored when ``path`` is a file (the split
        name is then taken from the file name).
    n_per_class : int, optional
        At most this many images of each class (default: as many as there are).
    image_size : int, optional
        Resize the images to ``image_size`` x ``image_size`` pixels (bilinear,
        antialiased when shrinking); default: keep the copy's size.
    seed : int, optional
        Random seed (which images are drawn, and their order).
    progress : bool, optional
        Show a progress bar while reading.

    Returns
    -------
    `~anomalymatch_astro.CutoutSet`
        Shuffled; float32 pixels in [0, 1], channels first, bands ``("g", "r", "z")``;
        ids ``gmnist_<split>_<index in the file>`` (e.g. ``gmnist_train_000123``, the
        same whatever the seed); table columns ``id``, ``class`` (str), ``is_anomaly``,
        ``label`` (0-3) and ``split``; ``meta["benchmark"] == "galaxy_mnist"``.

    Raises
    ------
    anomalymatch_astro.utils.exceptions.InvalidInputError
        If ``path`` does not exist or holds no GalaxyMNIST file, a file is not HDF5,
        lacks ``images`` or ``labels``, or has the wrong shapes, the anomaly class is
        unknown or has no images, or ``path`` is a pickle.

    See Also
    --------
    find_local_sets, load_benchmark_set, make_morphology_set

    Examples
    --------
    >>> from anomalymatch_astro.datasets import load_galaxy_mnist
    >>> cs = load_galaxy_mnist("~/data/GalaxyMNIST", anomaly_class="edge_on_disk")  # doctest: +SKIP
    >>> cs.bands, cs.image_shape, cs.meta["anomaly_fraction"]  # doctest: +SKIP
    (('g', 'r', 'z'), (64, 64), 0.25)
    """
    from ..cutouts import CutoutSet

    if isinstance(anomaly_class, (int, np.integer)) and not isinstance(anomaly_class, bool):
        if not 0 <= anomaly_class <= 3:
            msg = f"anomaly_class must be one of {GALAXY_MNIST_CLASSES} or its label 0-3, got {anomaly_class!r}"
            raise InvalidInputError(msg)
        anomaly_label = int(anomaly_class)
    elif isinstance(anomaly_class, str) and anomaly_class in GALAXY_MNIST_CLASSES:
        anomaly_label = GALAXY_MNIST_CLASSES.index(anomaly_class)
    else:
        msg = f"anomaly_class must be one of {GALAXY_MNIST_CLASSES} or its label 0-3, got {anomaly_class!r}"
        raise InvalidInputError(msg)
    n_per_class = _check_positive_int(n_per_class, "n_per_class", allow_none=True)
    image_size = _check_positive_int(image_size, "image_size", allow_none=True, minimum=8)
    files = _galaxy_mnist_files(_existing(path), split)

    handles = []
    try:
        labels, origin, shapes = [], [], set()
        for j, (_, f) in enumerate(files):
            h, channels_last, lab = _open_galaxy_file(f)
            handles.append((h, channels_last))
            shape = h["images"].shape
            shapes.add(shape[1:3] if channels_last else shape[2:4])
            labels.append(lab)
            origin.append(np.stack([np.full(len(lab), j), np.arange(len(lab))], axis=1))
        if len(shapes) > 1 and image_size is None:
            msg = (
                f"the GalaxyMNIST files {[str(f) for _, f in files]} hold images of different sizes "
                f"{sorted(shapes)}; use one split, or pass image_size to resize them to one size"
            )
            raise InvalidInputError(msg)
        labels = np.concatenate(labels)
        origin = np.concatenate(origin)
        names = ", ".join(str(f) for _, f in files)
        pools = {c: np.flatnonzero(labels == c) for c in range(4)}
        if not len(pools[anomaly_label]):
            msg = (
                f"{names} holds no image of the anomaly class {GALAXY_MNIST_CLASSES[anomaly_label]!r}, so the set "
                "could not hold even one anomaly; choose another anomaly_class or split"
            )
            raise InvalidInputError(msg)
        normal = [c for c in range(4) if c != anomaly_label and len(pools[c])]
        empty = [GALAXY_MNIST_CLASSES[c] for c in range(4) if c != anomaly_label and not len(pools[c])]
        if not normal:
            msg = f"{names} holds no image of any normal class (only {GALAXY_MNIST_CLASSES[anomaly_label]!r})"
            raise InvalidInputError(msg)
        if empty:
            log.warning("%s holds no image of %s; the normals come from the other classes", names, empty)
        rng = np.random.default_rng(seed)
        chosen, n_anom = _choose(pools, anomaly_label, normal, n_per_class, anomaly_fraction, rng)

        height, width = next(iter(shapes))
        size = image_size
        out = np.empty((len(chosen), 3) + ((size, size) if size else (height, width)), dtype=np.float32)
        bar = progress_bar(total=len(chosen), desc="GalaxyMNIST", progress=progress, unit="img")
        with bar:
            for j, (h, channels_last) in enumerate(handles):
                mine = np.flatnonzero(origin[chosen, 0] == j)  # positions in the output
                rows = origin[chosen[mine], 1]
                order = np.argsort(rows)
                mine, rows = mine[order], rows[order]
                for start in range(0, len(rows), _HDF5_CHUNK):
                    sl = slice(start, start + _HDF5_CHUNK)
                    out[mine[sl]] = _read_rows(h["images"], rows[sl], channels_last, size)
                    bar.update(len(rows[sl]))
    finally:
        for h, _ in handles:
            h.close()

    split_names = np.array([files[j][0] for j in origin[chosen, 0]])
    label = labels[chosen]
    ids = [f"gmnist_{s}_{i:06d}" for s, i in zip(split_names, origin[chosen, 1])]
    table = Table(
        {
            "class": np.array(GALAXY_MNIST_CLASSES)[label],
            "is_anomaly": label == anomaly_label,
            "label": label,
            "split": split_names,
        }
    )
    meta = dict(
        benchmark="galaxy_mnist",
        anomaly_class=GALAXY_MNIST_CLASSES[anomaly_label],
        anomaly_fraction=float(n_anom / len(chosen)),
        seed=int(seed),
        image_size=int(out.shape[-1]),
        split="+".join(s for s, _ in files),
        source=[str(f) for _, f in files],
    )
    return CutoutSet.from_arrays(out, ids=ids, bands=("g", "r", "z"), table=table, meta=meta)
