"""MLflow records of a suite, written by the driver only (DESIGN.md "MLflow schema").

Experiment ``sefl-bench/<suite>``; a parent run per invocation (tags ``sefl.suite``,
``sefl.version``); a child run per trial named ``<task>/<model>/s<seed>`` with tags
``sefl.trial_key``, ``sefl.task``, ``sefl.model``, ``sefl.seed``, ``sefl.suite``,
``sefl.version``, ``sefl.hardware`` and, on failure, ``sefl.error``; the trial dict flattened
as params; per-epoch metrics at step = epoch; final metrics; artifacts ``trial.json``,
``per_resolution.csv`` and ``model.pt`` (the best-validation weights, a torch state_dict).

One tag beyond the schema serves resuming: ``sefl.checkpoint``, where the trial's latest
checkpoint lies. Parent runs also carry ``sefl.command`` and, when they end, the metrics
``trials/*`` (counts), ``time/suite_s`` (wall time of the invocation) and
``time/trials_train_s``, ``time/trials_eval_s`` (the trials' own times, summed).

Only the driver writes (through a Tune callback), so a sqlite store never has two writers.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from benchmark.trial import flatten_trial, trial_name

__all__ = ["DEFAULT_TRACKING_URI", "EPOCH_METRICS", "Tracker", "experiment_name",
           "store_exists"]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EPOCH_METRICS = ("train/loss", "train/acc", "val/acc", "lr", "time/epoch_s")
_ERROR_TAG_CHARS = 1000  # the tag holds the message; the whole traceback goes to error.txt


def experiment_name(suite: str) -> str:
    """The MLflow experiment of a suite."""
    return f"sefl-bench/{suite}"


def store_exists(tracking_uri: str) -> bool:
    """False for a sqlite store whose file does not exist yet (reading would create it)."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).is_file()
    return True


def _now_ms() -> int:
    return int(time.time() * 1000)


class Tracker:
    """The MLflow side of one invocation of the runner, for one suite."""

    def __init__(self, tracking_uri: str, suite: str, version: str):
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.tracking_uri, self.suite, self.version = tracking_uri, suite, version
        self._experiment_id: str | None = None

    # -- reading --------------------------------------------------------------------------

    def experiment_id(self, create: bool) -> str | None:
        """The suite's experiment id; created when missing and ``create``, else None."""
        if self._experiment_id is None:
            experiment = self.client.get_experiment_by_name(experiment_name(self.suite))
            if experiment is not None:
                self._experiment_id = experiment.experiment_id
            elif create:
                self._experiment_id = self.client.create_experiment(experiment_name(self.suite))
        return self._experiment_id

    def _runs(self, status: str) -> Iterator[Any]:
        """The experiment's runs with ``status``, newest first."""
        experiment = self.experiment_id(create=False)
        if experiment is None:
            return
        token = None
        while True:
            page = self.client.search_runs([experiment], f"attributes.status = '{status}'",
                                           max_results=1000, order_by=["attributes.start_time DESC"],
                                           page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def finished(self) -> dict[str, Any]:
        """trial key -> its FINISHED run (the newest one)."""
        runs: dict[str, Any] = {}
        for run in self._runs("FINISHED"):
            key = run.data.tags.get("sefl.trial_key")
            if key is not None:
                runs.setdefault(key, run)
        return runs

    def resumable(self) -> dict[str, str]:
        """trial key -> checkpoint URI of its newest interrupted run (KILLED, or RUNNING: left
        so by a killed driver) that left a checkpoint."""
        found: dict[str, str] = {}
        runs = sorted([*self._runs("KILLED"), *self._runs("RUNNING")],
                      key=lambda run: run.info.start_time, reverse=True)
        for run in runs:
            key, checkpoint = (run.data.tags.get(t) for t in ("sefl.trial_key", "sefl.checkpoint"))
            if key is not None and checkpoint is not None:
                found.setdefault(key, checkpoint)
        return found

    def stale(self) -> list[Any]:
        """Runs still RUNNING: left so by a driver that was killed."""
        return list(self._runs("RUNNING"))

    # -- writing (driver only) ------------------------------------------------------------

    def kill_stale(self) -> int:
        """Mark runs left RUNNING by a killed driver as KILLED; how many there were."""
        runs = self.stale()
        for run in runs:
            self.client.set_terminated(run.info.run_id, "KILLED")
        return len(runs)

    def start_parent(self, command: str) -> str:
        """A run for this invocation; its children are the trials."""
        run = self.client.create_run(
            self.experiment_id(create=True),
            run_name=f"{self.suite} {time.strftime('%Y-%m-%d %H:%M:%S')}",
            tags={"sefl.suite": self.suite, "sefl.version": self.version,
                  "sefl.command": command},
        )
        return run.info.run_id

    def end_parent(self, run_id: str, status: str, metrics: Mapping[str, float]) -> None:
        """Close the invocation's run with its counts and times."""
        self._log_metrics(run_id, metrics, step=0)
        self.client.set_terminated(run_id, status)

    def start_trial(self, parent_id: str, trial: Mapping[str, Any], key: str) -> str:
        """A child run for ``trial``, with its tags and params."""
        run = self.client.create_run(
            self.experiment_id(create=True),
            run_name=trial_name(trial),
            tags={"mlflow.parentRunId": parent_id, "sefl.trial_key": key,
                  "sefl.task": trial["task"], "sefl.model": trial["model"],
                  "sefl.seed": str(trial["seed"]), "sefl.suite": self.suite,
                  "sefl.version": self.version},
        )
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flatten_trial(trial).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run.info.run_id, params=params[start:start + 100])
        return run.info.run_id

    def _log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = _now_ms()
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for start in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[start:start + 1000])

    def log_epoch(self, run_id: str, metrics: Mapping[str, float]) -> None:
        """The per-epoch metrics of ``EPOCH_METRICS`` at step = ``metrics["epoch"]``."""
        self._log_metrics(run_id, {k: metrics[k] for k in EPOCH_METRICS},
                          step=int(metrics["epoch"]))

    def set_tag(self, run_id: str, name: str, value: str) -> None:
        self.client.set_tag(run_id, name, value)

    def finish_trial(self, run_id: str, key: str, result_dir: Path) -> dict[str, float]:
        """Log a finished trial from its result folder (``result.json``, ``model.pt``), close
        the run FINISHED and delete older FINISHED runs of the same key (a ``--rerun``), so
        that a key never has two. Returns the final metrics."""
        result = json.loads((result_dir / "result.json").read_text())
        metrics = result["metrics"]
        self._log_metrics(run_id, metrics, step=int(result["info"]["epochs_trained"]))
        self.set_tag(run_id, "sefl.hardware", result["info"]["device"])
        self.client.log_dict(run_id, result, "trial.json")
        self.client.log_text(run_id, _csv(result["per_resolution"]), "per_resolution.csv")
        self.client.log_artifact(run_id, str(result_dir / "model.pt"))
        self.client.set_terminated(run_id, "FINISHED")
        for run in self._runs("FINISHED"):
            if run.data.tags.get("sefl.trial_key") == key and run.info.run_id != run_id:
                self.client.delete_run(run.info.run_id)
        return metrics

    def fail_trial(self, run_id: str, message: str, details: str | None) -> None:
        """Close a trial's run FAILED with its error message (and traceback as error.txt)."""
        self.set_tag(run_id, "sefl.error", message[:_ERROR_TAG_CHARS])
        if details:
            self.client.log_text(run_id, details, "error.txt")
        self.client.set_terminated(run_id, "FAILED")

    def kill_trial(self, run_id: str) -> None:
        """Close the run of a trial that was interrupted (it resumes from its checkpoint)."""
        self.client.set_terminated(run_id, "KILLED")


def _csv(rows: list[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["resolution"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
