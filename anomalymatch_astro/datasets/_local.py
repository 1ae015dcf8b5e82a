"""Local copies of GalaxyMNIST and miniImageNet (or any ImageNet-style folder) as benchmark sets.

The AnomalyMatch paper benchmarks on GalaxyMNIST (one of 4 galaxy classes as the
anomaly, 25%) and miniImageNet (one class as the anomaly, 1%).  Neither ships with
the package and nothing here downloads: the loaders read a copy the user already
has on disk and return a `~anomalymatch_astro.CutoutSet` built like the offline sets
of `load_benchmark_set` (shuffled, float32 pixels in [0, 1], a table with ``class``
and ``is_anomaly``).  Which images form the set is decided from the labels alone,
before any pixel is read, and only those images are read.
"""

import csv
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..utils import progress_bar
from ..utils.exceptions import InvalidInputError
from ._benchmarks import _class_counts, _split

__all__ = [
    "GALAXY_MNIST_CLASSES",
    "GALAXY_MNIST_FILES",
    "IMAGE_EXTENSIONS",
    "load_galaxy_mnist",
    "load_image_folder",
    "find_local_sets",
    "image_folder_classes",
]

log = logging.getLogger(__name__)

#: The GalaxyMNIST classes, in the order of their integer labels 0-3.
GALAXY_MNIST_CLASSES = ("smooth_round", "smooth_cigar", "edge_on_disk", "unbarred_spiral")

#: File name endings (case-insensitive) that `load_image_folder` reads as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

#: File names of the two splits of a GalaxyMNIST copy (as its authors publish them).
GALAXY_MNIST_FILES = {"train": "train_dataset.hdf5", "test": "test_dataset.hdf5"}
_GALAXY_MNIST_FILES = GALAXY_MNIST_FILES
_SPLIT_FOLDERS = ("train", "val", "validation", "test")
_SPLIT_CSVS = ("train.csv", "val.csv", "test.csv")
_PICKLE_SUFFIXES = (".pkl", ".pickle")
_MINI_IMAGENET_NAME = re.compile(r"mini[-_ ]?imagenet", re.IGNORECASE)
_HDF5_CHUNK = 256

_LAYOUTS = """Layouts accepted:
  GalaxyMNIST (github.com/mwalmsley/galaxy_mnist): a folder holding train_dataset.hdf5 and/or test_dataset.hdf5
    (also its raw/, GalaxyMNIST/raw/ or GalaxyMNISTHighrez/raw/ subfolder, where torchvision puts them), or one
    such .hdf5 file;
  miniImageNet or any ImageNet-style copy: <folder>/<class>/*.jpg|jpeg|png (torchvision ImageFolder),
    <folder>/{train,val,test}/<class>/*.jpg, or <folder>/images/*.jpg with train.csv, val.csv and/or test.csv
    (header 'filename,label', the Ravi & Larochelle splits)."""


# ----------------------------------------------------------------------------- shared checks
def _existing(path):
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        msg = f"{str(p)!r} does not exist; point path at your local copy.\n{_LAYOUTS}"
        raise InvalidInputError(msg)
    return p


def _refuse_pickle(p):
    if p.suffix.lower() in _PICKLE_SUFFIXES:
        msg = (
            f"{str(p)!r} is a pickle file, and anomalymatch_astro never opens pickles: loading one can run "
            "arbitrary code.  Convert it once, in an environment you trust, to image files (an ImageFolder tree "
            "<folder>/<class>/*.png) or to arrays in an .npz or HDF5 file (then build the set with "
            f"CutoutSet.from_arrays).\n{_LAYOUTS}"
        )
        raise InvalidInputError(msg)


def _pickles_in(folder):
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in _PICKLE_SUFFIXES)


def _check_positive_int(value, name, *, allow_none=False, minimum=1):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        msg = f"{name} must be an integer >= {minimum}{' or None' if allow_none else ''}, got {value!r}"
        raise InvalidInputError(msg)
    return int(value)


def _choose(pools, anomaly_class, normal_classes, n_per_class, anomaly_fraction, rng):
    """Draw the rows of the set from per-class pools: equal normal classes, anomalies to the fraction.

    Returns the chosen pool entries (shuffled) and the number of anomalies.
    """
    cap = np.inf if n_per_class is None else n_per_class
    n_per_normal = int(min(min(len(pools[c]) for c in normal_classes), cap))
    n_anom_max = int(min(len(pools[anomaly_class]), cap))
    n_normal, n_anom = _class_counts(n_per_normal, len(normal_classes), n_anom_max, anomaly_fraction)
    picks = [
        rng.choice(pools[c], int(k), replace=False)
        for c, k in zip(normal_classes, _split(n_normal, len(normal_classes)))
    ]
    picks.append(rng.choice(pools[anomaly_class], n_anom, replace=False))
    chosen = np.concatenate(picks)
    chosen = chosen[rng.permutation(len(chosen))]
    achieved = n_anom / len(chosen)
    if abs(achieved - anomaly_fraction) > 0.25 * anomaly_fraction:
        log.warning(
            "the set holds %d anomalies among %d images (%.3g), not the %.3g asked for: too few images "
            "for that fraction",
            n_anom,
            len(chosen),
            achieved,
            anomaly_fraction,
        )
    return chosen, n_anom


# ----------------------------------------------------------------------------- GalaxyMNIST
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
        have = {s: folder / name for s, name in _GALAXY_MNIST_FILES.items() if (folder / name).is_file()}
        if have:
            missing = [_GALAXY_MNIST_FILES[s] for s in wanted if s not in have]
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
    progress=False,
):
    """A local copy of GalaxyMNIST as a benchmark set, one class as the anomaly.

    GalaxyMNIST (Walmsley et al., github.com/mwalmsley/galaxy_mnist) holds 10,000
    DECaLS g, r, z colour images of galaxies confidently labelled by Galaxy Zoo
    volunteers as one of four classes (`GALAXY_MNIST_CLASSES`), split 80/20 into
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
        The anomalous class: a name in `GALAXY_MNIST_CLASSES` or its label 0-3.
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


# ----------------------------------------------------------------------------- image folders
def _is_image(name):
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _walk_images(folder):
    """Image files under ``folder`` (recursively, as torchvision's ImageFolder), sorted, hidden ones skipped."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in sorted(files) if _is_image(f)]
    return found


def _has_image(folder):
    for _root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(_is_image(f) for f in files):
            return True
    return False


def _has_direct_image(folder):
    with os.scandir(folder) as it:
        return any(e.is_file() and _is_image(e.name) for e in it)


def _subdirs(folder):
    with os.scandir(folder) as it:
        return sorted(Path(e.path) for e in it if e.is_dir() and not e.name.startswith("."))


def _csv_layout(p):
    """The split csv files when ``p`` is an images/ + csv copy, else None."""
    csvs = [p / name for name in _SPLIT_CSVS if (p / name).is_file()]
    return csvs if csvs and (p / "images").is_dir() else None


def _split_folders(p, subdirs):
    """True when every subfolder is a split (train/val/test) holding class folders rather than images."""
    return (
        bool(subdirs)
        and all(d.name.lower() in _SPLIT_FOLDERS for d in subdirs)
        and not any(_has_direct_image(d) for d in subdirs)
    )


def _looks_like_image_folder(p):
    """Cheap check: does ``p`` have one of the accepted image-folder layouts (with at least 2 classes)?"""
    if _csv_layout(p):
        return True
    subdirs = _subdirs(p)
    if _split_folders(p, subdirs):
        subdirs = [c for d in subdirs for c in _subdirs(d)]
    n = 0
    for d in subdirs:
        n += _has_image(d)
        if n >= 2:
            return True
    return False


def _read_split_csvs(p, csvs):
    records, seen = [], {}
    for c in csvs:
        with open(c, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or [x.strip().lower() for x in header[:2]] != ["filename", "label"]:
                msg = f"{str(c)!r}: expected the header 'filename,label' (miniImageNet split csv), got {header!r}"
                raise InvalidInputError(msg)
            for line, row in enumerate(reader, start=2):
                if not any(x.strip() for x in row):
                    continue
                if len(row) < 2 or not row[0].strip() or not row[1].strip():
                    msg = f"{str(c)!r} line {line}: expected 'filename,label', got {','.join(row)!r}"
                    raise InvalidInputError(msg)
                fname, label = row[0].strip(), row[1].strip()
                if fname in seen:
                    if seen[fname] != label:
                        msg = f"{fname!r} is labelled both {seen[fname]!r} and {label!r} in {[x.name for x in csvs]}"
                        raise InvalidInputError(msg)
                    continue
                seen[fname] = label
                records.append((f"images/{fname}", label, c.stem))
    return records


def image_folder_classes(path):
    """The class names of an image-folder copy (miniImageNet or any ImageNet-style folder), sorted.

    Parameters
    ----------
    path : str or os.PathLike
        The folder of the copy (any layout that `load_image_folder` reads).

    Returns
    -------
    tuple of str
    """
    records, _ = _scan_image_folder(Path(path))
    return tuple(sorted({r[1] for r in records}))


def _scan_image_folder(p):
    """All images of an image-folder copy: (records [(relative path, class, split or None)], layout)."""
    _refuse_pickle(p)
    if not p.is_dir():
        msg = f"{str(p)!r} is a file; load_image_folder needs the folder of a copy.\n{_LAYOUTS}"
        raise InvalidInputError(msg)
    if (p / "images").is_dir() and not _csv_layout(p) and any(f.suffix.lower() == ".csv" for f in p.iterdir()):
        log.warning("%s has images/ and csv files but none named %s; reading it as class folders", p, _SPLIT_CSVS)
    csvs = _csv_layout(p)
    if csvs:
        return _read_split_csvs(p, csvs), "split_csv"
    subdirs = _subdirs(p)
    if _split_folders(p, subdirs):
        records = [
            (f.relative_to(p).as_posix(), c.name, d.name) for d in subdirs for c in _subdirs(d) for f in _walk_images(c)
        ]
        layout = "split_folders"
    else:
        records = [(f.relative_to(p).as_posix(), d.name, None) for d in subdirs for f in _walk_images(d)]
        layout = "class_folders"
    if not records:
        pickles = _pickles_in(p)
        if pickles:
            _refuse_pickle(pickles[0])
        msg = f"found no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders of {str(p)!r}.\n{_LAYOUTS}"
        raise InvalidInputError(msg)
    return records, layout


def _object_ids(rel_paths):
    """Ids from relative paths: no extension, '/' -> ':'; the extension is kept where that is ambiguous."""
    ids = np.array([os.path.splitext(r)[0].replace("/", ":") for r in rel_paths], dtype=object)
    values, counts = np.unique(ids, return_counts=True)
    clash = np.isin(ids, values[counts > 1])
    if clash.any():
        ids[clash] = [rel_paths[i].replace("/", ":") for i in np.flatnonzero(clash)]
    return ids.astype(str)


def _decode(file, size):
    """One image file -> float32 (3, H, W) in [0, 1], resized to size x size (bicubic) unless size is None."""
    from PIL import Image

    try:
        with Image.open(file) as im:
            if size is not None:
                im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, still >= size
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), resample=Image.Resampling.BICUBIC)
            arr = np.asarray(im, dtype=np.float32)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        msg = (
            f"cannot decode the image {str(file)!r} ({err}); replace or delete that file, or leave its class "
            "out with classes=..."
        )
        raise InvalidInputError(msg) from err
    return arr.transpose(2, 0, 1) / np.float32(255.0)


def load_image_folder(
    path,
    *,
    anomaly_class,
    anomaly_fraction=0.01,
    classes=None,
    n_per_class=None,
    image_size=84,
    seed=0,
    n_workers=None,
    progress=False,
):
    """A local copy of miniImageNet, or any ImageNet-style image folder, as a benchmark set.

    One class is the anomaly; the other classes are normal and contribute the same
    number of images each (the smallest class, or ``n_per_class``, sets it), and
    anomalies are drawn so that they are ``anomaly_fraction`` of the set (the
    paper's miniImageNet protocol: 1%).  The images are chosen from the file names
    alone and only those are decoded (with PIL, in a thread pool), converted to RGB
    and resized to ``image_size`` x ``image_size`` (bicubic; the aspect ratio is not
    kept, as in the usual miniImageNet preprocessing).  Nothing is downloaded.

    Accepted layouts:

    * ``path/<class>/*.jpg`` (torchvision ``ImageFolder``; also ``.jpeg`` and ``.png``,
      any case, in subfolders too);
    * ``path/{train,val,test}/<class>/*.jpg`` (the splits are merged; a ``split``
      column says where each image came from);
    * ``path/images/*.jpg`` with one or more of ``train.csv``, ``val.csv``,
      ``test.csv`` (header ``filename,label``), the Ravi & Larochelle miniImageNet
      splits.

    Parameters
    ----------
    path : str or os.PathLike
        The folder of the copy.
    anomaly_class : str
        The anomalous class: a folder name or csv label (e.g. ``"n01532829"``).
    anomaly_fraction : float, optional
        Fraction of anomalies in the set, in (0, 1).
    classes : sequence of str, optional
        The classes that form the set, ``anomaly_class`` among them (default: every
        class found).
    n_per_class : int, optional
        At most this many images of each class.
    image_size : int or None, optional
        Side of the square output images (pixels); None keeps the files' size, which
        must then be the same for every image.
    seed : int, optional
        Random seed (which images are drawn, and their order).
    n_workers : int, optional
        Decoding threads (default: up to 8, at most the number of CPUs).
    progress : bool, optional
        Show a progress bar while decoding.

    Returns
    -------
    `~anomalymatch_astro.CutoutSet`
        Shuffled; float32 pixels in [0, 1], channels first, bands ``("R", "G", "B")``;
        ids are the files' paths relative to ``path`` without extension and with
        ``/`` replaced by ``:`` (e.g. ``n01532829:n0153282900000005``; the same
        whatever the seed); table columns ``id``, ``class``, ``is_anomaly``, ``file``
        (relative path) and, for the split layouts, ``split``;
        ``meta["benchmark"] == "image_folder"``.

    Raises
    ------
    anomalymatch_astro.utils.exceptions.InvalidInputError
        If ``path`` does not exist or holds no images in an accepted layout, a class is
        unknown, fewer than two classes are left, a csv names missing files, an image
        cannot be decoded, or ``path`` is (or holds only) pickles.

    See Also
    --------
    find_local_sets, load_benchmark_set

    Examples
    --------
    >>> from anomalymatch_astro.datasets import load_image_folder
    >>> cs = load_image_folder("~/data/mini-imagenet", anomaly_class="n01532829",
    ...                        classes=["n01532829", "n01558993", "n01704323", "n01749939", "n01770081"],
    ...                        image_size=84)  # doctest: +SKIP
    >>> cs.shape, int(cs.table["is_anomaly"].sum())  # doctest: +SKIP
    ((2424, 3, 84, 84), 24)
    """
    from ..cutouts import CutoutSet

    n_per_class = _check_positive_int(n_per_class, "n_per_class", allow_none=True)
    image_size = _check_positive_int(image_size, "image_size", allow_none=True, minimum=8)
    n_workers = _check_positive_int(n_workers, "n_workers", allow_none=True)
    if not isinstance(anomaly_class, str):
        msg = f"anomaly_class must be a class name (str), got {anomaly_class!r}"
        raise InvalidInputError(msg)
    p = _existing(path)
    records, layout = _scan_image_folder(p)
    rel = [r[0] for r in records]
    cls = np.array([r[1] for r in records])
    found = sorted(set(cls.tolist()))

    def listing(names):
        return f"{names[:20]}{f' and {len(names) - 20} more' if len(names) > 20 else ''}"

    if classes is None:
        use = found
    else:
        use = [classes] if isinstance(classes, str) else [str(c) for c in classes]
        unknown = [c for c in use if c not in found]
        if unknown:
            msg = f"{str(p)!r} has no images of the class(es) {unknown}; the classes found are {listing(found)}"
            raise InvalidInputError(msg)
        if len(set(use)) != len(use):
            msg = f"classes lists a class more than once: {use}"
            raise InvalidInputError(msg)
    if anomaly_class not in use:
        where = "classes" if classes is not None else f"the classes found in {str(p)!r}"
        msg = f"anomaly_class {anomaly_class!r} is not one of {where}: {listing(sorted(use))}"
        raise InvalidInputError(msg)
    normal = [c for c in use if c != anomaly_class]
    if not normal:
        msg = (
            f"the set needs normal images from at least one class besides {anomaly_class!r}, but "
            f"{'classes names' if classes is not None else str(p) + ' holds'} no other class"
        )
        raise InvalidInputError(msg)
    in_use = np.isin(cls, use)
    if layout == "split_csv":
        missing = [rel[i] for i in np.flatnonzero(in_use) if not (p / rel[i]).is_file()]
        if missing:
            msg = (
                f"{len(missing)} image file(s) named in the csv files of {str(p)!r} are missing, e.g. "
                f"{missing[:5]}; restore them, or leave their classes out with classes=..."
            )
            raise InvalidInputError(msg)
    ids_all = _object_ids(rel)
    pools = {c: np.flatnonzero(cls == c) for c in use}
    rng = np.random.default_rng(seed)
    chosen, n_anom = _choose(pools, anomaly_class, normal, n_per_class, anomaly_fraction, rng)

    files = [p / rel[i] for i in chosen]
    size = image_size
    if size is None:
        from PIL import Image

        try:
            with Image.open(files[0]) as im:
                width, height = im.size
        except (OSError, ValueError) as err:
            msg = f"cannot decode the image {str(files[0])!r} ({err}); replace or delete that file"
            raise InvalidInputError(msg) from err
    else:
        width = height = size
    out = np.empty((len(chosen), 3, height, width), dtype=np.float32)

    def work(k):
        arr = _decode(files[k], size)
        if arr.shape[1:] != (height, width):
            msg = (
                f"{str(files[k])!r} is {arr.shape[2]}x{arr.shape[1]} pixels, unlike {str(files[0])!r} "
                f"({width}x{height}); pass image_size to resize every image to one size"
            )
            raise InvalidInputError(msg)
        out[k] = arr

    order = np.argsort([str(f) for f in files], kind="stable")  # read in path order
    workers = n_workers or max(1, min(8, os.cpu_count() or 1))
    executor = ThreadPoolExecutor(max_workers=workers)
    try:
        for _ in progress_bar(
            executor.map(work, order), total=len(order), desc="images", progress=progress, unit="img"
        ):
            pass
    finally:
        executor.shutdown(wait=True, cancel_futures=True)

    columns = {
        "class": cls[chosen],
        "is_anomaly": cls[chosen] == anomaly_class,
        "file": np.array([rel[i] for i in chosen]),
    }
    if layout != "class_folders":
        columns["split"] = np.array([records[i][2] for i in chosen])
    meta = dict(
        benchmark="image_folder",
        anomaly_class=anomaly_class,
        anomaly_fraction=float(n_anom / len(chosen)),
        seed=int(seed),
        image_size=int(width),
        classes=list(use),
        layout=layout,
        source=str(p),
    )
    return CutoutSet.from_arrays(out, ids=ids_all[chosen], bands=("R", "G", "B"), table=Table(columns), meta=meta)


# ----------------------------------------------------------------------------- discovery
def _dirs_below(p, depth):
    """``p`` and its non-hidden subfolders up to ``depth`` levels below, shallowest first, then by name."""
    level, out = [p], [(0, p)]
    for d in range(1, depth + 1):
        level = [s for f in level for s in _subdirs(f)]
        out += [(d, s) for s in level]
    return out


def _find_galaxy_mnist(p):
    for _, d in _dirs_below(p, 2):
        if any((d / name).is_file() for name in _GALAXY_MNIST_FILES.values()):
            return d
    return None


def _find_image_folder(p):
    """A miniImageNet-named folder with an image-folder layout, else ``p`` itself if it has one, else None."""
    for depth, d in _dirs_below(p, 2):
        if not _MINI_IMAGENET_NAME.search(d.name):
            continue
        if _looks_like_image_folder(d):
            return d
        if depth <= 1:
            for s in _subdirs(d):
                if _looks_like_image_folder(s):
                    return s
        if _pickles_in(d):
            log.warning(
                "%s holds only pickle files, which anomalymatch_astro never opens (they can run code); "
                "convert them to image files",
                d,
            )
    return p if _looks_like_image_folder(p) else None


def find_local_sets(path):
    """Find local copies of GalaxyMNIST and miniImageNet under a folder.

    GalaxyMNIST is a folder holding ``train_dataset.hdf5`` or ``test_dataset.hdf5``,
    anywhere up to two levels below ``path`` (so ``path/GalaxyMNIST/raw/``, where
    torchvision stores it, is found).  miniImageNet is a folder named like
    ``miniImageNet``, ``mini-imagenet`` or ``mini_imagenet`` (any case), ``path``
    itself or up to two levels below, with an image-folder layout (see
    `load_image_folder`) in it or one level further down; failing that, ``path``
    itself when it has such a layout (at least two classes).

    Parameters
    ----------
    path : str or os.PathLike
        The folder to look in (a GalaxyMNIST ``.hdf5`` file is accepted too).

    Returns
    -------
    dict
        ``{"galaxy_mnist": Path, "miniimagenet": Path}``, only the sets found (empty,
        with a logged warning, when none is).  Pass the paths to `load_galaxy_mnist`
        (or ``load_benchmark_set("galaxy_mnist", path=...)``) and to
        `load_image_folder` (or ``load_benchmark_set("image_folder", path=...)``).

    Raises
    ------
    anomalymatch_astro.utils.exceptions.InvalidInputError
        If ``path`` does not exist.

    Examples
    --------
    >>> import tempfile
    >>> from anomalymatch_astro.datasets import find_local_sets
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     find_local_sets(tmp)
    {}
    """
    p = _existing(path)
    found = {}
    if p.is_file():
        if p.suffix.lower() in (".hdf5", ".h5"):
            found["galaxy_mnist"] = p
    else:
        galaxy = _find_galaxy_mnist(p)
        if galaxy is not None:
            found["galaxy_mnist"] = galaxy
        images = _find_image_folder(p)
        if images is not None:
            found["miniimagenet"] = images
    if not found:
        log.warning("found no local copy of GalaxyMNIST or miniImageNet under %s.\n%s", p, _LAYOUTS)
    return found
