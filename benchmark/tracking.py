"""MLflow records of a suite, written by the driver only (DESIGN.md "MLflow schema").

Experiment ``sefl-bench/<suite>``; a parent run per invocation (tags ``sefl.suite``,
``sefl.version``); a child run per trial named ``<task>/<model>/s<seed>`` with tags
``sefl.trial_key``, ``sefl.task``, ``sefl.model``, ``sefl.seed``, ``sefl.suite``,
``sefl.version``, ``sefl.code`` (the code fingerprint, ``benchmark.trial.code_fingerprint``),
``sefl.hardware`` and, on failure, ``sefl.error``; the trial dict flattened
as params; per-epoch metrics at step = epoch; final metrics; artifacts ``trial.json``,
``per_resolution.csv`` and ``model.pt`` (the best-validation weights, a torch state_dict).

One tag beyond the schema serves resuming: ``sefl.checkpoint``, where the trial's latest
checkpoint lies. Parent runs also carry ``sefl.command`` and, when they end, the metrics
``trials/*`` (counts), ``time/suite_s`` (wall time of the invocation) and
``time/trials_train_s``, ``time/trials_eval_s`` (the trials' own times, summed).

The experiment carries the tag ``mlflow.experimentKind = custom_model_development`` (MLflow 3's
UI then opens it in its model-training view), and each child run the task as a dataset input
(name: the task, digest: of the fields that decide its data, source: the data folder).
Importing this module turns MLflow's artifact progress bars off (one bar per downloaded
artifact otherwise, in ``reports``) unless ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` is set.

A store can be away for a while (a tracking server restarting): every call to it is retried with
backoff for up to ``SEFL_TRACKING_RETRY_S`` seconds (default ``TRACKING_RETRY_S``), after which
``StoreUnavailable`` is raised; MLflow's own HTTP retries (minutes per call) are turned down so
that this bound holds.

Only drivers write (through a Tune callback), never the trials. Several drivers may share a
store: a driver claims each trial before it runs it (``Tracker.claim``) and leaves alone the
trials another live driver claimed. A claim is a param ``claim.<trial key>.<generation>`` =
the claiming driver's parent run id, on the one run of the experiment
``sefl-bench/<suite>/claims``; MLflow refuses to change a param's value, so of two drivers
writing the same generation exactly one succeeds, on sqlite, PostgreSQL or a server alike.
A claim lives as long as its driver: the parent run is RUNNING, its ``sefl.heartbeat`` tag
(milliseconds, renewed every ``HEARTBEAT_S``) is younger than ``CLAIM_TTL_S``, and its
``sefl.driver`` tag (``host:pid``) names a process that is still there when the host is this
one. A dead driver's claims are taken over by writing the next generation.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from benchmark.trial import canonical_json, flatten_trial, trial_name

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

__all__ = [
    "CLAIM_TTL_S",
    "DEFAULT_TRACKING_URI",
    "EPOCH_METRICS",
    "HEARTBEAT_S",
    "TRACKING_RETRY_S",
    "Heartbeat",
    "StoreUnavailable",
    "Tracker",
    "claims_experiment_name",
    "experiment_name",
    "store_exists",
]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EPOCH_METRICS = ("train/loss", "train/acc", "val/acc", "lr", "time/epoch_s")
_ERROR_TAG_CHARS = 1000  # the tag holds the message; the whole traceback goes to error.txt
TRACKING_RETRY_S = 120.0  # a server restart takes seconds; an outage longer than this stops
HEARTBEAT_S = 20.0
# Long enough for a driver stalled by a slow store (writes retried for minutes are rarer than
# this), short enough that a crashed driver's trials are picked up soon.
CLAIM_TTL_S = 120.0
_CLAIMS_RUN_WAIT_S = 10.0
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# The trial fields that decide a task's data (the seed decides only the order of batches).
TASK_FIELDS = ("task", "protocol", "n_train", "n_val", "n_test", "task_options")  # how long to wait for another driver creating the claims run


def experiment_name(suite: str) -> str:
    """The MLflow experiment of a suite."""
    return f"sefl-bench/{suite}"


def claims_experiment_name(suite: str) -> str:
    """The MLflow experiment holding the claims of a suite's trials."""
    return f"{experiment_name(suite)}/claims"


def driver_identity() -> str:
    """``host:pid`` of this process, as recorded on its parent run."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, alive
        return True
    return True


class StoreUnavailable(Exception):
    """The tracking store did not answer for longer than the retry bound."""


def _transient(err: Exception) -> bool:
    """Whether ``err`` says the store is away for now (not that the request was wrong)."""
    from mlflow.exceptions import MlflowException

    if isinstance(err, MlflowException):
        text = str(err.message)
        return err.error_code == "TEMPORARILY_UNAVAILABLE" or (
            text.startswith("API request to") and ("failed with exception" in text or
                                                   "failed with error code 5" in text))
    return isinstance(err, OSError)  # requests' connection errors are OSErrors


class _Retrying:
    """An MlflowClient whose calls are retried with backoff while the store is away."""

    def __init__(self, client, what: str):
        self._client, self._what = client, what

    def __getattr__(self, name: str):
        if name.startswith("_"):  # not yet set (unpickling): no client to ask
            raise AttributeError(name)
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def retried(*args, **kwargs):
            bound = float(os.environ.get("SEFL_TRACKING_RETRY_S", TRACKING_RETRY_S))
            deadline, pause = time.monotonic() + bound, 0.5
            while True:
                try:
                    return method(*args, **kwargs)
                except Exception as err:
                    if not _transient(err):
                        raise
                    if time.monotonic() + pause > deadline:
                        raise StoreUnavailable(
                            f"the MLflow store {self._what} did not answer for {bound:g} s "
                            f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from err
                    time.sleep(pause)
                    pause = min(2 * pause, 10.0)

        return retried

    def __getstate__(self):  # Tune pickles the callback holding the tracker
        return self.__dict__

    def __setstate__(self, state):
        self.__dict__.update(state)


@contextlib.contextmanager
def _machine_lock(path: Path) -> Iterator[None]:
    """An exclusive lock, among this machine's processes, named after ``path``."""
    import fcntl
    import hashlib
    import tempfile

    name = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"sefl-bench-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def store_exists(tracking_uri: str) -> bool:
    """False for a sqlite store whose file does not exist yet (reading would create it)."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).is_file()
    return True


def _now_ms() -> int:
    return int(time.time() * 1000)


class Tracker:
    """The MLflow side of one invocation of the runner, for one suite."""

    def __init__(self, tracking_uri: str, suite: str, version: str, code: str | None = None):
        from mlflow import MlflowClient

        if tracking_uri.startswith("sqlite:///"):
            # A client opening a new sqlite store creates its tables; two drivers doing it at
            # once break MLflow's migration, so one at a time on this machine.
            with _machine_lock(Path(tracking_uri.removeprefix("sqlite:///")).resolve()):
                self.client = _Retrying(MlflowClient(tracking_uri), tracking_uri)
        else:
            self.client = _Retrying(MlflowClient(tracking_uri), tracking_uri)
        self.tracking_uri, self.suite, self.version, self.code = tracking_uri, suite, version, code
        self._experiment_id: str | None = None

    # -- reading --------------------------------------------------------------------------

    def experiment_id(self, create: bool) -> str | None:
        """The suite's experiment id; created when missing and ``create``, else None."""
        if self._experiment_id is None:
            experiment = self.client.get_experiment_by_name(experiment_name(self.suite))
            if experiment is not None:
                self._experiment_id = experiment.experiment_id
                if create and not EXPERIMENT_KIND.items() <= experiment.tags.items():
                    for name, value in EXPERIMENT_KIND.items():  # made by an older version
                        self.client.set_experiment_tag(self._experiment_id, name, value)
            elif create:
                self._experiment_id = self.client.create_experiment(experiment_name(self.suite),
                                                                    tags=EXPERIMENT_KIND)
        return self._experiment_id

    def _runs(self, status: str, where: str | None = None) -> Iterator[Any]:
        """The experiment's runs with ``status`` (and the filter ``where``), newest first."""
        experiment = self.experiment_id(create=False)
        if experiment is None:
            return
        token = None
        query = f"attributes.status = '{status}'" + (f" and {where}" if where else "")
        while True:
            page = self.client.search_runs([experiment], query,
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

    def driver_alive(self, parent_run, me: str | None = None) -> bool:
        """Whether the driver of ``parent_run`` (an invocation's run) still runs; ``me``: the
        parent run id of this process, whose pid a dead driver's record may share."""
        tags = parent_run.data.tags
        if parent_run.info.status != "RUNNING" or "sefl.heartbeat" not in tags:
            return False
        host, _, pid = tags.get("sefl.driver", "").rpartition(":")
        if host == socket.gethostname() and pid.isdigit() and (
                not _pid_alive(int(pid))
                or (int(pid) == os.getpid() and parent_run.info.run_id != me)):
            return False
        return _now_ms() - int(tags["sefl.heartbeat"]) < CLAIM_TTL_S * 1000

    def stale(self) -> list[Any]:
        """Runs still RUNNING whose driver is gone (killed, or its machine lost)."""
        running = list(self._runs("RUNNING"))
        parents = {r.info.run_id: r for r in running if "sefl.trial_key" not in r.data.tags}
        alive: dict[str, bool] = {}

        def of(parent_id: str | None) -> bool:
            if parent_id not in alive:
                parent = parents.get(parent_id) if parent_id else None
                alive[parent_id] = parent is not None and self.driver_alive(parent)
            return alive[parent_id]

        return [r for r in running if not of(r.data.tags.get("mlflow.parentRunId")
                                               if "sefl.trial_key" in r.data.tags
                                               else r.info.run_id)]

    # -- writing (drivers only) -----------------------------------------------------------

    def kill_stale(self) -> int:
        """Mark runs left RUNNING by a dead driver as KILLED; how many there were."""
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
                  "sefl.command": command, "sefl.driver": driver_identity(),
                  "sefl.heartbeat": str(_now_ms())},
        )
        return run.info.run_id

    def beat(self, parent_id: str) -> None:
        """Renew the heartbeat of this driver's claims."""
        self.client.set_tag(parent_id, "sefl.heartbeat", str(_now_ms()))

    def _claims_run(self) -> str:
        """The one run holding the suite's claims. The driver that creates the claims
        experiment (exactly one can) creates it; the others wait for it."""
        from mlflow.exceptions import MlflowException

        name = claims_experiment_name(self.suite)
        try:
            experiment = self.client.create_experiment(name)
            return self.client.create_run(experiment, run_name="trial claims").info.run_id
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        experiment = self.client.get_experiment_by_name(name).experiment_id
        deadline = time.monotonic() + _CLAIMS_RUN_WAIT_S
        while True:
            runs = self.client.search_runs([experiment], order_by=["attributes.start_time ASC"],
                                           max_results=1)
            if runs:
                return runs[0].info.run_id
            if time.monotonic() > deadline:  # its creator died in between
                return self.client.create_run(experiment, run_name="trial claims").info.run_id
            time.sleep(0.2)

    def claim(self, keys: list[str], parent_id: str) -> set[str]:
        """Claim the trials ``keys`` for the driver of run ``parent_id``; the keys it now
        holds. A key claimed by another driver that is alive is left to it."""
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException

        claims_run = self._claims_run()
        latest: dict[str, tuple[int, str]] = {}  # key -> (generation, owner)

        def read() -> None:
            for name, owner in self.client.get_run(claims_run).data.params.items():
                _, key, generation = name.split(".")
                if int(generation) > latest.get(key, (0, ""))[0]:
                    latest[key] = (int(generation), owner)

        owners: dict[str, bool] = {parent_id: True}

        def alive(owner: str) -> bool:
            if owner not in owners:
                try:
                    owners[owner] = self.driver_alive(self.client.get_run(owner), parent_id)
                except MlflowException:  # its run was deleted
                    owners[owner] = False
            return owners[owner]

        read()
        wanted = {key: latest.get(key, (0, ""))[0] + 1 for key in keys
                  if key not in latest or not alive(latest[key][1])}
        params = [Param(f"claim.{key}.{gen}", parent_id) for key, gen in wanted.items()]
        try:  # one transaction when no other driver is claiming the same trials now
            for start in range(0, len(params), 100):
                self.client.log_batch(claims_run, params=params[start:start + 100])
        except MlflowException:
            for param in params:  # one by one: MLflow lets exactly one writer have each
                try:
                    self.client.log_param(claims_run, param.key, param.value)
                except MlflowException as err:
                    if err.error_code != "INVALID_PARAMETER_VALUE":
                        raise
        read()
        return {key for key in keys if latest.get(key, (0, ""))[1] == parent_id}

    def end_parent(self, run_id: str, status: str, metrics: Mapping[str, float]) -> None:
        """Close the invocation's run with its counts and times."""
        self._log_metrics(run_id, metrics, step=0)
        self.client.set_terminated(run_id, status)

    def start_trial(self, parent_id: str, trial: Mapping[str, Any], key: str,
                    resources: Mapping[str, float] | None = None,
                    data_dir: str | None = None) -> str:
        """A child run for ``trial``, with its tags, params and its task as dataset input
        (source ``data_dir``); ``resources``: what Ray gave it (``{"CPU": 1, "GPU": 0.25}``),
        recorded as tag ``sefl.resources``."""
        tags = {"mlflow.parentRunId": parent_id, "sefl.trial_key": key,
                "sefl.task": trial["task"], "sefl.model": trial["model"],
                "sefl.seed": str(trial["seed"]), "sefl.suite": self.suite,
                "sefl.version": self.version}
        if self.code:
            tags["sefl.code"] = self.code
        if resources:
            tags["sefl.resources"] = " ".join(f"{k.lower()}={v:g}"
                                              for k, v in sorted(resources.items()))
        run = self.client.create_run(self.experiment_id(create=True), run_name=trial_name(trial),
                                     tags=tags)
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flatten_trial(trial).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run.info.run_id, params=params[start:start + 100])
        if data_dir is not None:
            self.client.log_inputs(run.info.run_id, [task_dataset(trial, data_dir)])
        return run.info.run_id

    def _log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int,
                     tags: list | None = None) -> None:
        from mlflow.entities import Metric

        now = _now_ms()
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for start in range(0, max(len(batch), 1), 1000):
            self.client.log_batch(run_id, metrics=batch[start:start + 1000],
                                  tags=(tags or []) if start == 0 else [])

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
        import tempfile

        from mlflow.entities import RunTag

        result = json.loads((result_dir / "result.json").read_text())
        metrics = result["metrics"]
        # One call per kind of write: a driver's time per trial is mostly these round trips.
        self._log_metrics(run_id, metrics, step=int(result["info"]["epochs_trained"]),
                          tags=[RunTag("sefl.hardware", result["info"]["device"])])
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "trial.json").write_text(json.dumps(result, indent=1))
            (Path(folder) / "per_resolution.csv").write_text(_csv(result["per_resolution"]))
            (Path(folder) / "model.pt").symlink_to((result_dir / "model.pt").resolve())
            self.client.log_artifacts(run_id, folder)
        self.client.set_terminated(run_id, "FINISHED")
        for run in self._runs("FINISHED", f"tags.`sefl.trial_key` = '{key}'"):
            if run.info.run_id != run_id:
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


def task_dataset(trial: Mapping[str, Any], data_dir: str):
    """The trial's task as an MLflow dataset input: name, digest, source."""
    import hashlib
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    digest = hashlib.sha256(canonical_json({f: trial[f] for f in TASK_FIELDS}).encode())
    with warnings.catch_warnings():  # two registered sources read local paths the same way
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(data_dir)
    dataset = MetaDataset(source, name=trial["task"], digest=digest.hexdigest()[:16])
    return DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", "task")])


class Heartbeat:
    """Renews a driver's heartbeat every ``HEARTBEAT_S`` on a thread of its own."""

    def __init__(self, tracker: Tracker, parent_id: str, every_s: float = HEARTBEAT_S):
        self.tracker, self.parent_id, self.every_s = tracker, parent_id, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def _beat(self) -> None:
        from mlflow.exceptions import MlflowException

        while not self._stop.wait(self.every_s):
            try:
                self.tracker.beat(self.parent_id)
            except (MlflowException, StoreUnavailable):
                pass  # the driver's own writes say so; a later beat may get through

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def _csv(rows: list[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["resolution"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
