import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable, Table

import anomalymatch_astro
from anomalymatch_astro import CutoutSet
from anomalymatch_astro.catalogs import scores_to_table
from anomalymatch_astro.utils.exceptions import InvalidInputError, LabelError, UnknownIDError


def test_columns_and_types(cutouts, scores):
    t = scores_to_table(cutouts, scores)
    assert isinstance(t, QTable)
    assert t.colnames[:11] == [
        "id",
        "coord",
        "ra",
        "dec",
        "score",
        "rank",
        "label",
        "label_source",
        "label_time",
        "label_cycle",
        "bands",
    ]
    assert t.colnames[11:] == ["truth", "source_image", "overlap"]
    assert isinstance(t["coord"], SkyCoord)
    assert t["coord"].frame.name == "icrs"
    assert t["ra"].unit == u.deg and t["dec"].unit == u.deg
    np.testing.assert_allclose(t["ra"].value, cutouts.table["ra"].to_value(u.deg))
    assert t["score"].dtype == np.float64
    np.testing.assert_array_equal(t["score"], scores)
    assert t["id"].tolist() == ["007", "x1", "1.5", "1e3", "NGC 4993"]
    assert list(t["bands"]) == ["g,r,i"] * 5
    assert list(t["label"]) == [""] * 5
    assert list(t["label_cycle"]) == [-1] * 5


def test_rank_is_one_for_most_anomalous(cutouts, scores):
    t = scores_to_table(cutouts, scores)
    assert list(t["rank"]) == [1, 4, 3, 2, 5]


def test_nan_scores_rank_last(cutouts):
    t = scores_to_table(cutouts, [0.2, np.nan, 0.9, 0.1, 0.3])
    assert list(t["rank"]) == [3, 5, 1, 4, 2]


def test_scores_as_mapping(cutouts, scores):
    t = scores_to_table(cutouts, dict(zip(cutouts.ids, scores)))
    np.testing.assert_array_equal(t["score"], scores)


def test_labels_words_and_ints(cutouts, scores):
    t = scores_to_table(cutouts, scores, labels={"007": "anomaly", "x1": 0, "1.5": 1})
    assert list(t["label"]) == ["anomaly", "normal", "anomaly", "", ""]


def test_label_records_newest_wins(cutouts, scores):
    records = Table(
        {
            "id": ["x1", "x1", "007"],
            "label": ["anomaly", "normal", "anomaly"],
            "source": ["ui", "cli", "ui"],
            "time": ["2026-01-02T00:00:00", "2026-01-01T00:00:00", "2026-01-01T00:00:00"],
            "cycle": [2, 1, 0],
            "user": ["ann", "bob", "ann"],
        }
    )
    t = scores_to_table(cutouts, scores, label_records=records)
    row = {i: k for k, i in enumerate(t["id"])}
    assert t["label"][row["x1"]] == "anomaly"  # the record of 01-02 is newer
    assert t["label_source"][row["x1"]] == "ui"
    assert t["label_time"][row["x1"]] == "2026-01-02T00:00:00"
    assert t["label_cycle"][row["x1"]] == 2
    assert t["label_cycle"][row["007"]] == 0
    assert t["label"][row["1.5"]] == "" and t["label_cycle"][row["1.5"]] == -1


def test_labels_override_records(cutouts, scores):
    records = Table({"id": ["x1"], "label": ["anomaly"], "source": ["ui"], "time": ["2026-01-01"], "cycle": [3]})
    t = scores_to_table(cutouts, scores, label_records=records, labels={"x1": "normal"})
    assert t["label"][1] == "normal" and t["label_source"][1] == "" and t["label_cycle"][1] == -1
    t = scores_to_table(cutouts, scores, label_records=records, labels={"x1": "anomaly"})
    assert t["label_source"][1] == "ui" and t["label_cycle"][1] == 3


def test_meta_provenance(cutouts, scores):
    prov = {"model_hash": "abc123", "normalizer": {"stretch": "asinh"}, "training": {"iterations": 10}}
    t = scores_to_table(cutouts, scores, provenance=prov)
    assert t.meta["anomalymatch_astro_version"] == anomalymatch_astro.__version__
    assert t.meta["bands"] == ["g", "r", "i"]
    assert t.meta["n_objects"] == 5
    assert t.meta["model_hash"] == "abc123"
    assert t.meta["normalizer"] == {"stretch": "asinh"}
    assert t.meta["cutouts"] == {"made_by": "test"}
    from datetime import datetime

    assert datetime.fromisoformat(t.meta["created"]).tzinfo is not None


def test_no_coords():
    cs = CutoutSet.from_arrays(np.zeros((3, 1, 8, 8)), ids=["a", "b", "c"], bands=["r"])
    t = scores_to_table(cs, [0.1, 0.2, 0.3])
    assert "coord" not in t.colnames and "ra" not in t.colnames and "dec" not in t.colnames
    assert list(t["rank"]) == [3, 2, 1]


def test_from_table():
    t = scores_to_table(Table({"id": ["a", "b"], "ra": [1.0, 2.0], "dec": [3.0, 4.0], "mag": [20.0, 21.0]}), [0.5, 0.6])
    assert isinstance(t["coord"], SkyCoord)
    assert t["ra"].unit == u.deg
    assert list(t["mag"]) == [20.0, 21.0]


@pytest.mark.parametrize("bad", [[0.1, 0.2], [[0.1] * 5], [0.1, 0.2, 0.3, 0.4, 1.5]])
def test_bad_scores(cutouts, bad):
    with pytest.raises(InvalidInputError):
        scores_to_table(cutouts, bad)


def test_unknown_ids(cutouts, scores):
    with pytest.raises(UnknownIDError) as err:
        scores_to_table(cutouts, scores, labels={"nope": "anomaly"})
    assert err.value.ids == ["nope"]
    with pytest.raises(UnknownIDError):
        scores_to_table(cutouts, scores, label_records=Table({"id": ["zz"], "label": ["normal"]}))
    with pytest.raises(LabelError):
        scores_to_table(cutouts, scores, label_records=Table({"id": ["x1"]}))
    with pytest.raises(LabelError):
        scores_to_table(cutouts, scores, labels={"x1": "weird"})


def test_label_records_seq_orders_events(cutouts, scores):
    # the label store's event number wins over (equal) times
    records = Table(
        {
            "seq": [2, 1],
            "id": ["x1", "x1"],
            "label": ["normal", "anomaly"],
            "time": ["2026-01-01T00:00:00"] * 2,
            "cycle": [1, 0],
            "source": ["ui", "ui"],
        }
    )
    t = scores_to_table(cutouts, scores, label_records=records)
    assert t["label"][1] == "normal" and t["label_cycle"][1] == 1


def test_active_learning_style_records(cutouts):
    """scores_to_table as ActiveLearningSession.to_table calls it: NaN scores before training."""
    records = Table(
        {
            "seq": np.array([], dtype=np.int64),
            "id": np.array([], dtype=str),
            "label": np.array([], dtype="U7"),
            "time": np.array([], dtype=str),
            "user": np.array([], dtype=str),
            "cycle": np.array([], dtype=np.int64),
            "source": np.array([], dtype=str),
        }
    )
    t = scores_to_table(cutouts, np.full(5, np.nan), label_records=records, provenance={"cycle": 0})
    assert np.all(np.isnan(t["score"])) and list(t["rank"]) == [1, 2, 3, 4, 5]
    assert t.meta["cycle"] == 0


def test_user_columns_named_like_catalogue_columns_are_kept():
    """photutils' SourceCatalog writes ``label``: it must not vanish behind the catalogue's own ``label``."""
    extra = Table(
        {
            "label": [7, 8],
            "score": [1.0, 2.0],
            "rank": [5, 6],
            "coord": ["x", "y"],
            "bands": ["q", "w"],
            "label_source": ["s", "t"],
            "mag": [20.0, 21.0],
        }
    )
    cs = CutoutSet.from_arrays(
        np.zeros((2, 1, 4, 4)), ids=["a", "b"], bands=["r"], coords=SkyCoord([1, 2], [3, 4], unit="deg"), table=extra
    )
    t = scores_to_table(cs, [0.1, 0.9], labels={"b": "anomaly"})
    assert list(t["label"]) == ["", "anomaly"] and list(t["label_catalog"]) == [7, 8]
    assert list(t["score"]) == [0.1, 0.9] and list(t["score_catalog"]) == [1.0, 2.0]
    assert list(t["rank"]) == [2, 1] and list(t["rank_catalog"]) == [5, 6]
    assert list(t["coord_catalog"]) == ["x", "y"] and list(t["bands_catalog"]) == ["q", "w"]
    assert list(t["label_source_catalog"]) == ["s", "t"] and list(t["mag"]) == [20.0, 21.0]
    assert isinstance(t["coord"], SkyCoord)
    assert list(t["ra"].to_value(u.deg)) == [1.0, 2.0]


def test_table_input_keeps_label_and_lone_ra():
    t = scores_to_table(Table({"id": ["a", "b"], "ra": [1.0, 2.0], "label": [3, 4]}), [0.5, 0.6])
    assert list(t["label_catalog"]) == [3, 4]
    assert list(t["ra_catalog"]) == [1.0, 2.0]  # no dec: not a position, but kept
    assert "coord" not in t.colnames and "ra" not in t.colnames


def test_clash_with_the_kept_name_is_refused():
    with pytest.raises(InvalidInputError, match="'label_catalog' where it would be kept"):
        scores_to_table(Table({"id": ["a"], "label": [1], "label_catalog": [2]}), [0.5])
