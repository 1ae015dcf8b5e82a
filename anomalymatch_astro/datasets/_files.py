"""Checks shared by the readers of local copies: the path exists, no pickles, the layouts accepted."""

import os
from pathlib import Path

from ..utils.exceptions import InvalidInputError

__all__ = []

_PICKLE_SUFFIXES = (".pkl", ".pickle")

_LAYOUTS = """Layouts accepted:
  GalaxyMNIST (github.com/mwalmsley/galaxy_mnist): a folder holding train_dataset.hdf5 and/or test_dataset.hdf5
    (also its raw/, GalaxyMNIST/raw/ or GalaxyMNISTHighrez/raw/ subfolder, where torchvision puts them), or one
    such .hdf5 file;
  miniImageNet or any ImageNet-style copy: <folder>/<class>/*.jpg|jpeg|png (torchvision ImageFolder),
    <folder>/{train,val,test}/<class>/*.jpg, or <folder>/images/*.jpg with train.csv, val.csv and/or test.csv
    (header 'filename,label', the Ravi & Larochelle splits)."""


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


def _subdirs(folder):
    with os.scandir(folder) as it:
        return sorted(Path(e.path) for e in it if e.is_dir() and not e.name.startswith("."))
