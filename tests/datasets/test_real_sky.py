"""The real-sky benchmark set: scikit-image's Hubble XDF with injected anomalies."""

import numpy as np
import pytest

pytest.importorskip("photutils")
pytest.importorskip("skimage")

from anomalymatch_astro.datasets import (  # noqa: E402
    REAL_SKY_ANOMALIES,
    load_benchmark_set,
    make_real_sky_set,
    xdf_field,
)
from anomalymatch_astro.utils.exceptions import InvalidInputError  # noqa: E402


@pytest.fixture(scope="module")
def arcs():
    return make_real_sky_set(anomaly="arcs", n_anomalies=20, seed=0, cutout_size=32, return_field=True)


def test_field_is_sky_subtracted_with_a_tan_wcs():
    image, wcs, noise = xdf_field()
    assert image.shape == (3, 872, 1000) and image.dtype == np.float32
    assert np.all(np.abs(np.median(image, axis=(1, 2))) <= 1.5)  # sky removed
    assert np.all((noise > 4.0) & (noise < 8.0))  # 8-bit units
    scale = np.abs(wcs.wcs.cdelt) * 3600
    assert np.allclose(scale, 0.13) and wcs.wcs.ctype[0] == "RA---TAN"


def test_arcs_set_columns_truth_and_artefacts(arcs):
    cs, field = arcs
    t = cs.table
    assert cs.bands == ("blue", "green", "red") and cs.image_shape == (32, 32)
    assert 800 <= len(cs) <= 1100  # photutils finds about a thousand sources
    assert int(t["is_anomaly"].sum()) == 20
    assert set(t["class"][t["is_anomaly"]]) == {"arc"}
    assert cs.meta["anomaly_fraction"] == pytest.approx(20 / len(cs))
    # the hosts are real galaxies: not stars, not artefacts
    assert not np.any(t["artefact"][t["is_anomaly"]]) and not np.any(t["is_star"][t["is_anomaly"]])
    # the field's spiky stars and their neighbours, and deblended fragments, are in as normals
    assert int(t["is_star"].sum()) == 3 and t["star_zone"].sum() > 10 and t["fragment"].sum() > 50
    assert np.array_equal(t["artefact"], t["star_zone"] | t["fragment"])
    # fragments share their parent's system id
    assert len(np.unique(t["system"])) < len(t)
    frag = np.flatnonzero(t["fragment"])[0]
    assert np.sum(t["system"] == t["system"][frag]) >= 2
    # faint: a matched-filter S/N of 20-45, a peak of a few sigma per pixel
    snr = np.asarray(t["snr"][t["is_anomaly"]])
    assert np.all((snr >= 20) & (snr <= 45)) and np.isnan(t["snr"][~t["is_anomaly"]]).all()
    assert np.median(t["peak_snr"][t["is_anomaly"]]) < 15
    # the injected light is there: the field around a host differs from the clean field
    clean, _, _ = xdf_field()
    row = np.flatnonzero(t["is_anomaly"])[0]
    x, y = int(round(t["x"][row])), int(round(t["y"][row]))
    added = (field["image"] - clean)[:, y - 20 : y + 21, x - 20 : x + 21]
    assert added.sum() > 100 and added.min() >= -1e-3


def test_deterministic_per_seed():
    a = make_real_sky_set(anomaly="colour", n_anomalies=10, seed=3, cutout_size=16)
    b = make_real_sky_set(anomaly="colour", n_anomalies=10, seed=3, cutout_size=16)
    c = make_real_sky_set(anomaly="colour", n_anomalies=10, seed=4, cutout_size=16)
    assert np.array_equal(np.asarray(a.data), np.asarray(b.data))
    assert np.array_equal(a.table["is_anomaly"], b.table["is_anomaly"])
    assert not np.array_equal(a.table["is_anomaly"], c.table["is_anomaly"])


@pytest.mark.parametrize("kind", [k for k in REAL_SKY_ANOMALIES if k != "arcs"])
def test_other_anomaly_kinds(kind):
    cs = load_benchmark_set("real_sky", anomaly=kind, n_anomalies=12, seed=1, cutout_size=16)
    truth = np.asarray(cs.table["is_anomaly"])
    assert cs.meta["benchmark"] == "real_sky" and cs.meta["anomaly"] == kind
    if kind == "trails":  # streaks are added until they cross enough sources
        assert 12 <= truth.sum() <= 20
    else:
        assert truth.sum() == 12


def test_mask_neighbours_option_changes_only_other_sources():
    plain = make_real_sky_set(anomaly="arcs", n_anomalies=5, seed=0, cutout_size=32)
    masked = make_real_sky_set(anomaly="arcs", n_anomalies=5, seed=0, cutout_size=32, mask_neighbours=True)
    assert masked.meta["mask_neighbours"] and "n_masked" in masked.table.colnames
    assert np.mean(masked.table["n_masked"] > 0) > 0.5  # a crowded field: most cutouts hold neighbours
    centre = (slice(None), slice(None), slice(15, 17), slice(15, 17))
    assert np.allclose(np.asarray(plain.data)[centre], np.asarray(masked.data)[centre])
    # keeping the blends masks fewer pixels: the fragments' own galaxies stay (never more than plain masking)
    blends = make_real_sky_set(
        anomaly="arcs", n_anomalies=5, seed=0, cutout_size=32, mask_neighbours=True, keep_blended=True
    )
    assert blends.meta["keep_blended"] and not masked.meta["keep_blended"]
    fewer = np.asarray(blends.table["n_masked"]) <= np.asarray(masked.table["n_masked"])
    assert fewer.all() and np.sum(blends.table["n_masked"]) < np.sum(masked.table["n_masked"])
    fragments = np.asarray(blends.table["fragment"], dtype=bool)
    assert np.mean(blends.table["n_masked"][fragments]) < 0.8 * np.mean(masked.table["n_masked"][fragments])


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="anomaly must be one of"):
        make_real_sky_set(anomaly="lenses")
    with pytest.raises(InvalidInputError, match="room for only"):
        make_real_sky_set(n_anomalies=5000)
