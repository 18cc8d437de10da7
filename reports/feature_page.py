"""The leaderboard page's feature-map figures: per task, the grid of ``reports.features`` for the
suite's best SEFL run and best baseline (highest test accuracy), drawn from their recorded
weights. Runs without weights, or a task whose data is absent here, give a note instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reports import schema
from reports.feature_models import LoadedModel, has_weights, model_from_run
from reports.features import draw_features, figure_stem, task_image
from reports.load import metric_column
from reports.tables import TASK_TITLES

__all__ = ["SEFL_MODEL", "FeatureSection", "best_runs", "feature_section"]

SEFL_MODEL = "sefl"
BLOCK, CHANNEL, IMAGE = 1, "mean", 0


@dataclass(frozen=True)
class FeatureSection:
    """figures: (caption, PNG, GIF) per task drawn; notes: why something was not drawn."""

    figures: list[tuple[str, Path, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def best_runs(finished: pd.DataFrame, task: str) -> list[pd.Series]:
    """The best SEFL run and the best baseline run of ``task`` (those that exist), by test
    accuracy."""
    runs = finished[finished["task"] == task].sort_values(
        metric_column(schema.TEST_ACC), ascending=False, kind="stable")
    sefl = runs[runs["model"] == SEFL_MODEL]
    baselines = runs[runs["model"] != SEFL_MODEL]
    return [group.iloc[0] for group in (sefl, baselines) if len(group)]


def _draw(task: str, loaded: list[LoadedModel], out_dir: Path, data_dir: str | None):
    from benchmark.train import build_task
    from benchmark.trial import normalize_trial

    built = build_task(normalize_trial(loaded[0].trial), data_dir)
    models = {column.label: column.model for column in loaded}
    return draw_features(models, task_image(built, IMAGE), built.resolutions, out_dir,
                         f"features_{figure_stem(task, IMAGE, BLOCK, CHANNEL)}", BLOCK, CHANNEL)


def feature_section(finished: pd.DataFrame, tracking_uri: str, out_dir: Path,
                    data_dir: str | None = None) -> FeatureSection:
    """Draw each task's figure under ``out_dir`` (images from the best SEFL run's task; data
    from ``data_dir``, None: ``$SEFL_DATA_DIR`` or ``./data``)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    section = FeatureSection()
    for task in [t for t in TASK_TITLES if t in set(finished["task"])]:
        title = TASK_TITLES[task]
        runs = best_runs(finished, task)
        usable = [run for run in runs if has_weights(client, run["run_id"])]
        section.notes.extend(
            f"{title}: run {run['run_name']} ({run['run_id'][:8]}) recorded no weights "
            "(model.pt), so it is not drawn" for run in runs
            if not any(run["run_id"] == u["run_id"] for u in usable))
        if not usable:
            continue
        try:
            loaded = [model_from_run(run["run_id"], tracking_uri) for run in usable]
            figures = _draw(task, loaded, out_dir, data_dir)
        except ValueError as err:  # FeatureInputError, or the task's data absent here
            section.notes.append(f"{title}: feature maps not drawn: {err}")
            continue
        caption = (f"Feature maps across resolutions, {title}: "
                   + " vs ".join(column.label for column in figures.maps.columns)
                   + f" (block {BLOCK}, channel mean; e = equivariance error)")
        section.figures.append((caption, figures.png, figures.gif))
    return section
