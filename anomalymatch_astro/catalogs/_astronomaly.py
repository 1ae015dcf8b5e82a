"""The Astronomaly bundle: export candidates for Astronomaly's labelling UI and import its labels.

Astronomaly (Lochner & Bassett 2021) has no import format; its front-end runs a Python
script whose ``run_pipeline()`` returns the dataset, features, scores, a 2-D map and an
active-learning object.  `export_astronomaly` writes a folder in Astronomaly's own
conventions plus such a loader script::

    bundle/
      images/<id>.png          Lupton colour composite of each cutout (north up)
      metadata.csv             index ``id``; orig_id, ra, dec, ra_str, dec_str, p_anomaly, bands, ...
      features.parquet         index ``id``; float64 feature columns "0".."D-1"
      ml_scores.csv            index ``id``; ``score`` = 5 * P(anomaly), ``human_label`` -1 / 0 / 5
      visualisation.parquet    index ``id``; float64 columns "0" and "1" (default: PCA of the features)
      astronomaly_pipeline.py  the loader

Labels given in Astronomaly land in ``bundle/astronomaly_output/ml_scores.csv``;
`import_astronomaly_labels` turns them back into ``{original id: "anomaly" | "normal"}``.
"""

import contextlib
import csv
import json
import logging
import os
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
from astropy import units as u

from ..utils import atomic_path, label_word, parse_labels, replace_atomic, write_bytes_atomic
from ..utils.exceptions import InvalidInputError, OutputExistsError
from ._astronomaly_inputs import features_array, safe_ids, visualisation_array
from ._astronomaly_labels import import_astronomaly_labels

__all__ = ["export_astronomaly", "import_astronomaly_labels", "safe_ids", "IMAGE_FORMATS", "loader_script"]

log = logging.getLogger(__name__)

#: Image formats Astronomaly's ImageThumbnailsDataset reads (``.fits.gz``/``.fits.fz`` are skipped by it).
IMAGE_FORMATS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff", "fits")
#: Columns never written to metadata.csv: Astronomaly renames every id when it sees ``objid``, and
#: the loader drops file-name columns before handing the metadata to Astronomaly.
_FORBIDDEN_METADATA = {"objid", "filename", "file", "path", "filepath", "file_name"}
_BUNDLE_FILES = (
    "metadata.csv",
    "features.parquet",
    "ml_scores.csv",
    "visualisation.parquet",
    "astronomaly_pipeline.py",
)
#: The loader script shipped as package data; ``{version}`` is replaced by the package version.
_LOADER_RESOURCE = "astronomaly_loader.py"


def loader_script():
    """The text of the Astronomaly loader script written as ``astronomaly_pipeline.py``.

    Returns
    -------
    str
        The script (``anomalymatch_astro/catalogs/data/astronomaly_loader.py``) with this
        package's version in its docstring.
    """
    from ..utils._version import __version__

    template = resources.files(__package__).joinpath("data", _LOADER_RESOURCE).read_text(encoding="utf-8")
    return template.replace("{version}", __version__)


# ----------------------------------------------------------------------------------------- writers
def _pandas_metadata(index_name, columns):
    """The ``pandas`` schema metadata that makes ``pandas.read_parquet`` restore a str index."""
    import pyarrow as pa

    cols = [
        {"name": c, "field_name": c, "pandas_type": "float64", "numpy_type": "float64", "metadata": None}
        for c in columns
    ]
    cols.append(
        {
            "name": index_name,
            "field_name": index_name,
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": None,
        }
    )
    return json.dumps(
        {
            "index_columns": [index_name],
            "column_indexes": [
                {
                    "name": None,
                    "field_name": None,
                    "pandas_type": "unicode",
                    "numpy_type": "object",
                    "metadata": {"encoding": "UTF-8"},
                }
            ],
            "columns": cols,
            "creator": {"library": "pyarrow", "version": pa.__version__},
            "pandas_version": "2.0.0",
        }
    )


def _write_frame_parquet(path, ids, names, values):
    """A parquet file that pandas reads as a DataFrame indexed by ``id`` (str), float64 columns ``names``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = [
        pa.array(np.ascontiguousarray(values[:, k], dtype=np.float64), type=pa.float64()) for k in range(len(names))
    ]
    arrays.append(pa.array([str(i) for i in ids], type=pa.string()))
    schema = pa.schema(
        [pa.field(n, pa.float64()) for n in names] + [pa.field("id", pa.string())],
        metadata={b"pandas": _pandas_metadata("id", names).encode()},
    )
    with atomic_path(path, fsync=False) as tmp:
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), tmp)


def _fmt_float(value):
    return "" if not np.isfinite(value) else repr(float(value))


def _write_csv(path, header, rows):
    with atomic_path(path, fsync=False) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _metadata_columns(cutouts, scores, labels):
    """Display columns of metadata.csv after the id: (name, list of str values)."""
    table = cutouts.table
    n = len(cutouts)
    cols = [("orig_id", [str(i) for i in cutouts.ids])]
    coords = cutouts.coords
    if coords is not None:
        icrs = coords.icrs
        ra, dec = icrs.ra.to_value(u.deg), icrs.dec.to_value(u.deg)
        cols += [
            ("ra", [_fmt_float(v) for v in ra]),
            ("dec", [_fmt_float(v) for v in dec]),
            ("ra_str", [f"{v:.6f}" for v in ra]),
            ("dec_str", [f"{v:+.6f}" for v in dec]),
            ("radec_hms", list(icrs.to_string("hmsdms", sep=":", precision=2))),
        ]
    cols.append(("p_anomaly", [f"{p:.4f}" for p in scores]))
    cols.append(("label", [label_word(labels[i]) if i in labels else "" for i in cutouts.ids]))
    cols.append(("bands", [",".join(cutouts.bands)] * n))
    taken = {c for c, _ in cols} | {"id"}
    for name in table.colnames:
        if name in ("id", "ra", "dec") or name in taken:
            continue
        col = table[name]
        if getattr(col, "ndim", 1) != 1 or getattr(col, "dtype", None) is None or col.dtype.kind not in "biufUS":
            continue  # SkyCoord, WCS headers, vectors: not for display
        out_name = f"orig_{name}" if name.lower() in _FORBIDDEN_METADATA else name
        values = np.asarray(getattr(col, "value", col))
        if values.dtype.kind == "f":
            text = [_fmt_float(v) for v in values]
        elif values.dtype.kind == "S":
            text = [v.decode("utf-8", "replace") for v in values]
        else:
            text = [str(v) for v in values]
        cols.append((out_name, text))
        taken.add(out_name)
    return cols


def _save_image(path, cutout, image_format, band_scales=None):
    if image_format == "fits":
        from astropy.io import fits

        fits.PrimaryHDU(np.asarray(cutout, dtype=np.float32)).writeto(path, overwrite=True)
        return
    import matplotlib.image

    from ..normalization import lupton_rgb

    with np.errstate(divide="ignore", invalid="ignore"):  # astropy's Lupton divides by 0 on empty sky
        rgb = np.nan_to_num(lupton_rgb(cutout, band_scales=band_scales))
    matplotlib.image.imsave(path, np.clip(rgb, 0, 1), origin="lower", format=image_format)


def _bundle_entries(directory, overwrite):
    """The bundle entries already in ``directory``; refused unless ``overwrite``."""
    if directory.exists() and not directory.is_dir():
        msg = f"{str(directory)!r} exists and is not a folder"
        raise InvalidInputError(msg)
    present = [name for name in (*_BUNDLE_FILES, "images", "astronomaly_output") if (directory / name).exists()]
    if present and not overwrite:
        msg = (
            f"{str(directory)!r} already holds an Astronomaly bundle ({', '.join(present)}); pass "
            "overwrite=True to replace it (import its labels first with import_astronomaly_labels: "
            "overwriting deletes astronomaly_output/); it is left as it was"
        )
        raise OutputExistsError(msg)
    return present


@contextlib.contextmanager
def _staged_bundle(directory, present):
    """Yield a folder to build the new bundle in; once it is complete, swap it in for the old one.

    The new bundle is built in a hidden folder inside ``directory``; the old entries are moved
    into another hidden folder, the new ones moved in, then the old ones deleted.  A failure
    while building leaves the old bundle as it was (and no new folder behind); a kill during
    the swap leaves the old entries in ``.bundle.old<pid>``, never deleted.
    """
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".bundle.tmp{os.getpid()}"
    backup = directory / f".bundle.old{os.getpid()}"
    for leftover in (staging, backup):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        staging.mkdir()
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    backup.mkdir()
    for name in present:
        os.replace(directory / name, backup / name)
    for entry in sorted(staging.iterdir()):
        replace_atomic(entry, directory / entry.name)
    staging.rmdir()
    shutil.rmtree(backup)


def export_astronomaly(
    directory,
    cutouts,
    scores,
    *,
    features,
    labels=None,
    visualisation=None,
    image_format="png",
    overwrite=False,
    progress=True,
):
    """Write an Astronomaly bundle: images, metadata, features, scores, a 2-D map and the loader script.

    Open it with ``python astronomaly/frontend/run_server.py <directory>/astronomaly_pipeline.py``
    from an Astronomaly checkout; the labels given there come back with
    `import_astronomaly_labels`.

    Parameters
    ----------
    directory : str or os.PathLike
        The bundle folder (created if needed).
    cutouts : `~anomalymatch_astro.CutoutSet`
        The objects to export.  Their ids are made safe for Astronomaly with `safe_ids`;
        ``metadata.csv`` keeps the original ids in ``orig_id``.
    scores : array-like
        P(anomaly) in [0, 1], one per cutout (written as ``score = 5 * p``).
    features : array-like (N, D) or `~astropy.table.Table`
        The features Astronomaly's active learning regresses on, e.g. the classifier's
        embedding (`~anomalymatch_astro.AnomalyClassifier.embed`).  A Table gives named
        features (with an optional ``id`` column).  NaN or infinite values raise
        `~anomalymatch_astro.utils.exceptions.InvalidInputError`: Astronomaly crashes on
        them, and silently imputed features would steer its active learning.
    labels : mapping, Table or path, optional
        Known labels ``{id: "anomaly" | "normal"}``; written as ``human_label`` 5 / 0
        (-1 for the rest).
    visualisation : array-like (N, 2) or Table, optional
        The 2-D map shown by Astronomaly; a Table with ``id`` and two columns may cover a
        subset of the objects.  Default: the first two principal components of the features.
    image_format : {"png", "jpg", "jpeg", "bmp", "tif", "tiff", "fits"}, optional
        Image files.  Colour formats hold a Lupton composite
        (`~anomalymatch_astro.normalization.lupton_rgb`, with the cutouts' per-band flux
        scales when known) flipped so that north is up;
        ``"fits"`` holds the raw (C, H, W) pixels.
    overwrite : bool, optional
        Replace an existing bundle in ``directory`` (including ``astronomaly_output/``).
        Without it an existing bundle raises
        `~anomalymatch_astro.utils.exceptions.InvalidInputError` and is left untouched.  The
        new bundle is built in a hidden folder and swapped in only once complete, so a
        failure leaves the old one as it was; other files in ``directory`` are never touched.
    progress : bool, optional
        Show a progress bar while writing images.

    Returns
    -------
    `pathlib.Path`
        The bundle folder.

    Examples
    --------
    >>> import numpy as np
    >>> from anomalymatch_astro import CutoutSet
    >>> from anomalymatch_astro.catalogs import export_astronomaly
    >>> cs = CutoutSet.from_arrays(np.random.default_rng(0).normal(size=(4, 3, 16, 16)))
    >>> export_astronomaly("bundle", cs, [0.1, 0.9, 0.2, 0.4],
    ...                    features=np.eye(4))  # doctest: +SKIP
    PosixPath('bundle')
    """
    image_format = str(image_format).lower().lstrip(".")
    if image_format not in IMAGE_FORMATS:
        msg = (
            f"image_format {image_format!r} is not read by Astronomaly; use one of {IMAGE_FORMATS} "
            "(compressed FITS such as .fits.gz or .fits.fz is skipped by Astronomaly)"
        )
        raise InvalidInputError(msg)
    if not (hasattr(cutouts, "ids") and hasattr(cutouts, "iter_batches")):
        msg = f"cutouts must be a CutoutSet, got {type(cutouts).__name__}"
        raise InvalidInputError(msg)
    orig_ids = [str(i) for i in cutouts.ids]
    n = len(orig_ids)
    if n == 0:
        msg = "there are no cutouts to export"
        raise InvalidInputError(msg)
    p = np.asarray(getattr(scores, "value", scores), dtype=np.float64)
    if p.shape != (n,):
        msg = f"scores must have one value per cutout ({n}), got shape {p.shape}"
        raise InvalidInputError(msg)
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        msg = "scores must be finite probabilities P(anomaly) in [0, 1]; score every cutout before exporting"
        raise InvalidInputError(msg)
    names, feats = features_array(features, orig_ids)
    label_map = parse_labels(labels, known_ids=orig_ids) if labels is not None else {}
    vis_rows, vis = visualisation_array(visualisation, feats, orig_ids)
    ids = safe_ids(orig_ids)

    directory = Path(directory)
    present = _bundle_entries(directory, overwrite)
    with _staged_bundle(directory, present) as staging:
        _write_bundle(staging, cutouts, ids, p, label_map, names, feats, vis_rows, vis, image_format, progress)
    log.info("wrote an Astronomaly bundle of %d objects to %s", n, directory)
    return directory


def _write_bundle(directory, cutouts, ids, p, label_map, names, feats, vis_rows, vis, image_format, progress):
    """Write the bundle's files into the (new, empty) folder ``directory``."""
    from ..utils import progress_bar

    n = len(ids)
    orig_ids = [str(i) for i in cutouts.ids]
    images = directory / "images"
    images.mkdir()
    scales = cutouts.band_flux_scales

    # images/<id>.<ext>
    for rows, pixels in progress_bar(
        cutouts.iter_batches(batch_size=256), total=(n + 255) // 256, desc="writing images", progress=progress
    ):
        for row, cutout in zip(rows, pixels):
            _save_image(images / f"{ids[row]}.{image_format}", cutout, image_format, scales)

    # metadata.csv
    columns = _metadata_columns(cutouts, p, label_map)
    header = ["id"] + [name for name, _ in columns]
    _write_csv(
        directory / "metadata.csv",
        header,
        ([ids[k]] + [values[k] for _, values in columns] for k in range(n)),
    )

    # ml_scores.csv: id, score, human_label and nothing else
    human = [5 if label_map.get(i) == 1 else 0 if label_map.get(i) == 0 else -1 for i in orig_ids]
    _write_csv(
        directory / "ml_scores.csv",
        ["id", "score", "human_label"],
        ([ids[k], repr(float(5.0 * p[k])), str(int(human[k]))] for k in range(n)),
    )

    # features.parquet and visualisation.parquet
    _write_frame_parquet(directory / "features.parquet", ids, names, feats)
    _write_frame_parquet(directory / "visualisation.parquet", [ids[k] for k in vis_rows], ["0", "1"], vis)

    # the loader
    write_bytes_atomic(directory / "astronomaly_pipeline.py", loader_script(), fsync=False)
