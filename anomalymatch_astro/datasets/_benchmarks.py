"""Offline benchmark sets with known anomalies, and the start labels of the protocol.

Every set is a `~anomalymatch_astro.CutoutSet` whose table carries the truth:
``is_anomaly`` (bool) and ``class`` (str).  They are built in memory from code or
from data installed with scikit-learn, so they need no download.
"""

import logging
import tempfile

import numpy as np
from astropy.table import Table
from scipy.ndimage import zoom
from scipy.signal import fftconvolve

from ..utils.exceptions import InvalidInputError
from . import _render as R
from ._sampling import _class_counts, _split

__all__ = [
    "MORPHOLOGY_CLASSES",
    "BENCHMARK_SETS",
    "make_morphology_set",
    "make_digits_set",
    "load_benchmark_set",
    "start_labels",
]

log = logging.getLogger(__name__)

#: The four classes of `make_morphology_set` (as in GalaxyMNIST).
MORPHOLOGY_CLASSES = ("smooth_round", "smooth_cigar", "edge_on_disk", "spiral")

#: The names `load_benchmark_set` knows.
BENCHMARK_SETS = ("digits", "morphology", "mock_survey", "lens", "real_sky")


# ----------------------------------------------------------------------------- morphology
def _draw_galaxy(cls, rng, yy, xx, n_bands):
    """One noiseless galaxy of class ``cls`` on a pixel grid (per band, before the PSF)."""
    size = yy.shape[0]
    cx, cy = rng.uniform(-1.5, 1.5, 2)
    x, y = xx - cx, yy - cy
    pa = rng.uniform(0, np.pi)
    scale = size / 64.0
    t = np.arange(n_bands) - (n_bands - 1) / 2.0
    comps = []  # (image, colour per band step)
    if cls == "smooth_round":
        img = R.sersic(
            x, y, n=rng.uniform(2.5, 4.5), r_eff=rng.uniform(4.0, 10.0) * scale, q=rng.uniform(0.75, 1.0), pa=pa
        )
        comps.append((img, rng.normal(0.55, 0.06)))
    elif cls == "smooth_cigar":
        img = R.sersic(
            x, y, n=rng.uniform(1.5, 4.0), r_eff=rng.uniform(6.0, 13.0) * scale, q=rng.uniform(0.28, 0.55), pa=pa
        )
        comps.append((img, rng.normal(0.5, 0.06)))
    elif cls == "edge_on_disk":
        r_d = rng.uniform(9.0, 16.0) * scale
        q = rng.uniform(0.07, 0.18)
        disk = R.sersic(x, y, n=1.0, r_eff=r_d, q=q, pa=pa)
        if rng.random() < 0.5:  # a dust lane along the mid-plane
            _, minor = R._rotate(x, y, pa)
            disk = disk * (1.0 - 0.6 * np.exp(-0.5 * (minor / (0.35 * q * r_d + 0.3)) ** 2))
        comps.append((disk / disk.sum(), rng.normal(0.3, 0.06)))
        bulge = R.sersic(x, y, n=rng.uniform(2.0, 4.0), r_eff=0.2 * r_d, q=0.6, pa=pa)
        comps.append((rng.uniform(0.05, 0.3) * bulge, rng.normal(0.55, 0.05)))
    elif cls == "spiral":
        r_d = rng.uniform(8.0, 15.0) * scale
        q = rng.uniform(0.55, 1.0)
        disk = R.spiral_disk(
            x,
            y,
            r_eff=r_d,
            q=q,
            pa=pa,
            n_arms=int(rng.choice([2, 2, 3])),
            pitch=rng.uniform(0.25, 0.5),
            amplitude=rng.uniform(0.7, 0.95),
            phase=rng.uniform(0, 2 * np.pi),
        )
        comps.append((disk / disk.sum(), rng.normal(0.2, 0.08)))
        bulge = R.sersic(x, y, n=4.0, r_eff=0.15 * r_d, q=min(1.0, q + 0.2), pa=pa)
        comps.append((rng.uniform(0.1, 0.3) * bulge, rng.normal(0.55, 0.05)))
    else:  # pragma: no cover - guarded by the caller
        msg = f"unknown morphology class {cls!r}"
        raise InvalidInputError(msg)
    out = np.zeros((n_bands,) + yy.shape)
    for img, colour in comps:
        out += img[None] * (10.0 ** (0.4 * colour * t))[:, None, None]
    return out / out.sum() * n_bands


def make_morphology_set(
    *,
    n_per_class=250,
    image_size=64,
    anomaly_class="spiral",
    anomaly_fraction=0.25,
    bands=("g", "r", "i"),
    noise=1.0,
    seed=0,
):
    """A GalaxyMNIST-like set of simulated galaxy morphologies, one class as the anomaly.

    Four classes, as in GalaxyMNIST: ``smooth_round`` (de Vaucouleurs-like
    ellipticals), ``smooth_cigar`` (elongated smooth galaxies), ``edge_on_disk``
    (thin disks, half with a dust lane, a small bulge) and ``spiral`` (bulge plus a
    disk with 2-3 logarithmic arms).  Each galaxy has a random size, brightness
    (a factor 10 range), orientation, axis ratio, sub-pixel centre and colour,
    is blurred by a Gaussian PSF of random width (FWHM 1.5-3.5 px at 64 px) and
    gets Gaussian noise.  ``anomaly_class`` is the anomaly: the set holds normals
    from the other three classes in equal numbers and anomalies such that they are
    ``anomaly_fraction`` of the set, with as many objects as ``n_per_class`` allows
    (at the default 25%, exactly ``n_per_class`` of each class).

    Parameters
    ----------
    n_per_class : int, optional
        Maximum number of images per class.
    image_size : int, optional
        Side of the square images (pixels); the galaxies scale with it.
    anomaly_class : str, optional
        One of ``MORPHOLOGY_CLASSES``.
    anomaly_fraction : float, optional
        Fraction of anomalies in the set.
    bands : sequence of str, optional
        Band names (1 or more); galaxies have realistic colours across them.
    noise : float, optional
        Sky noise per pixel (the galaxies have total fluxes of about 3000-30000 per band at 64 px).
    seed : int, optional
        Random seed.

    Returns
    -------
    `~anomalymatch_astro.CutoutSet`
        Shuffled; table columns ``id``, ``class``, ``is_anomaly``, ``flux``.

    Examples
    --------
    >>> from anomalymatch_astro.datasets import make_morphology_set
    >>> cs = make_morphology_set(n_per_class=8, image_size=32, seed=0)
    >>> cs.shape, int(cs.table["is_anomaly"].sum())
    ((32, 3, 32, 32), 8)
    """
    from ..cutouts import CutoutSet

    if anomaly_class not in MORPHOLOGY_CLASSES:
        msg = f"anomaly_class must be one of {MORPHOLOGY_CLASSES}, got {anomaly_class!r}"
        raise InvalidInputError(msg)
    if int(image_size) != image_size or image_size < 16:
        msg = f"image_size must be an integer >= 16, got {image_size!r}"
        raise InvalidInputError(msg)
    if int(n_per_class) != n_per_class or n_per_class < 1:
        msg = f"n_per_class must be a positive integer, got {n_per_class!r}"
        raise InvalidInputError(msg)
    bands = (bands,) if isinstance(bands, str) else tuple(bands)
    normal_classes = [c for c in MORPHOLOGY_CLASSES if c != anomaly_class]
    n_normal, n_anom = _class_counts(n_per_class, len(normal_classes), n_per_class, anomaly_fraction)
    classes = []
    for cls, n in zip(normal_classes, _split(n_normal, len(normal_classes))):
        classes += [cls] * int(n)
    classes += [anomaly_class] * n_anom
    rng = np.random.default_rng(seed)
    classes = np.array(classes)[rng.permutation(len(classes))]
    size = int(image_size)
    n_bands = len(bands)
    half = (size - 1) / 2.0
    sub = R.subpixel_offsets(2)
    fine = (np.arange(size)[:, None] + sub[None, :]).ravel() - half
    yy, xx = np.meshgrid(fine, fine, indexing="ij")
    images = np.empty((len(classes), n_bands, size, size))
    fluxes = 10.0 ** rng.uniform(np.log10(3000.0), np.log10(30000.0), len(classes)) * (size / 64.0) ** 2
    for i, cls in enumerate(classes):
        img = _draw_galaxy(cls, rng, yy, xx, n_bands)
        images[i] = img.reshape(n_bands, size, 2, size, 2).mean(axis=(2, 4)) * 4 * fluxes[i] / n_bands
    # per-image Gaussian PSF, convolved all at once
    fwhm = rng.uniform(1.5, 3.5, len(classes)) * size / 64.0
    k = int(np.ceil(2 * fwhm.max())) + 1
    grid = np.arange(-k, k + 1)
    ky, kx = np.meshgrid(grid, grid, indexing="ij")
    kernels = np.stack([R.gaussian(kx, ky, fwhm=f) for f in fwhm])
    kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    images = fftconvolve(images, kernels[:, None], mode="same", axes=(-2, -1))
    images += noise * rng.standard_normal(images.shape)
    table = Table({"class": classes, "is_anomaly": classes == anomaly_class, "flux": fluxes})
    meta = dict(
        benchmark="morphology",
        anomaly_class=anomaly_class,
        anomaly_fraction=float(n_anom / len(classes)),
        seed=int(seed),
        image_size=size,
    )
    ids = [f"morph{i:05d}" for i in range(len(classes))]
    return CutoutSet.from_arrays(images.astype(np.float32), ids=ids, bands=bands, table=table, meta=meta)


# ----------------------------------------------------------------------------- digits
def make_digits_set(*, anomaly_digit=0, anomaly_fraction=0.02, image_size=32, seed=0):
    """Scikit-learn's 1797 real 8x8 handwritten digits, one digit as the anomaly.

    All images of the other nine digits are the normals; images of
    ``anomaly_digit`` are drawn at random so that they make up ``anomaly_fraction``
    of the set.  Images are scaled to [0, 1] and upsampled (bilinear) to
    ``image_size``; one band named ``"gray"``.

    Parameters
    ----------
    anomaly_digit : int, optional
        The digit (0-9) that is anomalous.
    anomaly_fraction : float, optional
        Fraction of anomalies in the set.
    image_size : int, optional
        Side of the upsampled images.
    seed : int, optional
        Random seed (which anomalies are kept, and the order).

    Returns
    -------
    `~anomalymatch_astro.CutoutSet`
        Shuffled; table columns ``id``, ``class`` (the digit, as str), ``is_anomaly``.

    Examples
    --------
    >>> from anomalymatch_astro.datasets import make_digits_set
    >>> cs = make_digits_set(anomaly_digit=3, image_size=16)
    >>> cs.shape[1:], round(float(cs.table["is_anomaly"].mean()), 3)
    ((1, 16, 16), 0.02)
    """
    from sklearn.datasets import load_digits

    from ..cutouts import CutoutSet

    if anomaly_digit not in range(10):
        msg = f"anomaly_digit must be an integer 0-9, got {anomaly_digit!r}"
        raise InvalidInputError(msg)
    if int(image_size) != image_size or image_size < 8:
        msg = f"image_size must be an integer >= 8, got {image_size!r}"
        raise InvalidInputError(msg)
    digits = load_digits()
    target = digits.target
    normal = np.flatnonzero(target != anomaly_digit)
    candidates = np.flatnonzero(target == anomaly_digit)
    n_normal, n_anom = _class_counts(len(normal), 1, len(candidates), anomaly_fraction)
    rng = np.random.default_rng(seed)
    keep = np.concatenate(
        [
            rng.choice(normal, n_normal, replace=False) if n_normal < len(normal) else normal,
            rng.choice(candidates, n_anom, replace=False),
        ]
    )
    keep = keep[rng.permutation(len(keep))]
    images = digits.images[keep] / 16.0
    if image_size != 8:
        images = zoom(images, (1, image_size / 8, image_size / 8), order=1, mode="nearest", grid_mode=True)
    images = np.clip(images, 0.0, 1.0).astype(np.float32)
    table = Table({"class": target[keep].astype(str), "is_anomaly": target[keep] == anomaly_digit})
    meta = dict(
        benchmark="digits",
        anomaly_class=str(anomaly_digit),
        anomaly_fraction=float(n_anom / len(keep)),
        seed=int(seed),
        image_size=int(image_size),
    )
    ids = [f"digit{int(i):04d}" for i in keep]
    return CutoutSet.from_arrays(images, ids=ids, bands=("gray",), table=table, meta=meta)


# ----------------------------------------------------------------------------- surveys as cutout sets
def _survey_cutouts(kind, *, seed, directory=None, cutout_size=64, progress=True, **kwargs):
    from ..cutouts import CutoutSet, make_cutouts
    from ._mock_survey import make_lens_survey, make_mock_survey

    maker = make_lens_survey if kind == "lens" else make_mock_survey
    with tempfile.TemporaryDirectory(prefix="anomalymatch_astro_") as tmp:
        survey = maker(directory if directory is not None else tmp, seed=seed, progress=progress, **kwargs)
        cs = make_cutouts(
            survey.images, survey.catalog, int(cutout_size), reference_band=survey.reference_band, progress=progress
        )
        data = np.asarray(cs.data)
    table = Table(cs.table)
    table["class"] = table["kind"]
    meta = dict(cs.meta)
    meta.update(
        benchmark=kind, seed=int(seed), anomaly_fraction=float(np.mean(table["is_anomaly"])), survey=dict(survey.meta)
    )
    if directory is not None:
        meta["survey_directory"] = str(survey.directory)
    keep = [c for c in table.colnames if c not in ("id", "ra", "dec")]
    return CutoutSet.from_arrays(data, ids=table["id"], bands=cs.bands, coords=cs.coords, table=table[keep], meta=meta)


def load_benchmark_set(name, *, seed=0, **kwargs):
    """Build one of the offline benchmark sets as a `~anomalymatch_astro.CutoutSet`.

    Parameters
    ----------
    name : {"digits", "morphology", "mock_survey", "lens", "real_sky", "galaxy_mnist", "image_folder"}
        ``"digits"``: `make_digits_set`; ``"morphology"``: `make_morphology_set`;
        ``"mock_survey"``: a `make_mock_survey` survey (all four anomaly kinds, 3%)
        cut into 64-pixel g, r, i cutouts on the reference grid (the other bands
        reprojected); ``"lens"``: the same from `make_lens_survey` (faint thin arcs
        at 1%, the hard set); ``"real_sky"``: `make_real_sky_set` (the Hubble XDF of
        scikit-image with anomalies injected around its real galaxies; ``anomaly=``
        ``"arcs"``, ``"mergers"``, ``"trails"`` or ``"colour"``).  The paper's sets from a copy on disk, which need
        ``path=`` (nothing is downloaded; `find_local_sets` finds copies):
        ``"galaxy_mnist"``: `load_galaxy_mnist`; ``"image_folder"``:
        `load_image_folder` (miniImageNet or any ImageNet-style folder; also needs
        ``anomaly_class=``).
    seed : int, optional
        Random seed.
    **kwargs
        Passed to the builder.  For the surveys also ``directory`` (keep the FITS
        files there instead of a temporary directory), ``cutout_size`` (pixels,
        default 64) and ``progress``.  For ``"galaxy_mnist"`` and ``"image_folder"``,
        ``path`` (the local copy) is required.

    Returns
    -------
    `~anomalymatch_astro.CutoutSet`
        With table columns ``is_anomaly`` (bool) and ``class`` (str), and
        ``meta["benchmark"]`` the set's name.

    Examples
    --------
    >>> from anomalymatch_astro.datasets import load_benchmark_set
    >>> cs = load_benchmark_set("digits", anomaly_digit=1, image_size=8)
    >>> cs.meta["benchmark"], cs.bands
    ('digits', ('gray',))
    """
    if name == "digits":
        return make_digits_set(seed=seed, **kwargs)
    if name == "morphology":
        return make_morphology_set(seed=seed, **kwargs)
    if name in ("mock_survey", "lens"):
        return _survey_cutouts(name, seed=seed, **kwargs)
    if name == "real_sky":
        from ._real_sky import make_real_sky_set

        return make_real_sky_set(seed=seed, **kwargs)
    if name in ("galaxy_mnist", "image_folder"):
        from ._galaxy_mnist import load_galaxy_mnist
        from ._image_folder import load_image_folder

        if kwargs.get("path") is None:
            msg = (
                f"the benchmark set {name!r} is read from your local copy: pass path=<folder or file> "
                "(nothing is downloaded; find_local_sets(folder) finds copies)"
            )
            raise InvalidInputError(msg)
        loader = load_galaxy_mnist if name == "galaxy_mnist" else load_image_folder
        return loader(kwargs.pop("path"), seed=seed, **kwargs)
    msg = (
        f"unknown benchmark set {name!r}; choose one of {BENCHMARK_SETS}, or 'galaxy_mnist' / 'image_folder' "
        "with path=<your local copy>"
    )
    raise InvalidInputError(msg)


# ----------------------------------------------------------------------------- protocol
def _truth_and_ids(is_anomaly, ids):
    from ..cutouts import CutoutSet

    if isinstance(is_anomaly, CutoutSet):
        table = is_anomaly.table
        if "is_anomaly" not in table.colnames:
            msg = "the CutoutSet's table has no 'is_anomaly' column; pass a boolean array and ids instead"
            raise InvalidInputError(msg)
        return np.asarray(table["is_anomaly"]), is_anomaly.ids
    if isinstance(is_anomaly, Table):
        if "is_anomaly" not in is_anomaly.colnames or "id" not in is_anomaly.colnames:
            msg = "a table given as truth needs the columns 'id' and 'is_anomaly'"
            raise InvalidInputError(msg)
        return np.asarray(is_anomaly["is_anomaly"]), np.asarray(is_anomaly["id"]).astype(str)
    if isinstance(is_anomaly, dict):
        return np.array(list(is_anomaly.values())), np.array([str(k) for k in is_anomaly])
    if ids is None:
        msg = (
            "start_labels needs the object ids: pass ids=cutouts.ids with a boolean array, "
            "or pass the CutoutSet (with an 'is_anomaly' column) itself"
        )
        raise InvalidInputError(msg)
    truth = np.asarray(is_anomaly)
    ids = np.asarray([str(i) for i in ids])
    if truth.shape != ids.shape:
        msg = f"{len(truth)} truth values for {len(ids)} ids"
        raise InvalidInputError(msg)
    return truth, ids


def start_labels(is_anomaly, *, n_anomalies=10, n_normals=30, seed=0, ids=None):
    """The protocol's start labels: a few true anomalies and normals drawn at random.

    Parameters
    ----------
    is_anomaly : `~anomalymatch_astro.CutoutSet`, `~astropy.table.Table`, dict or array-like of bool
        The truth: a CutoutSet or Table with an ``is_anomaly`` column (and ``id``),
        a mapping ``{id: bool}``, or a boolean array together with ``ids``.
    n_anomalies, n_normals : int, optional
        How many of each to label (the paper's GalaxyMNIST protocol: 10 and 30).
    seed : int, optional
        Random seed.
    ids : sequence of str, optional
        Object ids, when ``is_anomaly`` is a plain array.

    Returns
    -------
    dict
        ``{id: "anomaly" | "normal"}``, anomalies first.

    Examples
    --------
    >>> from anomalymatch_astro.datasets import start_labels
    >>> labels = start_labels([True, False, False, True, False], ids=list("abcde"),
    ...                       n_anomalies=1, n_normals=2, seed=0)
    >>> sorted(labels.values())
    ['anomaly', 'normal', 'normal']
    """
    truth, ids = _truth_and_ids(is_anomaly, ids)
    if truth.dtype != bool:
        if not np.all(np.isin(truth, [0, 1])):
            msg = "is_anomaly must be boolean (or 0/1)"
            raise InvalidInputError(msg)
        truth = truth.astype(bool)
    anomalies = np.flatnonzero(truth)
    normals = np.flatnonzero(~truth)
    for n, pool, word in ((n_anomalies, anomalies, "anomalies"), (n_normals, normals, "normals")):
        if int(n) != n or n < 0:
            msg = f"n_{word} must be a non-negative integer, got {n!r}"
            raise InvalidInputError(msg)
        if n > len(pool):
            msg = f"asked for {n} start {word} but the set has only {len(pool)}; ask for fewer"
            raise InvalidInputError(msg)
    rng = np.random.default_rng(seed)
    pick_a = rng.choice(anomalies, int(n_anomalies), replace=False)
    pick_n = rng.choice(normals, int(n_normals), replace=False)
    labels = {str(ids[i]): "anomaly" for i in pick_a}
    labels.update({str(ids[i]): "normal" for i in pick_n})
    return labels
