"""Seaborn figures of a suite, each written as PNG and SVG.

Every function takes the finished runs and ``labels`` (run id -> row label of a table, from
``ResultTable.run_labels``) so a curve is named exactly like its table row and covers the same
runs. Bands and error bars are one sd over seeds. Functions return None when the runs carry
none of the metrics the figure needs.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from reports import schema
from reports.load import metric_column

__all__ = [
    "LOG_FLOOR",
    "accuracy_by_resolution",
    "accuracy_vs_equivariance",
    "data_efficiency",
    "equivariance_by_block",
    "equivariance_by_model",
    "save_figure",
    "validation_curves",
]

# Exactly equivariant models can reach an error of 0, which a log axis cannot draw.
LOG_FLOOR = 1e-12


def _labelled(runs: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    picked = runs[runs["run_id"].isin(labels)].copy()
    picked["label"] = picked["run_id"].map(labels)
    return picked


def _melt(runs: pd.DataFrame, labels: dict[str, str], prefix: str) -> pd.DataFrame:
    """Metrics ``<prefix><int>`` as rows: columns label, run_id, index, value."""
    pattern = re.compile(re.escape(metric_column(prefix)) + r"(\d+)$")
    columns = {c: int(m.group(1)) for c in runs.columns if (m := pattern.match(c))}
    picked = _labelled(runs, labels)
    if not columns or picked.empty:
        return pd.DataFrame(columns=["label", "run_id", "index", "value"])
    long = picked.melt(id_vars=["label", "run_id"], value_vars=list(columns),
                       var_name="metric", value_name="value").dropna(subset=["value"])
    long["index"] = long["metric"].map(columns)
    return long[["label", "run_id", "index", "value"]]


def _figure(title: str) -> tuple[Figure, plt.Axes]:
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.set_title(title)
    return fig, ax


def _palette(labels: list[str]) -> dict[str, tuple]:
    # tab10 repeats after ten models; a full zoo needs distinct colours for every curve.
    name = "tab10" if len(labels) <= 10 else "tab20" if len(labels) <= 20 else "husl"
    return dict(zip(labels, sns.color_palette(name, len(labels))))


def _legend(ax: plt.Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)


def _floored(values: pd.Series, ax: plt.Axes) -> pd.Series:
    if (values < LOG_FLOOR).any():
        ax.text(0.01, 0.01, f"values below {LOG_FLOOR:g} drawn at {LOG_FLOOR:g}",
                transform=ax.transAxes, fontsize=7)
    return values.clip(lower=LOG_FLOOR)


def accuracy_by_resolution(runs: pd.DataFrame, labels: dict[str, str], title: str
                           ) -> Figure | None:
    """Test accuracy (%) against test resolution, one mean line and sd band per model."""
    long = _melt(runs, labels, schema.TEST_ACC_RES_PREFIX)
    if long.empty:
        return None
    long["value"] *= 100
    fig, ax = _figure(f"{title}: accuracy by test resolution")
    sns.lineplot(long, x="index", y="value", hue="label",
                 palette=_palette(sorted(long["label"].unique())), errorbar="sd", marker="o",
                 ax=ax)
    ax.set(xlabel="test resolution", ylabel="accuracy (%)")
    _legend(ax)
    return fig


def equivariance_by_model(runs: pd.DataFrame, labels: dict[str, str], title: str
                          ) -> Figure | None:
    """Equivariance error of the last block per model (log axis), mean and sd over seeds."""
    picked = _labelled(runs, labels)
    column = metric_column(schema.EQUIV_ERR)
    if column not in picked.columns or picked[column].isna().all():
        return None
    picked = picked.dropna(subset=[column])
    fig, ax = _figure(f"{title}: equivariance error (last block)")
    picked["value"] = _floored(picked[column], ax)
    order = sorted(picked["label"].unique())
    sns.pointplot(picked, x="label", y="value", hue="label", order=order, palette=_palette(order),
                  errorbar="sd", linestyle="none", capsize=0.2, legend=False, ax=ax)
    ax.set_yscale("log")
    ax.set(xlabel="", ylabel="equivariance error")
    plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
    return fig


def equivariance_by_block(runs: pd.DataFrame, labels: dict[str, str], title: str
                          ) -> Figure | None:
    """Equivariance error after each block (log axis), one line per model."""
    long = _melt(runs, labels, schema.EQUIV_ERR_BLOCK_PREFIX)
    if long.empty:
        return None
    fig, ax = _figure(f"{title}: equivariance error per block")
    long["value"] = _floored(long["value"], ax)
    sns.lineplot(long, x="index", y="value", hue="label",
                 palette=_palette(sorted(long["label"].unique())), errorbar="sd", marker="o",
                 ax=ax)
    ax.set_yscale("log")
    ax.set(xlabel="block", ylabel="equivariance error")
    ax.xaxis.get_major_locator().set_params(integer=True)
    _legend(ax)
    return fig


def accuracy_vs_equivariance(runs: pd.DataFrame, labels: dict[str, str], title: str
                             ) -> Figure | None:
    """One point per model: accuracy (%) against equivariance error, sd error bars."""
    picked = _labelled(runs, labels)
    acc, err = metric_column(schema.TEST_ACC), metric_column(schema.EQUIV_ERR)
    if err not in picked.columns:
        return None
    picked = picked.dropna(subset=[acc, err])
    if picked.empty:
        return None
    fig, ax = _figure(f"{title}: accuracy against equivariance error")
    picked["err"] = _floored(picked[err], ax)
    picked["acc"] = picked[acc] * 100
    stats = picked.groupby("label")[["err", "acc"]].agg(["mean", "std"]).fillna(0.0)
    colours = _palette(list(stats.index))
    for label, row in stats.iterrows():
        ax.errorbar(row[("err", "mean")], row[("acc", "mean")], xerr=row[("err", "std")],
                    yerr=row[("acc", "std")], fmt="o", capsize=3, color=colours[label],
                    label=label)
    ax.set_xscale("log")
    ax.set(xlabel="equivariance error", ylabel="accuracy (%)")
    _legend(ax)
    return fig


def data_efficiency(runs: pd.DataFrame, labels: dict[str, str], title: str) -> Figure | None:
    """Test accuracy (%) against the number of training images (log axis), per model."""
    picked = _labelled(runs, labels)
    column = "params.n_train"
    if column not in picked.columns or picked[column].isna().all():
        return None
    picked = picked.dropna(subset=[column])
    picked["value"] = picked[metric_column(schema.TEST_ACC)] * 100
    fig, ax = _figure(f"{title}: accuracy by training-set size")
    sns.lineplot(picked, x=column, y="value", hue="label",
                 palette=_palette(sorted(picked["label"].unique())), errorbar="sd", marker="o",
                 ax=ax)
    ax.set_xscale("log")
    ax.set(xlabel="training images", ylabel="accuracy (%)")
    _legend(ax)
    return fig


def validation_curves(history: pd.DataFrame, labels: dict[str, str], title: str
                      ) -> Figure | None:
    """Validation accuracy (%) per epoch, mean line and sd band per model.

    history: columns run_id, step (epoch), value (from load_history).
    """
    picked = _labelled(history, labels)
    if picked.empty:
        return None
    picked["value"] = picked["value"] * 100
    fig, ax = _figure(f"{title}: validation accuracy per epoch")
    sns.lineplot(picked, x="step", y="value", hue="label",
                 palette=_palette(sorted(picked["label"].unique())), errorbar="sd", ax=ax)
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    _legend(ax)
    return fig


def save_figure(fig: Figure, out_dir: Path, stem: str) -> Path:
    """Write ``<stem>.png`` and ``<stem>.svg`` under ``out_dir``, close the figure, return PNG."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{stem}.png"
    fig.savefig(png, dpi=100, bbox_inches="tight")
    fig.savefig(out_dir / f"{stem}.svg", bbox_inches="tight")
    plt.close(fig)
    return png
