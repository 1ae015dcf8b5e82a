import numpy as np
import pytest
from astropy.table import Table

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.datasets import (
    MORPHOLOGY_CLASSES,
    load_benchmark_set,
    make_digits_set,
    make_morphology_set,
    start_labels,
)
from anomalymatch_astro.utils import parse_labels
from anomalymatch_astro.utils.exceptions import InvalidInputError


def test_morphology_shapes_and_fraction():
    cs = make_morphology_set(n_per_class=12, image_size=32, seed=0)
    assert isinstance(cs, CutoutSet)
    assert cs.shape == (48, 3, 32, 32)
    assert cs.bands == ("g", "r", "i")
    truth = np.asarray(cs.table["is_anomaly"])
    assert truth.dtype == bool and truth.sum() == 12
    assert set(cs.table["class"]) == set(MORPHOLOGY_CLASSES)
    np.testing.assert_array_equal(truth, cs.table["class"] == "spiral")
    assert np.all(np.isfinite(cs.data))
    # galaxies in the centre, noise at the edges
    centre = cs.data[:, :, 12:20, 12:20].mean()
    edge = cs.data[:, :, :4, :4]
    assert centre > 10 * abs(edge.mean())
    assert 0.7 < edge.std() < 1.3


def test_morphology_other_fraction_and_class():
    cs = make_morphology_set(
        n_per_class=20, image_size=16, anomaly_class="edge_on_disk", anomaly_fraction=0.1, bands="r", seed=1
    )
    truth = np.asarray(cs.table["is_anomaly"])
    assert cs.shape[1:] == (1, 16, 16)
    assert truth.mean() == pytest.approx(0.1, abs=0.01)
    assert len(cs) == 67 and truth.sum() == 7
    counts = {c: int(np.sum(cs.table["class"] == c)) for c in MORPHOLOGY_CLASSES}
    assert counts["smooth_round"] == counts["smooth_cigar"] == counts["spiral"] == 20
    # fraction above 25%: normals are subsampled instead
    cs = make_morphology_set(n_per_class=10, image_size=16, anomaly_fraction=0.5, seed=1)
    assert int(cs.table["is_anomaly"].sum()) == 10 and len(cs) == 20


def test_morphology_deterministic():
    a = make_morphology_set(n_per_class=4, image_size=16, seed=5)
    b = make_morphology_set(n_per_class=4, image_size=16, seed=5)
    c = make_morphology_set(n_per_class=4, image_size=16, seed=6)
    np.testing.assert_array_equal(a.data, b.data)
    assert list(a.table["class"]) == list(b.table["class"])
    assert not np.array_equal(a.data, c.data)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(anomaly_class="irregular"), "anomaly_class must be one of"),
        (dict(anomaly_fraction=0.0), "anomaly_fraction must be in"),
        (dict(image_size=8), "image_size must be"),
        (dict(n_per_class=0), "n_per_class must be"),
    ],
)
def test_morphology_bad_arguments(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        make_morphology_set(**kwargs)


def test_digits():
    cs = make_digits_set(anomaly_digit=7, anomaly_fraction=0.02, image_size=24, seed=0)
    truth = np.asarray(cs.table["is_anomaly"])
    assert cs.shape[1:] == (1, 24, 24) and cs.bands == ("gray",)
    assert truth.mean() == pytest.approx(0.02, abs=0.002)
    np.testing.assert_array_equal(truth, cs.table["class"] == "7")
    from sklearn.datasets import load_digits

    assert np.sum(cs.table["class"] != "7") == np.sum(load_digits().target != 7)  # every normal digit kept
    assert 0.0 <= cs.data.min() and cs.data.max() <= 1.0
    again = make_digits_set(anomaly_digit=7, anomaly_fraction=0.02, image_size=24, seed=0)
    np.testing.assert_array_equal(cs.data, again.data)
    assert list(cs.ids) == list(again.ids)
    with pytest.raises(InvalidInputError, match="anomaly_digit must be"):
        make_digits_set(anomaly_digit=10)


def test_load_benchmark_set_dispatch():
    cs = load_benchmark_set("morphology", n_per_class=4, image_size=16, seed=2)
    assert cs.meta["benchmark"] == "morphology" and len(cs) == 16
    cs = load_benchmark_set("digits", image_size=8, seed=2)
    assert cs.meta["benchmark"] == "digits"
    with pytest.raises(InvalidInputError, match="choose one of"):
        load_benchmark_set("imagenet")


def test_load_benchmark_set_mock_survey(tmp_path):
    cs = load_benchmark_set(
        "mock_survey", n_objects=30, anomaly_fraction=0.2, n_background=10, seed=1, cutout_size=32, directory=tmp_path
    )
    assert cs.shape == (30, 3, 32, 32)
    assert cs.bands == ("g", "r", "i")
    assert np.all(np.isfinite(cs.data))
    for col in ("is_anomaly", "class", "kind", "detail"):
        assert col in cs.table.colnames
    assert int(np.sum(cs.table["is_anomaly"])) == 6
    assert cs.coords is not None and cs.ids[0].startswith("MS")
    assert (tmp_path / "mock_g.fits").exists()
    # the catalogue object sits in the middle of its cutout: central flux above the sky
    centre = cs.data[:, 1, 13:19, 13:19].sum(axis=(1, 2))
    assert np.median(centre) > 0


def test_load_benchmark_set_lens():
    cs = load_benchmark_set("lens", n_objects=20, lens_fraction=0.1, n_background=5, seed=1, cutout_size=24)
    assert set(cs.table["class"][cs.table["is_anomaly"]]) == {"lens"}
    assert cs.meta["benchmark"] == "lens"


def test_start_labels_forms():
    truth = np.array([True, False, False, True, False, False, True, False])
    ids = [f"o{i}" for i in range(8)]
    labels = start_labels(truth, ids=ids, n_anomalies=2, n_normals=3, seed=0)
    assert sum(v == "anomaly" for v in labels.values()) == 2
    assert sum(v == "normal" for v in labels.values()) == 3
    for key, word in labels.items():
        assert truth[ids.index(key)] == (word == "anomaly")
    assert labels == start_labels(truth, ids=ids, n_anomalies=2, n_normals=3, seed=0)
    # the package's label parser accepts them
    parsed = parse_labels(labels, known_ids=ids, require_both=True)
    assert sum(parsed.values()) == 2
    table = Table({"id": ids, "is_anomaly": truth})
    assert start_labels(table, n_anomalies=2, n_normals=3, seed=0) == labels
    cs = CutoutSet.from_arrays(np.zeros((8, 1, 4, 4)), ids=ids, table=Table({"is_anomaly": truth}))
    assert start_labels(cs, n_anomalies=2, n_normals=3, seed=0) == labels
    assert start_labels(dict(zip(ids, truth)), n_anomalies=2, n_normals=3, seed=0) == labels


def test_start_labels_errors():
    truth = [True, False, False]
    with pytest.raises(InvalidInputError, match="ids"):
        start_labels(truth, n_anomalies=1, n_normals=1)
    with pytest.raises(InvalidInputError, match="only 1"):
        start_labels(truth, ids="abc", n_anomalies=2, n_normals=1)
    with pytest.raises(InvalidInputError, match="boolean"):
        start_labels([0, 2, 1], ids="abc", n_anomalies=1, n_normals=1)
