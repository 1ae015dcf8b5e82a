"""Finding local copies of GalaxyMNIST and miniImageNet (or any ImageNet-style folder) under a folder.

The AnomalyMatch paper benchmarks on GalaxyMNIST (one of 4 galaxy classes as the
anomaly, 25%) and miniImageNet (one class as the anomaly, 1%).  Neither ships with
the package and nothing here downloads: `find_local_sets` finds copies the user
already has on disk, which `load_galaxy_mnist` (``_galaxy_mnist``) and
`load_image_folder` (``_image_folder``) read.
"""

import logging
import re

from ._files import _LAYOUTS, _existing, _pickles_in, _subdirs
from ._galaxy_mnist import GALAXY_MNIST_FILES
from ._image_folder import _looks_like_image_folder

__all__ = ["find_local_sets"]

log = logging.getLogger(__name__)

_MINI_IMAGENET_NAME = re.compile(r"mini[-_ ]?imagenet", re.IGNORECASE)


def _dirs_below(p, depth):
    """``p`` and its non-hidden subfolders up to ``depth`` levels below, shallowest first, then by name."""
    level, out = [p], [(0, p)]
    for d in range(1, depth + 1):
        level = [s for f in level for s in _subdirs(f)]
        out += [(d, s) for s in level]
    return out


def _find_galaxy_mnist(p):
    for _, d in _dirs_below(p, 2):
        if any((d / name).is_file() for name in GALAXY_MNIST_FILES.values()):
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
