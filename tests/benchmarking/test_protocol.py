"""The benchmark protocol and the strategies comparison, on tiny quick settings."""

import numpy as np
import pytest

from anomalymatch_astro.benchmarking import (
    METHODS,
    PROTOCOLS,
    VARIANTS,
    compare_strategies,
    run_protocol,
    summarize_protocol,
)
from anomalymatch_astro.utils.exceptions import InvalidInputError


def test_protocol_quick(tmp_path):
    table = run_protocol(sets=["digits"], seeds=[0], cycles=1, methods=["probe", "knn"], quick=True, output=tmp_path)
    assert set(table["method"]) == {"probe", "knn"}
    assert (tmp_path / "protocol_summary.ecsv").exists()
    initial = table[(table["cycle"] == 0)]
    assert np.all(initial["auroc"] > 0.9)  # digit 0 among the others: easy for both heads


def test_compare_strategies_quick(tmp_path):
    table = compare_strategies(
        sets=["digits"],
        strategies=["top", "diversity"],
        seeds=[0],
        cycles=2,
        n_per_cycle=10,
        quick=True,
        output=tmp_path,
    )
    assert set(table["strategy"]) == {"top", "diversity"}
    top = table[(table["strategy"] == "top") & (table["cycle"] == 2)]
    assert top["n_shown"][0] == 20 and top["anomalies_found"][0] >= 5
    assert (tmp_path / "strategies.ecsv").exists()


def _fake_galaxy_mnist(folder, n_per_class=30, seed=0):
    """A tiny GalaxyMNIST-layout copy: class k is a Gaussian blob of width 3 + 4 k pixels, plus noise."""
    import h5py

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), n_per_class).astype(np.uint8)
    yy, xx = np.mgrid[:64, :64] - 31.5
    widths = 3.0 + 4.0 * labels
    blobs = np.exp(-(yy**2 + xx**2)[None] / (2 * widths[:, None, None] ** 2))
    images = 200 * blobs[..., None] + rng.normal(20, 5, (len(labels), 64, 64, 3))
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "train_dataset.hdf5", "w") as f:
        f.create_dataset("images", data=np.clip(images, 0, 255).astype(np.uint8))
        f.create_dataset("labels", data=labels)


def test_protocol_on_local_galaxy_mnist(tmp_path):
    _fake_galaxy_mnist(tmp_path / "data" / "GalaxyMNIST")
    table = run_protocol(
        sets=["galaxy_mnist"],
        seeds=[0],
        cycles=1,
        methods=["probe"],
        anomaly_classes=["unbarred_spiral"],
        local_data=tmp_path / "data",
        output=tmp_path / "out",
    )
    assert set(table["set"]) == {"galaxy_mnist"} and set(table["anomaly_class"]) == {"unbarred_spiral"}
    assert list(table["cycle"]) == [0, 1]
    assert table["anomaly_fraction"][0] == 0.25
    assert table["auroc"][0] > 0.9  # the widest blobs are easy to tell apart
    assert (tmp_path / "out" / "protocol.ecsv").exists()


def test_protocol_local_data_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="--local-data"):
        run_protocol(sets=["galaxy_mnist"], methods=["probe"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no GalaxyMNIST or miniImageNet copy"):
        run_protocol(sets=["digits"], methods=["probe"], local_data=tmp_path / "empty")


def test_protocol_held_out_split(tmp_path):
    table = run_protocol(sets=["digits"], seeds=[0], cycles=3, methods=["probe"], quick=True, held_out=0.5)
    assert list(table["cycle"]) == [0, 1, 2, 3]
    assert np.all(np.isfinite(table["auroc"]))  # digits' ~30 anomalies no longer run out by cycle 3
    assert np.all(table["held_out"] == 0.5)
    # each cycle labels 10 false positives at least (anomalies while the pool has them)
    assert np.all(np.diff(table["n_labelled"]) >= 10) and table["n_labelled"][0] == 105
    with pytest.raises(InvalidInputError, match="held_out"):
        run_protocol(sets=["digits"], methods=["probe"], held_out=1.5)


def test_protocol_shares_embeddings_between_methods(monkeypatch):
    """Methods with the same frozen embeddings get them through the session's public keywords."""
    from anomalymatch_astro import active_learning

    given = []
    original = active_learning.ActiveLearningSession.__init__

    def spy(self, cutouts, **kwargs):
        given.append(kwargs.get("embeddings") is not None)
        original(self, cutouts, **kwargs)

    monkeypatch.setattr(active_learning.ActiveLearningSession, "__init__", spy)
    table = run_protocol(sets=["digits"], seeds=[0], cycles=0, methods=["probe", "knn"], quick=True, progress=False)
    assert given == [False, True]  # the second method reuses the first one's embeddings
    assert set(table["method"]) == {"probe", "knn"}


def test_summarize_protocol_means_over_seeds():
    from astropy.table import Table

    rows = [
        {
            "set": "s",
            "method": "probe",
            "cycle": 0,
            "held_out": 0.0,
            "anomaly_fraction": 0.1,
            "auroc": a,
            "auprc": 0.5,
            "precision_at_1pct": 1.0,
            "found_in_first_100": 3.0,
            "train_seconds": 1.0,
        }
        for a in (0.8, 0.9)
    ]
    summary = summarize_protocol(Table(rows=rows))
    assert len(summary) == 1 and summary["n_runs"][0] == 2
    assert summary["auroc_mean"][0] == pytest.approx(0.85)
    assert summary["auroc_std"][0] == pytest.approx(np.std([0.8, 0.9], ddof=1))


def test_unknown_set_and_method():
    with pytest.raises(InvalidInputError, match="unknown benchmark set"):
        run_protocol(sets=["nope"], methods=["probe"])
    with pytest.raises(InvalidInputError, match="unknown method"):
        run_protocol(sets=["digits"], methods=["nope"])
    assert "multilevel" in METHODS


def test_summarize_protocol_by_variant_with_the_real_sky_columns():
    from astropy.table import Table

    from anomalymatch_astro.cli._benchmark import format_protocol_table

    rows = [
        {
            "set": "xdf_arcs",
            "method": "multilevel",
            "variant": variant,
            "cycle": 1,
            "held_out": 0.5,
            "anomaly_fraction": 0.04,
            "auroc": a,
            "auprc": 0.2,
            "precision_at_1pct": 0.4,
            "found_in_first_100": 3.0,
            "distinct_top50": d,
            "artefacts_top24": 2.0,
            "train_seconds": 1.0,
        }
        for variant, a, d in (("default", 0.7, 48.0), ("default", 0.8, 46.0), ("group", 0.75, 50.0))
    ]
    summary = summarize_protocol(Table(rows=rows))
    assert list(summary["variant"]) == ["default", "group"]
    assert summary["auroc_mean"][0] == pytest.approx(0.75) and summary["distinct_top50_mean"][0] == 47.0
    assert summary["artefacts_top24_mean"][1] == 2.0
    text = format_protocol_table(Table(rows=rows))
    assert "systems/50" in text and "group" in text


def test_real_sky_protocols_and_variants():
    for kind in ("arcs", "mergers", "trails", "colour"):
        classes, n_anom, n_norm, options = PROTOCOLS[f"xdf_{kind}"]
        assert classes == (kind,) and options["held_out"] == 0.5 and options["n_anomalies"] > n_anom
    assert set(VARIANTS) >= {"default", "mask", "background", "group", "crop", "zoom"}
    with pytest.raises(InvalidInputError, match="unknown variant"):
        run_protocol(sets=["digits"], methods=["probe"], variants=["nope"])


def test_zoom_variant_gives_the_sessions_centre_views(monkeypatch):
    """``zoom``: every method's session embeds the centre view too; shared embeddings keep both views."""
    from anomalymatch_astro import active_learning

    seen = []
    original = active_learning.ActiveLearningSession.__init__

    def spy(self, cutouts, **kwargs):
        original(self, cutouts, **kwargs)
        seen.append((kwargs.get("zoom"), kwargs.get("embeddings") is not None, self))

    monkeypatch.setattr(active_learning.ActiveLearningSession, "__init__", spy)
    table = run_protocol(
        sets=["digits"], seeds=[0], cycles=0, methods=["probe", "knn"], variants=["zoom"], quick=True, progress=False
    )
    assert [(z, shared) for z, shared, _ in seen] == [((0.5,), False), ((0.5,), True)]
    first, second = seen[0][2], seen[1][2]
    assert first.embedding_blocks == [1280, 1280] and second.embedding_blocks == [1280, 1280]
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    assert set(table["variant"]) == {"zoom"} and np.all(table["auroc"] > 0.9)


def test_head_blocks_of_each_view():
    from anomalymatch_astro.benchmarking._cycles import _head_blocks

    emb = np.arange(2 * 12, dtype=float).reshape(2, 12)
    head, blocks = _head_blocks(emb, [3, 2, 1, 3, 2, 1], 2)  # two views of [head 3, stage 2, stage 1]
    np.testing.assert_array_equal(head, emb[:, [0, 1, 2, 6, 7, 8]])
    assert blocks == [3, 3]
    head, blocks = _head_blocks(emb, [8, 4], 1)
    np.testing.assert_array_equal(head, emb[:, :8])
    assert blocks is None
    head, blocks = _head_blocks(emb, [3, 2, 3, 2, 2], 2, profile=True)  # two views of [head 3, stage 2], a profile 2
    np.testing.assert_array_equal(head, emb[:, [0, 1, 2, 5, 6, 7, 10, 11]])
    assert blocks == [3, 3, 2]


def test_profile_variant_appends_the_residual_profile(monkeypatch):
    """``profile``: the session embeds the centre view and appends the residual profile as the last block."""
    from anomalymatch_astro import active_learning
    from anomalymatch_astro.embeddings import profile_width

    seen = []
    original = active_learning.ActiveLearningSession.__init__

    def spy(self, cutouts, **kwargs):
        original(self, cutouts, **kwargs)
        seen.append((kwargs.get("zoom"), kwargs.get("profile"), self))

    monkeypatch.setattr(active_learning.ActiveLearningSession, "__init__", spy)
    table = run_protocol(
        sets=["digits"], seeds=[0], cycles=0, methods=["probe"], variants=["profile"], quick=True, progress=False
    )
    ((zoom, profile, session),) = seen
    assert zoom == (0.5,) and profile is True
    assert session.embedding_blocks == [1280, 1280, profile_width(len(session.cutouts.bands))]
    assert set(table["variant"]) == {"profile"} and np.all(table["auroc"] > 0.9)
    assert {"mask_zoom", "mask_profile", "mask_blend"} <= set(VARIANTS)
