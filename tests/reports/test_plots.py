"""Figures: every one written as a non-empty PNG and SVG; None when the metrics are absent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reports import plots

TASKS = ("mnist_scale", "stl10_scale", "mnist1d_scale")
STEMS = [f"{kind}_{task}" for task in TASKS for kind in (
    "accuracy_by_resolution", "equivariance_by_model", "equivariance_by_block",
    "accuracy_vs_equivariance", "validation")] + ["data_efficiency"]


@pytest.mark.parametrize("stem", STEMS)
def test_figure_files(report_dir: Path, stem: str) -> None:
    png = report_dir / "plots" / f"{stem}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5000  # axes, lines and text, not a blank canvas
    assert "<svg" in (report_dir / "plots" / f"{stem}.svg").read_text()[:1000]


def test_only_the_expected_figures(report_dir: Path) -> None:
    assert sorted(p.stem for p in (report_dir / "plots").glob("*.png")) == sorted(STEMS)


@pytest.mark.parametrize(
    "figure",
    [plots.accuracy_by_resolution, plots.equivariance_by_model, plots.equivariance_by_block,
     plots.accuracy_vs_equivariance, plots.data_efficiency],
)
def test_no_figure_without_its_metrics(figure) -> None:
    runs = pd.DataFrame({"run_id": ["a", "b"], "metrics.test/acc": [0.9, 0.8]})
    assert figure(runs, {"a": "cnn", "b": "cnn"}, "T") is None


def test_log_axes_draw_zero_errors_at_the_floor() -> None:
    runs = pd.DataFrame({"run_id": ["a", "b"], "metrics.equiv/err": [0.0, 0.5]})
    fig = plots.equivariance_by_model(runs, {"a": "sefl", "b": "cnn"}, "T")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    texts = [t.get_text() for t in ax.texts]
    assert texts == [f"values below {plots.LOG_FLOOR:g} drawn at {plots.LOG_FLOOR:g}"]
    plots.plt.close(fig)
