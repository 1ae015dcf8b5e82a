"""Synthetic and offline data sets with known anomalies, and local copies of the paper's sets.

`make_mock_survey` writes a multi-band FITS survey (bands on different pixel
grids, real TAN WCS) with injected lenses, mergers, artefacts and odd colours,
and its truth catalogue; `make_lens_survey` is the hard variant (faint thin arcs
at 1%).  `make_morphology_set`, `make_digits_set` and `load_benchmark_set` give
in-memory benchmark sets; `make_real_sky_set` builds one on real sky (the Hubble XDF
shipped with scikit-image, with anomalies injected around its galaxies); `start_labels`
draws the protocol's start labels.
`load_galaxy_mnist` and `load_image_folder` read the paper's GalaxyMNIST and
miniImageNet (or any ImageNet-style folder) from copies the user has on disk
(nothing is downloaded), and `find_local_sets` finds such copies under a folder.
"""

from ._benchmarks import (
    BENCHMARK_SETS,
    MORPHOLOGY_CLASSES,
    load_benchmark_set,
    make_digits_set,
    make_morphology_set,
    start_labels,
)
from ._galaxy_mnist import GALAXY_MNIST_CLASSES, GALAXY_MNIST_FILES, load_galaxy_mnist
from ._image_folder import IMAGE_EXTENSIONS, image_folder_classes, load_image_folder
from ._local import find_local_sets
from ._mock_survey import ANOMALY_KINDS, MockSurvey, make_lens_survey, make_mock_survey
from ._real_sky import REAL_SKY_ANOMALIES, XDF_PIXEL_SCALE, make_real_sky_set, xdf_field

__all__ = [
    "ANOMALY_KINDS",
    "BENCHMARK_SETS",
    "GALAXY_MNIST_CLASSES",
    "GALAXY_MNIST_FILES",
    "IMAGE_EXTENSIONS",
    "MORPHOLOGY_CLASSES",
    "MockSurvey",
    "REAL_SKY_ANOMALIES",
    "XDF_PIXEL_SCALE",
    "find_local_sets",
    "image_folder_classes",
    "load_benchmark_set",
    "load_galaxy_mnist",
    "load_image_folder",
    "make_digits_set",
    "make_lens_survey",
    "make_mock_survey",
    "make_morphology_set",
    "make_real_sky_set",
    "start_labels",
    "xdf_field",
]
