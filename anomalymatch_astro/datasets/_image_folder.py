"""A local copy of miniImageNet, or any ImageNet-style image folder, as a benchmark set.

Nothing is downloaded: the loader reads a copy the user already has on disk.  Which
images form the set is decided from the file names alone, and only those are decoded.
"""

import csv
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..utils import progress_bar
from ..utils.exceptions import InvalidInputError
from ._files import _LAYOUTS, _existing, _pickles_in, _refuse_pickle, _subdirs
from ._sampling import _check_positive_int, _choose

__all__ = ["IMAGE_EXTENSIONS", "image_folder_classes", "load_image_folder"]

log = logging.getLogger(__name__)

#: File name endings (case-insensitive) that `load_image_folder` reads as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_SPLIT_FOLDERS = ("train", "val", "validation", "test")
_SPLIT_CSVS = ("train.csv", "val.csv", "test.csv")


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
    """Whether ``p`` has one of the accepted image-folder layouts with at least 2 classes (a cheap check)."""
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
    progress=True,
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
