"""The Astronomaly bundle, checked against every rule of shared/design/ASTRONOMALY_EXPORT.md."""

import csv
import importlib.util
import json
import math
import re
import sys
import types

import matplotlib.image
import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.catalogs import export_astronomaly, import_astronomaly_labels, safe_ids
from anomalymatch_astro.utils.exceptions import (
    AnomalyMatchWarning,
    InvalidInputError,
    LabelError,
    OutputExistsError,
    UnknownIDError,
)

LABELS = {"007": "anomaly", "x1": "normal"}


@pytest.fixture
def features():
    return np.random.default_rng(1).normal(size=(5, 6))


@pytest.fixture
def bundle(tmp_path, cutouts, scores, features):
    return export_astronomaly(tmp_path / "bundle", cutouts, scores, features=features, labels=LABELS)


def read_csv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def parquet_frame(path):
    """(index ids, {column: values}, pandas metadata) of a bundle parquet file, read with pyarrow alone."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"pandas"])
    index = table.column(meta["index_columns"][0]).to_pylist()
    cols = {name: table.column(name) for name in table.column_names if name not in meta["index_columns"]}
    return index, cols, meta


def score_ids(bundle):
    _, rows = read_csv_rows(bundle / "ml_scores.csv")
    return [r[0] for r in rows]


# ------------------------------------------------------------------------------------- layout
def test_layout(bundle):
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        [
            "images",
            "metadata.csv",
            "features.parquet",
            "ml_scores.csv",
            "visualisation.parquet",
            "astronomaly_pipeline.py",
        ]
    )


def test_images_one_per_object_stem_is_id(bundle, cutouts):
    files = sorted((bundle / "images").iterdir())
    assert len(files) == len(cutouts)
    assert all(f.suffix == ".png" for f in files)
    assert sorted(f.stem for f in files) == sorted(score_ids(bundle))
    img = matplotlib.image.imread(files[0])
    assert img.shape[:2] == cutouts.image_shape and img.shape[2] in (3, 4)


def test_images_are_lupton_composites_north_up(tmp_path):
    data = np.zeros((1, 3, 16, 16), dtype=np.float32)
    data[0, :, 0, 8] = 100.0  # FITS row 0 is the bottom (south) of the image
    cs = CutoutSet.from_arrays(data, ids=["s"], bands=["g", "r", "i"])
    out = export_astronomaly(tmp_path / "b", cs, [0.5], features=np.ones((1, 2)))
    img = matplotlib.image.imread(out / "images" / "am_s.png")[..., :3]
    assert img[-1, 8].sum() > img[0, 8].sum()  # shown at the bottom of the PNG


@pytest.mark.parametrize("fmt", ["jpg", "tiff", "fits"])
def test_other_image_formats(tmp_path, cutouts, scores, features, fmt):
    out = export_astronomaly(tmp_path / "b", cutouts, scores, features=features, image_format=fmt)
    assert sorted(p.suffix for p in (out / "images").iterdir()) == [f".{fmt}"] * 5


@pytest.mark.parametrize("fmt", ["fits.gz", "fits.fz", "gif"])
def test_unsupported_image_formats(tmp_path, cutouts, scores, features, fmt):
    with pytest.raises(InvalidInputError, match="not read by Astronomaly"):
        export_astronomaly(tmp_path / "b", cutouts, scores, features=features, image_format=fmt)


# ------------------------------------------------------------------------------------- ids
def test_safe_ids():
    ids = ["007", "1.5", "1e3", "12", "-3", "nan", "inf", "NGC 4993", "a.b", "A.b", "a_b", ""]
    out = safe_ids(ids)
    assert len(set(out)) == len(out)
    assert len({i.lower() for i in out}) == len(out)  # also unique on case-insensitive file systems
    for s in out:
        assert s.startswith("am_") and not s[0].isdigit()
        with pytest.raises(ValueError):
            float(s)
        assert all(c.isalnum() or c in "_-" for c in s)
    assert out[0] == "am_007"


def test_ids_survive_astronomaly_reading(bundle):
    """Astronomaly's example scripts read ids with read_csv(index_col=0) then astype(str)."""
    pd = pytest.importorskip("pandas")
    scores = pd.read_csv(bundle / "ml_scores.csv", index_col=0)
    assert sorted(scores.index.astype(str)) == sorted(score_ids(bundle))
    assert all((bundle / "images" / f"{i}.png").exists() for i in scores.index.astype(str))


# ------------------------------------------------------------------------------------- metadata.csv
def test_metadata(bundle, cutouts):
    header, rows = read_csv_rows(bundle / "metadata.csv")
    assert header[0] == "id"
    assert "objid" not in header
    assert not {"filename", "file", "path"} & set(header)
    col = {name: [r[k] for r in rows] for k, name in enumerate(header)}
    assert col["id"] == score_ids(bundle)
    assert col["orig_id"] == list(cutouts.ids)
    ra = [float(v) for v in col["ra"]]
    np.testing.assert_array_equal(ra, cutouts.coords.ra.deg)  # full float64 precision
    np.testing.assert_array_equal([float(v) for v in col["dec"]], cutouts.coords.dec.deg)
    assert col["ra_str"][3] == "150.500000" and col["dec_str"][3] == "+30.250000"
    assert col["truth"] == ["1", "0", "0", "1", "0"]
    assert col["source_image"][0] == "a.fits"
    assert col["bands"] == ["g,r,i"] * 5
    assert col["label"][:3] == ["anomaly", "normal", ""]


def test_metadata_objid_is_renamed(tmp_path, cutouts, scores, features):
    cs = CutoutSet.from_arrays(
        cutouts.data,
        ids=list(cutouts.ids),
        bands=cutouts.bands,
        coords=cutouts.coords,
        table=Table({"objid": [5, 6, 7, 8, 9], "filename": ["f"] * 5}),
    )
    out = export_astronomaly(tmp_path / "b", cs, scores, features=features)
    header, _ = read_csv_rows(out / "metadata.csv")
    assert "objid" not in header and "filename" not in header
    assert "orig_objid" in header and "orig_filename" in header


def test_metadata_without_coords(tmp_path, features, scores):
    cs = CutoutSet.from_arrays(np.ones((5, 1, 8, 8)), bands=["r"])
    out = export_astronomaly(tmp_path / "b", cs, scores, features=features)
    header, _ = read_csv_rows(out / "metadata.csv")
    assert header[0] == "id" and "ra" not in header and "ra_str" not in header


# ------------------------------------------------------------------------------------- features.parquet
def test_features(bundle, features):
    index, cols, meta = parquet_frame(bundle / "features.parquet")
    assert meta["index_columns"] == ["id"]
    assert list(cols) == [str(k) for k in range(6)]
    assert all(str(c.type) == "double" for c in cols.values())
    values = np.column_stack([c.to_numpy() for c in cols.values()])
    assert np.all(np.isfinite(values))
    np.testing.assert_array_equal(values, features)
    assert index == score_ids(bundle)  # exactly the same id set as ml_scores


def test_features_read_with_pandas(bundle):
    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(bundle / "features.parquet")
    assert frame.index.name == "id"
    assert [str(i) for i in frame.index] == score_ids(bundle)
    assert all(isinstance(c, str) for c in frame.columns)
    assert all(str(t) == "float64" for t in frame.dtypes)


def test_named_features_from_table(tmp_path, cutouts, scores):
    t = Table({"id": list(cutouts.ids)[::-1], "pc1": np.arange(5.0), "pc2": np.arange(5.0) ** 2})
    out = export_astronomaly(tmp_path / "b", cutouts, scores, features=t)
    _, cols, _ = parquet_frame(out / "features.parquet")
    assert list(cols) == ["pc1", "pc2"]
    np.testing.assert_array_equal(cols["pc1"].to_numpy(), np.arange(5.0)[::-1])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_raise(tmp_path, cutouts, scores, features, bad):
    features[2, 3] = bad
    with pytest.raises(InvalidInputError, match="1.5"):
        export_astronomaly(tmp_path / "b", cutouts, scores, features=features)
    assert not (tmp_path / "b").exists()  # nothing half-written


def test_feature_shape_checked(tmp_path, cutouts, scores):
    with pytest.raises(InvalidInputError):
        export_astronomaly(tmp_path / "b", cutouts, scores, features=np.ones((4, 3)))
    with pytest.raises(InvalidInputError):
        export_astronomaly(tmp_path / "b", cutouts, scores, features=np.ones((5, 0)))


# ------------------------------------------------------------------------------------- ml_scores.csv
def test_ml_scores(bundle, scores):
    header, rows = read_csv_rows(bundle / "ml_scores.csv")
    assert header == ["id", "score", "human_label"]  # no other columns
    np.testing.assert_array_equal([float(r[1]) for r in rows], 5 * scores)
    assert [int(r[2]) for r in rows] == [5, 0, -1, -1, -1]
    assert all(re.fullmatch(r"-?\d+", r[2]) for r in rows)  # written as integers


def test_ml_scores_with_pandas(bundle):
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(bundle / "ml_scores.csv", index_col=0, dtype={0: str})
    assert list(frame.columns) == ["score", "human_label"]
    assert str(frame["score"].dtype) == "float64" and str(frame["human_label"].dtype) == "int64"
    assert frame["score"].between(0, 5).all()


def test_scores_checked(tmp_path, cutouts, features):
    for bad in ([0.1] * 4, [0.1, 0.2, np.nan, 0.3, 0.4], [0.1, 0.2, 1.2, 0.3, 0.4]):
        with pytest.raises(InvalidInputError):
            export_astronomaly(tmp_path / "b", cutouts, bad, features=features)


def test_unknown_label_ids(tmp_path, cutouts, scores, features):
    with pytest.raises(UnknownIDError):
        export_astronomaly(tmp_path / "b", cutouts, scores, features=features, labels={"zz": "anomaly"})


# ------------------------------------------------------------------------------------- visualisation.parquet
def test_visualisation_default_pca(bundle, features):
    index, cols, meta = parquet_frame(bundle / "visualisation.parquet")
    assert meta["index_columns"] == ["id"]
    assert list(cols) == ["0", "1"]
    assert all(str(c.type) == "double" for c in cols.values())
    assert set(index) <= set(score_ids(bundle))
    from sklearn.decomposition import PCA

    expected = PCA(n_components=2, random_state=0).fit_transform(features)
    np.testing.assert_allclose(np.column_stack([cols["0"].to_numpy(), cols["1"].to_numpy()]), expected)


def test_visualisation_subset_table(tmp_path, cutouts, scores, features):
    vis = Table({"id": ["x1", "007"], "u": [1.0, 2.0], "v": [3.0, 4.0]})
    out = export_astronomaly(tmp_path / "b", cutouts, scores, features=features, visualisation=vis)
    index, cols, _ = parquet_frame(out / "visualisation.parquet")
    assert index == ["am_x1", "am_007"]
    assert cols["0"].to_pylist() == [1.0, 2.0] and cols["1"].to_pylist() == [3.0, 4.0]
    with pytest.raises(UnknownIDError):
        export_astronomaly(
            tmp_path / "c",
            cutouts,
            scores,
            features=features,
            visualisation=Table({"id": ["nope"], "u": [1.0], "v": [2.0]}),
        )
    with pytest.raises(InvalidInputError):
        export_astronomaly(tmp_path / "c", cutouts, scores, features=features, visualisation=np.ones((5, 3)))


def test_one_feature_column(tmp_path, cutouts, scores):
    out = export_astronomaly(tmp_path / "b", cutouts, scores, features=np.arange(5.0))
    _, cols, _ = parquet_frame(out / "visualisation.parquet")
    assert list(cols) == ["0", "1"] and np.all(cols["1"].to_numpy() == 0)


# ------------------------------------------------------------------------------------- the loader
def test_loader_compiles_and_imports_without_astronomaly(bundle):
    source = (bundle / "astronomaly_pipeline.py").read_text()
    compile(source, "astronomaly_pipeline.py", "exec")
    assert "import astronomaly" not in source.split("def run_pipeline")[0]
    assert "from astronomaly" not in source.split("def run_pipeline")[0]
    module = _load(bundle)
    assert callable(module.run_pipeline)
    assert module.BUNDLE == str(bundle)


def test_loader_is_the_packaged_script_with_the_version(bundle):
    from importlib import resources

    from anomalymatch_astro.catalogs._astronomaly import loader_script
    from anomalymatch_astro.utils._version import __version__

    template = resources.files("anomalymatch_astro.catalogs").joinpath("data", "astronomaly_loader.py").read_text()
    assert "{version}" in template
    written = (bundle / "astronomaly_pipeline.py").read_bytes()
    assert written == loader_script().encode("utf-8") == template.replace("{version}", __version__).encode("utf-8")
    assert f"(anomalymatch_astro {__version__})" in written.decode().splitlines()[0]


def _load(bundle, name="bundle_loader"):
    spec = importlib.util.spec_from_file_location(name, bundle / "astronomaly_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Recorder:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def fake_astronomaly(monkeypatch):
    """Stand-ins for the two Astronomaly classes the loader uses (Astronomaly is not on PyPI)."""
    for name in ("astronomaly", "astronomaly.data_management", "astronomaly.anomaly_detection"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    reader = types.ModuleType("astronomaly.data_management.image_reader")
    reader.ImageThumbnailsDataset = type("ImageThumbnailsDataset", (_Recorder,), {})
    hll = types.ModuleType("astronomaly.anomaly_detection.human_loop_learning")
    hll.NeighbourScore = type("NeighbourScore", (_Recorder,), {})
    monkeypatch.setitem(sys.modules, reader.__name__, reader)
    monkeypatch.setitem(sys.modules, hll.__name__, hll)


def test_loader_run_pipeline(bundle, fake_astronomaly):
    pytest.importorskip("pandas")
    out = _load(bundle).run_pipeline()
    assert set(out) == {"dataset", "features", "anomaly_scores", "visualisation", "active_learning"}
    kw = out["dataset"].kwargs
    assert kw["directory"] == str(bundle / "images")
    assert kw["output_dir"] == str(bundle / "astronomaly_output")
    assert kw["display_image_size"] == 128
    meta = kw["additional_metadata"]
    assert sorted(meta.index) == sorted(score_ids(bundle))
    assert str(meta["ra"].dtype) == "float64" and meta.loc["am_007", "orig_id"] == "007"
    scores = out["anomaly_scores"]
    assert list(scores.columns) == ["score", "human_label"]
    assert scores.loc["am_007", "human_label"] == 5
    assert set(out["features"].index) == set(scores.index)
    assert set(out["visualisation"].index) <= set(scores.index)
    assert list(out["visualisation"].columns) == ["0", "1"]
    assert out["active_learning"].kwargs == {
        "alpha": 1,
        "output_dir": str(bundle / "astronomaly_output"),
        "force_rerun": True,
    }
    assert (bundle / "astronomaly_output").is_dir()


def test_loader_prefers_output_scores_and_env(bundle, fake_astronomaly, monkeypatch, tmp_path):
    pytest.importorskip("pandas")
    out_dir = bundle / "astronomaly_output"
    out_dir.mkdir()
    ids = score_ids(bundle)
    (out_dir / "ml_scores.csv").write_text(
        "id,score,human_label\n" + "".join(f"{i},1.0,{3 if k == 1 else -1}\n" for k, i in enumerate(ids))
    )
    monkeypatch.setenv("ASTRONOMALY_BUNDLE", str(bundle))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "astronomaly_pipeline.py").write_text((bundle / "astronomaly_pipeline.py").read_text())
    result = _load(elsewhere, "moved_loader").run_pipeline()
    assert result["anomaly_scores"].loc[ids[1], "human_label"] == 3  # from astronomaly_output


# ------------------------------------------------------------------------------------- the round trip
def test_round_trip_labels(bundle):
    out_dir = bundle / "astronomaly_output"
    out_dir.mkdir()
    # as Astronomaly writes it: human_label 0..5 (sometimes as floats), -1 unlabelled, extra columns
    (out_dir / "ml_scores.csv").write_text(
        "id,score,human_label,trained_score\n"
        "am_007,4.5,5,4.9\n"
        "am_x1,0.5,0.0,0.1\n"
        "am_1_5,1.7,3,2.0\n"
        "am_1e3,3.5,4,3.9\n"
        "am_NGC_4993,0.2,-1,0.3\n"
    )
    labels = import_astronomaly_labels(bundle)
    assert labels == {"007": "anomaly", "x1": "normal", "1e3": "anomaly"}
    assert import_astronomaly_labels(out_dir / "ml_scores.csv") == labels
    # 4 lies between normal_max=3 and anomaly_min=5: left unlabelled
    assert import_astronomaly_labels(bundle, anomaly_min=5, normal_max=3) == {
        "007": "anomaly",
        "x1": "normal",
        "1.5": "normal",
    }


def test_import_before_labelling_reads_bundle_scores(bundle):
    assert import_astronomaly_labels(bundle) == LABELS


def test_import_with_id_map_and_errors(tmp_path):
    path = tmp_path / "ml_scores.csv"
    path.write_text("id,score,human_label\n0,1.0,5\n1,1.0,1\n")
    assert import_astronomaly_labels(path, id_map={"0": "a", "1": "b"}) == {"a": "anomaly", "b": "normal"}
    with pytest.raises(UnknownIDError) as err:
        import_astronomaly_labels(path, id_map={"0": "a"})
    assert err.value.ids == ["1"]
    with pytest.warns(AnomalyMatchWarning, match="unchanged"):
        assert import_astronomaly_labels(path) == {"0": "anomaly", "1": "normal"}
    with pytest.raises(InvalidInputError):
        import_astronomaly_labels(path, anomaly_min=1, normal_max=1, id_map={})
    bad = tmp_path / "bad.csv"
    bad.write_text("id,score\nx,1\n")
    with pytest.raises(LabelError, match="human_label"):
        import_astronomaly_labels(bad, id_map={})
    with pytest.raises(LabelError):
        import_astronomaly_labels(tmp_path / "missing.csv")
    with pytest.raises(LabelError):
        import_astronomaly_labels(tmp_path / "empty_dir_does_not_exist")


# ------------------------------------------------------------------------------------- overwrite
def test_overwrite(bundle, cutouts, scores, features):
    (bundle / "astronomaly_output").mkdir()
    with pytest.raises(OutputExistsError, match="overwrite"):
        export_astronomaly(bundle, cutouts, scores, features=features)
    export_astronomaly(bundle, cutouts[:2], scores[:2], features=features[:2], overwrite=True)
    assert len(list((bundle / "images").iterdir())) == 2
    assert not (bundle / "astronomaly_output").exists()
    assert math.isclose(float(read_csv_rows(bundle / "ml_scores.csv")[1][0][1]), 4.5)
