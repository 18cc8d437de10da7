"""Ray Tune runs the trials; a callback on the driver records them in MLflow and shows progress.

One Tuner over the suite's explicit trial dicts (a grid over the list, FIFO scheduler, no early
stopping), each trial wrapped with the resources asked for. Everything MLflow gets is written
here, on the driver, from Tune's events: a child run when a trial starts, its epochs as they
are reported (each epoch once per run, also when a resumed trial reports its history again),
the latest checkpoint's location, and at the end its final metrics and artifacts, or its error.

When the cluster dies under the driver (``benchmark.cluster.ClusterWatch``), the trials that
have not ended are closed KILLED, not FAILED (a dead cluster is not their error), and the
caller's ``on_cluster_lost`` gets the outcomes so far; Tune cannot return by itself then.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import cloudpickle, tune

from benchmark.cluster import ClusterWatch
from benchmark.progress import Progress
from benchmark.tracking import StoreUnavailable, Tracker
from benchmark.trainable import checkpoint_uri, train_in_tune
from benchmark.trial import trial_name

__all__ = ["Entry", "Outcome", "RecordingCallback", "run_entries"]


@dataclass(frozen=True)
class Entry:
    """A trial to run: the normalised dict, its key and where to resume it from (or None)."""

    trial: dict[str, Any]
    key: str
    resume_from: str | None = None

    @property
    def name(self) -> str:
        return trial_name(self.trial)


@dataclass
class Outcome:
    """How a trial ended: status "finished", "failed", "killed" or "cached". A killed trial's
    ``epochs``: the last epoch it logged in this invocation (0: none yet), None when it never
    started."""

    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    epochs: int | None = None


def _error_of(trial) -> tuple[str, str | None]:
    """A one-line message and the whole traceback of a trial's error.

    Read from the driver's copy of the trial's error files: Tune writes them there before it
    calls back, and syncs them to its storage only later.
    """
    if trial.pickled_error_file and Path(trial.pickled_error_file).is_file():
        error = cloudpickle.loads(Path(trial.pickled_error_file).read_bytes())
        # Ray wraps the trainable's exception; its cause is what the trial raised.
        cause = getattr(error, "cause", None) or error
        lines = f"{type(cause).__name__}: {cause}".strip().splitlines()
        return lines[0], str(error)
    if trial.error_file and Path(trial.error_file).is_file():
        details = Path(trial.error_file).read_text()
        return details.strip().splitlines()[-1], details
    return "the trial failed without an error report", None


def _recording(method):
    """One event at a time (the watch closes the records from its own thread), none once the
    cluster is lost; a store that stays away stops the suite (``run_entries`` re-raises)."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        with self._lock:
            if self.lost is None and self.store_lost is None:
                try:
                    method(self, *args, **kwargs)
                except StoreUnavailable as err:
                    self.store_lost = err
                    raise

    return guarded


class RecordingCallback(tune.Callback):
    """Tune events -> MLflow runs (through ``Tracker``) and the progress display."""

    def __init__(self, tracker: Tracker, parent_id: str, progress: Progress,
                 watch: ClusterWatch | None = None):
        self.tracker, self.parent_id, self.progress = tracker, parent_id, progress
        self.watch = watch
        self.run_ids: dict[str, str] = {}
        self.epochs_logged: dict[str, int] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.lost: str | None = None  # what happened to the cluster, once it is gone
        self.store_lost: StoreUnavailable | None = None
        self._lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with its state; a lock and a thread do not pickle.
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "watch")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.RLock(), watch=None)

    def close_unfinished(self, entries: Sequence[Entry], lost: str | None = None,
                         ) -> dict[str, Outcome]:
        """Close the runs of trials that have not ended KILLED (they resume from their
        checkpoints); with ``lost``, record nothing after this. Every entry's outcome."""
        with self._lock:
            for entry in entries:
                if entry.key not in self.outcomes:
                    if entry.key in self.run_ids:
                        self.tracker.kill_trial(self.run_ids[entry.key])
                    self.outcomes[entry.key] = Outcome(
                        "killed", epochs=self.epochs_logged.get(entry.key))
            self.lost = self.lost or lost
            return dict(self.outcomes)

    @staticmethod
    def _entry(trial) -> Entry:
        spec = trial.config["entry"]
        return Entry(trial=spec["trial"], key=spec["key"], resume_from=spec["resume_from"])

    @_recording
    def on_trial_start(self, iteration, trials, trial, **info):
        entry = self._entry(trial)
        if entry.key not in self.run_ids:  # Tune restarts a trial it retries
            self.run_ids[entry.key] = self.tracker.start_trial(
                self.parent_id, entry.trial, entry.key,
                resources=trial.placement_group_factory.required_resources,
                data_dir=trial.config["entry"]["data_dir"])
            self.epochs_logged[entry.key] = 0
        self.progress.started(entry.name)

    @_recording
    def on_trial_result(self, iteration, trials, trial, result, **info):
        key = self._entry(trial).key
        if result.get("sefl_kind") == "epoch" and result["epoch"] > self.epochs_logged[key]:
            self.tracker.log_epoch(self.run_ids[key], result)
            self.epochs_logged[key] = int(result["epoch"])

    @_recording
    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        key = self._entry(trial).key
        self.tracker.set_tag(self.run_ids[key], "sefl.checkpoint", checkpoint_uri(checkpoint))

    @_recording
    def on_trial_recover(self, iteration, trials, trial, **info):
        entry = self._entry(trial)
        self.progress.note(f"retrying {entry.name}: {_error_of(trial)[0]}")

    @_recording
    def on_trial_complete(self, iteration, trials, trial, **info):
        entry = self._entry(trial)
        run_id = self.run_ids[entry.key]
        error = (trial.last_result or {}).get("sefl_error")
        if error is not None:  # a deterministic error, reported instead of raised: no retry
            self.tracker.fail_trial(run_id, error, trial.last_result.get("sefl_traceback"))
            self.outcomes[entry.key] = Outcome("failed", error=error)
            self.progress.failed_trial(entry.name, error)
            return
        try:
            with trial.checkpoint.as_directory() as folder:
                metrics = self.tracker.finish_trial(run_id, entry.key, Path(folder))
        except (OSError, KeyError, ValueError, AttributeError) as err:
            # A trial that ended without its result (or whose result could not be recorded)
            # has not finished.
            message = f"no result recorded: {type(err).__name__}: {err}"
            self.tracker.fail_trial(run_id, message, None)
            self.outcomes[entry.key] = Outcome("failed", error=message)
            self.progress.failed_trial(entry.name, message)
            return
        self.outcomes[entry.key] = Outcome("finished", metrics=metrics)
        self.progress.finished(entry.name)

    @_recording
    def on_trial_error(self, iteration, trials, trial, **info):
        entry = self._entry(trial)
        if self.watch is not None and self.watch.dead():
            return  # the cluster went: the watch closes the run KILLED
        message, details = _error_of(trial)
        self.tracker.fail_trial(self.run_ids[entry.key], message, details)
        self.outcomes[entry.key] = Outcome("failed", error=message)
        self.progress.failed_trial(entry.name, message)

    @_recording
    def on_step_end(self, iteration, trials, **info):
        self.progress.tick()


def _dirname(trial) -> str:
    entry = trial.config["entry"]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", trial_name(entry["trial"]))
    return f"{name}-{entry['key'][:8]}"


def run_entries(
    entries: Sequence[Entry],
    *,
    tracker: Tracker,
    parent_id: str,
    progress: Progress,
    experiment: str,
    storage: str,
    cpus_per_trial: float,
    gpu_shares: Mapping[str, float],
    max_failures: int,
    data_dir: str,
    cache_dir: str | None,
    version: str,
    verbose: bool,
    on_cluster_lost: Callable[[dict[str, Outcome], str], None],
) -> dict[str, Outcome]:
    """Run ``entries`` with Tune on the connected Ray cluster; their outcomes by key.

    Trials that neither finished nor failed (Ctrl-C) come back "killed": their runs are closed
    KILLED and the next invocation continues them from their last checkpoint. Raises
    ``StoreUnavailable`` (its ``outcomes``: the trials that ended) when the store stayed away. When the
    cluster dies, ``on_cluster_lost(outcomes, what happened)`` is called from the watch's
    thread and must end the process (Tune's loop on the main thread never returns).
    """
    callback = RecordingCallback(tracker, parent_id, progress)

    def lost(problem: str) -> None:
        on_cluster_lost(callback.close_unfinished(entries, lost=problem), problem)

    callback.watch = ClusterWatch(lost)
    space = [{"trial": e.trial, "key": e.key, "resume_from": e.resume_from,
              "data_dir": data_dir, "cache_dir": cache_dir, "version": version}
             for e in entries]
    def resources(config: dict[str, Any]) -> tune.PlacementGroupFactory:
        # A trial's GPU share depends on its task (benchmark.cluster.gpu_share).
        task = config["entry"]["trial"]["task"]
        return tune.PlacementGroupFactory([{"CPU": cpus_per_trial,
                                            "GPU": gpu_shares.get(task, 0.0)}])

    trainable = tune.with_resources(train_in_tune, resources)
    tuner = tune.Tuner(
        trainable,
        param_space={"entry": tune.grid_search(space)},
        # Reusing workers spares each trial the imports of torch and the zoo.
        tune_config=tune.TuneConfig(trial_dirname_creator=_dirname, reuse_actors=True),
        run_config=tune.RunConfig(
            name=experiment,
            storage_path=storage,
            callbacks=[callback],
            verbose=2 if verbose else 0,
            failure_config=tune.FailureConfig(max_failures=max_failures),
            # Two, not one: Tune deletes the previous checkpoint when it registers a new one,
            # before on_checkpoint re-tags the run; with one kept, a cluster lost in between
            # leaves the tag naming a deleted folder and the trial restarts from epoch 0.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        ),
    )
    callback.watch.start()
    try:
        tuner.fit()
    except Exception:
        if callback.store_lost is None:
            raise
    finally:
        callback.watch.stop()
    if callback.store_lost is not None:
        # Nothing more can be recorded; what finished is, and says so.
        callback.store_lost.outcomes = dict(callback.outcomes)
        raise callback.store_lost
    return callback.close_unfinished(entries)
