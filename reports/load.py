"""Read a suite's runs from MLflow into tidy pandas frames.

One row per child run (a trial). Identity comes from the ``sefl.*`` tags (task, model, seed,
trial key, version, error), then ``params.<name>`` (the flattened trial dict, numbers parsed)
and ``metrics.<name>`` (final values; MLflow keeps the last value of per-epoch metrics).
Nothing is dropped silently: FAILED and unfinished runs are kept in their own frames, and
FINISHED runs missing required metrics are listed with what they miss.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.trial import TRIAL_FIELDS
from reports import schema

__all__ = ["ADDED_PARAMS", "ReportInputError", "SuiteRuns", "load_history", "load_suite",
           "metric_column"]

# Trial fields added after runs were recorded -> what a run without the param trained with (the
# field's default), so that it is the same trial as a newer run that records that value.
ADDED_PARAMS = {name: TRIAL_FIELDS[name][1] for name in ("batching",)}
_TAG_COLUMNS = {
    schema.TAG_TASK: "task",
    schema.TAG_MODEL: "model",
    schema.TAG_SEED: "seed",
    schema.TAG_TRIAL_KEY: "trial_key",
    schema.TAG_VERSION: "version",
    schema.TAG_CODE: "code",
    schema.TAG_ERROR: "error",
    "mlflow.runName": "run_name",
}


class ReportInputError(ValueError):
    """The store, the experiment or its runs cannot make a report (the CLI exits 2 on it)."""


@dataclass(frozen=True)
class SuiteRuns:
    """A suite's runs, split by what the report does with them.

    finished: the latest FINISHED run of each trial that has ``test/acc`` (the table rows): per
    trial key, and then per trial (task, model, seed and params), so that the result of newer
    code replaces the one of older code instead of counting as a second seed;
    superseded: the FINISHED runs so replaced;
    failed: every FAILED run; unfinished: runs neither FINISHED nor FAILED (RUNNING, KILLED);
    both with ``finished_later``: whether their trial finished on a rerun or resume;
    missing: FINISHED runs lacking required metrics, with a ``missing`` column naming them;
    parents: the per-invocation parent runs (provenance only).
    """

    suite: str
    experiment_name: str
    experiment_id: str
    tracking_uri: str
    trials: pd.DataFrame
    finished: pd.DataFrame
    superseded: pd.DataFrame
    failed: pd.DataFrame
    unfinished: pd.DataFrame
    missing: pd.DataFrame
    parents: pd.DataFrame


def metric_column(name: str) -> str:
    """The tidy frame's column of MLflow metric ``name``."""
    return f"metrics.{name}"


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    # mlflow.search_runs reads the global tracking URI; restore it so callers are unaffected.
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def _check_store(tracking_uri: str) -> None:
    # Opening a missing sqlite file would create an empty store and hide the user's mistake.
    if not schema.store_exists(tracking_uri):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        raise ReportInputError(
            f"--tracking-uri {tracking_uri}: no MLflow store at {path}; run "
            "`python -m benchmark.run --suite <name>` first or point --tracking-uri at the store"
        )


def _parse_params(frame: pd.DataFrame) -> pd.DataFrame:
    # MLflow stores params as strings; numbers become numbers so n_train sorts and compares.
    for column in [c for c in frame.columns if c.startswith("params.")]:
        values = frame[column].replace({"None": None, "": None})
        try:
            frame[column] = pd.to_numeric(values)
        except (ValueError, TypeError):
            frame[column] = values
    for name, value in ADDED_PARAMS.items():
        if f"params.{name}" in frame.columns:
            frame[f"params.{name}"] = frame[f"params.{name}"].fillna(value)
    return frame


def _tidy(raw: pd.DataFrame) -> pd.DataFrame:
    frame = raw.rename(columns={f"tags.{tag}": name for tag, name in _TAG_COLUMNS.items()})
    for name in _TAG_COLUMNS.values():
        if name not in frame.columns:
            frame[name] = None
    hardware = [c for c in frame.columns if c.startswith(f"tags.{schema.TAG_HARDWARE_PREFIX}")]
    frame["hardware"] = [
        "; ".join(sorted(str(v) for v in row if pd.notna(v)))
        for row in frame[hardware].itertuples(index=False)
    ]
    frame["seed"] = pd.to_numeric(frame["seed"], errors="coerce").astype("Int64")
    keep = ["run_id", "status", "start_time", "end_time", *_TAG_COLUMNS.values(), "hardware"]
    data = [c for c in frame.columns if c.startswith(("params.", "metrics."))]
    return _parse_params(frame[keep + sorted(data)].copy())


def _missing_metrics(finished: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, run in finished.iterrows():
        lacking = [
            m for m in schema.REQUIRED_METRICS
            if metric_column(m) not in run.index or pd.isna(run[metric_column(m)])
        ]
        if lacking:
            rows.append({**run[["run_id", "run_name", "task", "model", "seed"]].to_dict(),
                         "missing": ", ".join(lacking)})
    return pd.DataFrame(rows, columns=["run_id", "run_name", "task", "model", "seed", "missing"])


def load_suite(suite: str, tracking_uri: str) -> SuiteRuns:
    """Load experiment ``sefl-bench/<suite>`` from the store at ``tracking_uri``.

    Raises ReportInputError for a missing store, an unknown experiment or one without trial
    runs; a store that only has unusable runs still loads (the caller decides).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    _check_store(tracking_uri)
    name = schema.experiment_name(suite)
    with _tracking_uri(tracking_uri):
        try:
            experiment = mlflow.get_experiment_by_name(name)
            if experiment is None:
                known = sorted(
                    e.name for e in mlflow.search_experiments()
                    if e.name.startswith(schema.EXPERIMENT_PREFIX)
                )
                raise ReportInputError(
                    f"--suite {suite}: no experiment {name!r} in {tracking_uri}; experiments "
                    f"there: {', '.join(known) or 'none'}"
                )
            raw = mlflow.search_runs(experiment_ids=[experiment.experiment_id])
        except MlflowException as err:
            raise ReportInputError(f"--tracking-uri {tracking_uri}: {err.message}") from err
    task_tag = f"tags.{schema.TAG_TASK}"
    is_trial = raw[task_tag].notna() if task_tag in raw.columns else pd.Series(False, raw.index)
    if not is_trial.any():
        raise ReportInputError(
            f"--suite {suite}: experiment {name!r} has no trial runs (child runs tagged "
            f"{schema.TAG_TASK}); run `python -m benchmark.run --suite {suite}` first"
        )
    trials = _tidy(raw[is_trial])
    done = trials[trials["status"] == "FINISHED"].sort_values("start_time")
    latest = done.drop_duplicates("trial_key", keep="last") if len(done) else done
    # Two keys of one trial are two versions of the code (the key hashes the code).
    trial = ["task", "model", "seed", *[c for c in latest.columns if c.startswith("params.")]]
    newest = ~latest.duplicated(trial, keep="last")
    superseded, latest = latest[~newest], latest[newest]
    acc = metric_column(schema.TEST_ACC)
    usable = latest[latest[acc].notna()] if acc in latest.columns else latest.iloc[0:0]
    # A failed or interrupted run whose trial finished on a rerun or resume is history, not
    # a hole in the tables; say which is which.
    finished_keys = set(done["trial_key"])
    failed = trials[trials["status"] == "FAILED"].copy()
    failed["finished_later"] = failed["trial_key"].isin(finished_keys)
    unfinished = trials[~trials["status"].isin(["FINISHED", "FAILED"])].copy()
    unfinished["finished_later"] = unfinished["trial_key"].isin(finished_keys)
    return SuiteRuns(
        suite=suite,
        experiment_name=name,
        experiment_id=experiment.experiment_id,
        tracking_uri=tracking_uri,
        trials=trials,
        finished=usable.reset_index(drop=True),
        superseded=superseded.reset_index(drop=True),
        failed=failed.reset_index(drop=True),
        unfinished=unfinished.reset_index(drop=True),
        missing=_missing_metrics(latest),
        parents=_tidy(raw[~is_trial]),
    )


def load_history(runs: SuiteRuns, metric: str = schema.VAL_ACC) -> pd.DataFrame:
    """Per-step values of ``metric`` for every finished run: columns run_id, step, value."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(runs.tracking_uri)
    rows = [
        {"run_id": run_id, "step": point.step, "value": point.value}
        for run_id in runs.finished["run_id"]
        for point in client.get_metric_history(run_id, metric)
    ]
    return pd.DataFrame(rows, columns=["run_id", "step", "value"])
