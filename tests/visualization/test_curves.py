import numpy as np
import pytest
from matplotlib.figure import Figure

from anomalymatch_astro.utils.exceptions import InvalidInputError
from anomalymatch_astro.visualization._curves import plot_roc_pr, plot_score_histogram

RNG = np.random.default_rng(0)
TRUTH = RNG.random(200) < 0.1
SCORES = RNG.random(200) + 0.8 * TRUTH


def _png(fig, path):
    fig.savefig(path, dpi=50)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_roc_pr_new_figure(tmp_path):
    fig = plot_roc_pr(SCORES, TRUTH, label="probe")
    assert isinstance(fig, Figure)
    ax_roc, ax_pr = fig.axes
    legend = [t.get_text() for t in ax_roc.get_legend().get_texts()]
    from sklearn.metrics import average_precision_score, roc_auc_score

    assert f"probe: AUROC = {roc_auc_score(TRUTH, SCORES):.3f}" in legend
    pr_legend = [t.get_text() for t in ax_pr.get_legend().get_texts()]
    assert f"probe: AP = {average_precision_score(TRUTH, SCORES):.3f}" in pr_legend
    # the ROC curve ends at (1, 1); the chance line is drawn once
    x, y = ax_roc.lines[0].get_data()
    assert x[-1] == 1 and y[-1] == 1
    _png(fig, tmp_path / "roc.png")


def test_roc_pr_overlay_on_given_axes(tmp_path):
    fig = Figure()
    axes = fig.subplots(1, 2)
    out = plot_roc_pr(SCORES, TRUTH, ax=axes, label="a")
    assert out is fig
    plot_roc_pr(-SCORES, TRUTH, ax=axes, label="b")
    roc_lines = [ln for ln in axes[0].lines if ln.get_label() != "chance"]
    assert len(roc_lines) == 2
    assert sum(ln.get_label() == "chance" for ln in axes[0].lines) == 1
    assert sum(ln.get_label().startswith("anomaly fraction") for ln in axes[1].lines) == 1
    _png(fig, tmp_path / "overlay.png")


def test_roc_pr_errors():
    with pytest.raises(InvalidInputError, match="both"):
        plot_roc_pr([0.1, 0.2], [False, False])
    with pytest.raises(InvalidInputError, match="pair"):
        plot_roc_pr(SCORES, TRUTH, ax=Figure().subplots())
    with pytest.raises(InvalidInputError, match="NaN"):
        plot_roc_pr([0.1, np.nan], [True, False])


def test_score_histogram(tmp_path):
    fig = plot_score_histogram(SCORES, is_anomaly=TRUTH, bins=20)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"normal ({int((~TRUTH).sum())})", f"anomaly ({int(TRUTH.sum())})"]
    _png(fig, tmp_path / "hist.png")
    fig2 = Figure()
    ax2 = fig2.subplots()
    assert plot_score_histogram(SCORES, ax=ax2) is fig2
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == ["all (200)"]
    with pytest.raises(InvalidInputError, match="length"):
        plot_score_histogram(SCORES, is_anomaly=TRUTH[:5])
