"""Shared pieces of the runner's end-to-end tests: the schema check, starting and stopping
processes, and a fresh environment for a driver."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

from benchmark.tracking import EPOCH_METRICS, experiment_name
from benchmark.trial import flatten_trial

HERE = Path(__file__).parent
REPO = HERE.parents[1]
# The sizes of the smoke suite's MNIST-1D grid: every harness test shares one cached task.
MNIST1D_SIZES = "n_train = 56\nn_val = 28\nn_test = 56"
MNIST1D_RESOLUTIONS = [24, 32, 40, 48, 56, 64, 72]


def mnist1d_suite(models: list[str], epochs: int, seeds: list[int] | None = None) -> str:
    """A suite TOML of small, checkpointed MNIST-1D trials (width 0.25, 4 batches of 8 per
    epoch) on the shared harness sizes: what the resume and cluster tests interrupt."""
    seed_line = f"seeds = {seeds}\n" if seeds is not None else ""
    return (f'[[grid]]\ntasks = ["mnist1d_scale"]\nmodels = {json.dumps(models)}\n{seed_line}'
            f"[grid.trial]\nepochs = {epochs}\nwidth = 0.25\nbatch_size = 8\n"
            f"train_batches = 4\nequiv_images = 4\n{MNIST1D_SIZES}\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def driver_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a driver or server started by a test: its own HOME (Ray writes its
    token there), one thread, the helper models importable."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "RAY_AUTH_MODE")}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(HERE), str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def start(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a process in its own process group (its children join it), output to ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(process: subprocess.Popen, first: int = signal.SIGTERM) -> None:
    """Stop a process started by ``start`` and every process left in its group."""
    try:
        os.killpg(process.pid, first)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run_driver(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 240,
               ) -> tuple[int, str]:
    """``python -m benchmark.run ARGS`` to its end; (exit code, output)."""
    log = cwd / f"driver-{len(list(cwd.glob('driver-*.log')))}.log"
    process = start([sys.executable, "-m", "benchmark.run", *args], cwd, env, log)
    try:
        process.wait(timeout=timeout)
    finally:
        stop(process, signal.SIGKILL)
    return process.returncode, log.read_text()


def checkpointed_epochs(db: Path, model: str) -> int:
    """Epochs of ``model``'s RUNNING run that have a checkpoint recorded (0 if none yet)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            rows = connection.execute(
                "SELECT MAX(m.step) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                "JOIN tags c ON c.run_uuid = r.run_uuid JOIN metrics m "
                "ON m.run_uuid = r.run_uuid WHERE r.status = 'RUNNING' AND t.key = 'sefl.model' "
                "AND t.value = ? AND c.key = 'sefl.checkpoint' AND m.key = 'val/acc'",
                (model,)).fetchall()
    except sqlite3.OperationalError as err:
        # The driver is still creating or migrating the store's tables (MLflow adds columns in
        # later migrations), or writing: ask again shortly.
        if any(m in str(err) for m in ("no such table", "no such column", "locked")):
            return 0
        raise
    return rows[0][0] or 0


def trial_runs(client: MlflowClient, suite: str) -> tuple[list, list]:
    """(child runs, parent runs) of a suite's experiment."""
    experiment = client.get_experiment_by_name(experiment_name(suite))
    runs = client.search_runs([experiment.experiment_id])
    return ([r for r in runs if "sefl.task" in r.data.tags],
            [r for r in runs if "sefl.task" not in r.data.tags])


def expected_final_metrics(resolutions: list[int], measured: dict[str, list[int]]) -> set[str]:
    """The final metric names of DESIGN.md's schema for a task and the resolutions each block
    was measured at (trial.json's ``equiv_measured_resolutions``)."""
    names = {"test/acc", "scale/consistency",
             "params/count", "time/train_s", "time/eval_s", "throughput/train_img_s",
             "throughput/eval_img_s", "data/n_train", "data/n_val", "data/n_test"}
    names |= {f"test/acc/res_{r}" for r in resolutions}
    first, last = measured["block_1"], measured[f"block_{len(measured)}"]
    for prefix in ("equiv/err", "equiv/err_bicubic"):
        names |= {prefix} if last else set()  # a block measured nowhere logs nothing
        names |= {f"{prefix}/first"} if first else set()
        names |= {f"{prefix}/res_{r}" for r in last} | {f"{prefix}/first/res_{r}" for r in first}
        names |= {f"{prefix}/block_{i}" for i, rs in enumerate(measured.values(), 1) if rs}
    return names


def check_finished_run(client: MlflowClient, run, suite: str, epochs: int,
                       resolutions: list[int]) -> None:
    """Every tag, param, metric and artifact of a FINISHED trial's run (DESIGN.md)."""
    import json

    tags, params = run.data.tags, run.data.params
    assert run.info.status == "FINISHED", (run.info.run_name, tags.get("sefl.error"))
    assert run.info.run_name == f"{tags['sefl.task']}/{tags['sefl.model']}/s{tags['sefl.seed']}"
    assert tags["sefl.suite"] == suite and tags["sefl.version"] and tags["sefl.hardware"]
    assert len(tags["sefl.trial_key"]) == 64 and "sefl.error" not in tags
    assert "mlflow.parentRunId" in tags
    folder = Path(client.download_artifacts(run.info.run_id, "trial.json"))
    record = json.loads(folder.read_text())
    assert params == flatten_trial(record["trial"])
    assert record["key"] == tags["sefl.trial_key"]
    measured = record["info"]["equiv_measured_resolutions"]
    assert len(measured) >= 1 and all(set(rs) < set(resolutions) for rs in measured.values())
    final = expected_final_metrics(resolutions, measured)
    assert set(run.data.metrics) == final | set(EPOCH_METRICS)
    assert {k: run.data.metrics[k] for k in final} == record["metrics"]
    for name in EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == list(
            range(1, epochs + 1)), name
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == [
        "model.pt", "per_resolution.csv", "trial.json"]
