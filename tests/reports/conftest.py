"""An MLflow sqlite store filled directly with the schema of DESIGN.md (no training).

Experiments (one store, so the database is created once):
- ``sefl-bench/paper``: the tables' runs, numbers chosen so means and sds are easy by hand
  (see RUNS); a parent run tagged with the hardware; two FAILED runs (one of them finished on
  a rerun), one KILLED run, and a run of a finished trial by older code (another key, and no
  ``batching`` param: the field came later) that the newer run supersedes;
- ``sefl-bench/partial``: one run missing two required metrics, one missing test/acc;
- ``sefl-bench/empty``: only a parent run; ``sefl-bench/broken``: only FAILED runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from reports.generate import build_report

HARDWARE = "cpu: test-cpu x2"
BASE_TIME = 1_700_000_000_000  # ms; runs start one second apart in RUNS order
CODE, OLD_CODE = "c0de" * 16, "01d0" * 16  # code fingerprints (sefl.code)
THROUGHPUT = {"throughput/train_img_s": 500.0, "throughput/eval_img_s": 2000.0,
              "time/train_s": 10.0}

# (task, model, seed, protocol, n_train, status, metrics) — fractions as the harness logs them;
# equiv/err is the last block's, the first block's (equiv/err/first) is a quarter of it.
RUNS = [
    ("mnist_scale", "sefl", 0, "fourier", 10000, "FINISHED",
     {"test/acc": 0.98, "scale/consistency": 0.96, "equiv/err": 1e-6, "params/count": 100000}),
    ("mnist_scale", "sefl", 1, "fourier", 10000, "FINISHED",
     {"test/acc": 0.99, "scale/consistency": 0.97, "equiv/err": 2e-6, "params/count": 100000}),
    ("mnist_scale", "sefl", 2, "fourier", 10000, "FAILED", {}),
    ("mnist_scale", "sefl", 2, "fourier", 10000, "FINISHED",
     {"test/acc": 0.97, "scale/consistency": 0.98, "equiv/err": 3e-6, "params/count": 100000}),
    ("mnist_scale", "cnn", 0, "fourier", 10000, "FINISHED",
     {"test/acc": 0.95, "scale/consistency": 0.60, "equiv/err": 0.5, "params/count": 494549}),
    ("mnist_scale", "cnn", 1, "fourier", 10000, "FINISHED",
     {"test/acc": 0.96, "scale/consistency": 0.70, "equiv/err": 0.7, "params/count": 494549}),
    ("mnist_scale", "cnn", 2, "fourier", 10000, "FAILED", {}),
    ("mnist_scale", "cnn", 0, "sesn", 10000, "FINISHED",
     {"test/acc": 0.97, "scale/consistency": 0.50, "equiv/err": 0.9, "params/count": 494549}),
    ("mnist_scale", "dss_scalar", 0, "fourier", 10000, "FINISHED",
     {"test/acc": 0.97, "scale/consistency": 0.65, "equiv/err": 0.3, "params/count": 494359}),
    # sicnn seed 0's trial run by older code (OLD_RUNS): the later run below supersedes it.
    ("mnist_scale", "sicnn", 0, "fourier", 10000, "FINISHED",
     {"test/acc": 0.10, "scale/consistency": 0.10, "equiv/err": 9.0, "params/count": 496639}),
    ("mnist_scale", "sicnn", 0, "fourier", 10000, "FINISHED",
     {"test/acc": 0.96, "scale/consistency": 0.50, "equiv/err": 0.2, "params/count": 496639}),
    ("mnist_scale", "sicnn", 1, "fourier", 10000, "FINISHED",
     {"test/acc": 0.98, "scale/consistency": 0.60, "equiv/err": 0.4, "params/count": 496639}),
    ("mnist_scale", "sicnn", 2, "fourier", 10000, "KILLED", {}),
    ("mnist_scale", "sefl", 0, "fourier", 1000, "FINISHED",
     {"test/acc": 0.95, "scale/consistency": 0.90, "equiv/err": 1e-6, "params/count": 100000}),
    ("mnist_scale", "sefl", 1, "fourier", 1000, "FINISHED",
     {"test/acc": 0.97, "scale/consistency": 0.90, "equiv/err": 1e-6, "params/count": 100000}),
    ("mnist_scale", "cnn", 0, "fourier", 1000, "FINISHED",
     {"test/acc": 0.85, "scale/consistency": 0.50, "equiv/err": 0.6, "params/count": 494549}),
    ("stl10_scale", "wrn_16_8", 0, "fourier", 7000, "FINISHED",
     {"test/acc": 0.55, "scale/consistency": 0.30, "equiv/err": 0.16, "params/count": 10961370}),
    ("stl10_scale", "wrn_16_8", 1, "fourier", 7000, "FINISHED",
     {"test/acc": 0.57, "scale/consistency": 0.28, "equiv/err": 0.18, "params/count": 10961370}),
    ("mnist1d_scale", "sefl", 0, "fourier", 4000, "FINISHED",
     {"test/acc": 0.80, "scale/consistency": 0.90, "equiv/err": 1e-7, "params/count": 20000}),
    ("mnist1d_scale", "cnn1d", 0, "fourier", 4000, "FINISHED",
     {"test/acc": 0.70, "scale/consistency": 0.40, "equiv/err": 0.3, "params/count": 21000}),
]

OLD_RUNS = {9}  # indices into RUNS of runs made by OLD_CODE

PARTIAL_RUNS = [
    ("mnist_scale", "cnn", 0, "fourier", 10000, "FINISHED",
     {"test/acc": 0.95, "scale/consistency": 0.60, "equiv/err": 0.5, "params/count": 494549}),
    ("mnist_scale", "cnn", 1, "fourier", 10000, "FINISHED",
     {"test/acc": 0.97, "params/count": 494549}),
    ("mnist_scale", "sefl", 0, "fourier", 10000, "FINISHED", {"params/count": 100000}),
]

BROKEN_RUNS = [
    ("mnist_scale", "cnn", 0, "fourier", 10000, "FAILED", {}),
    ("mnist_scale", "cnn", 1, "fourier", 10000, "FAILED", {}),
]


def _trial(task: str, model: str, seed: int, protocol: str, n_train: int) -> dict:
    width = 1.0 if model == "sefl" else 0.25
    return {"task": task, "protocol": protocol, "model": model, "seed": seed, "width": width,
            "epochs": 3, "batch_size": 128, "optimizer": "adamw" if model == "sefl" else "adam",
            "lr": 0.01, "n_train": n_train, "batching": "auto"}


def _log_trial(client, experiment_id: str, parent_id: str, index: int, run: tuple,
               code: str) -> None:
    from mlflow.entities import Metric, Param

    task, model, seed, protocol, n_train, status, finals = run
    trial = _trial(task, model, seed, protocol, n_train)
    if code == OLD_CODE:
        del trial["batching"]  # older code had no such field; it is the same trial all the same
    key = hashlib.sha256(json.dumps({"code": code, "trial": trial}, sort_keys=True).encode()
                         ).hexdigest()
    tags = {"sefl.task": task, "sefl.model": model, "sefl.seed": str(seed),
            "sefl.suite": "paper", "sefl.trial_key": key, "sefl.version": "0.1.0",
            "sefl.code": code, "mlflow.parentRunId": parent_id}
    if status == "FAILED":
        tags["sefl.error"] = f"RuntimeError: loss is NaN ({model} s{seed})"
    start = BASE_TIME + 1000 * index
    run_id = client.create_run(experiment_id, start_time=start, tags=tags,
                               run_name=f"{task}/{model}/s{seed}").info.run_id
    metrics = [Metric(k, float(v), start, 0) for k, v in finals.items()]
    if "test/acc" in finals:
        acc = finals["test/acc"]
        metrics += [Metric(k, v, start, 0) for k, v in THROUGHPUT.items()]
        metrics += [Metric(f"test/acc/res_{r}", acc - d, start, 0)
                    for r, d in ((8, 0.2), (16, 0.1), (28, 0.0))]
        metrics += [Metric("val/acc", acc - 0.1 * (2 - e), start, e) for e in range(3)]
    if "equiv/err" in finals:
        # Three blocks, each with half the error of the next: the first block's is err / 4.
        err = finals["equiv/err"]
        blocks = {b: err / 2 ** (3 - b) for b in (1, 2, 3)}
        metrics += [Metric(f"equiv/err/block_{b}", e, start, 0) for b, e in blocks.items()]
        metrics.append(Metric("equiv/err/first", blocks[1], start, 0))
    params = [Param(k, str(v)) for k, v in trial.items()]
    client.log_batch(run_id, metrics=metrics, params=params)
    client.set_terminated(run_id, status=status, end_time=start + 500)


def _experiment(client, suite: str, runs: list[tuple]) -> None:
    experiment_id = client.create_experiment(f"sefl-bench/{suite}")
    parent = client.create_run(experiment_id, start_time=BASE_TIME, run_name="invocation",
                               tags={"sefl.suite": suite, "sefl.hardware": HARDWARE})
    for index, run in enumerate(runs, start=1):
        code = OLD_CODE if suite == "paper" and index - 1 in OLD_RUNS else CODE
        _log_trial(client, experiment_id, parent.info.run_id, index, run, code)
    client.set_terminated(parent.info.run_id, status="FINISHED")


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sqlite store with the experiments paper, partial, empty and broken."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    client = MlflowClient(uri)
    for suite, runs in (("paper", RUNS), ("partial", PARTIAL_RUNS), ("empty", []),
                        ("broken", BROKEN_RUNS)):
        _experiment(client, suite, runs)
    return uri


@pytest.fixture(scope="session")
def report_dir(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of ``paper``, built once for every test that reads it."""
    out = tmp_path_factory.mktemp("report")
    report = build_report("paper", tracking_uri, out, "http://127.0.0.1:5000")
    assert report.problem is None
    return out


def _run_in_own_group(command: list[str], timeout: float, **popen) -> tuple[int, str]:
    """Run ``command`` in a new process group and kill the whole group when it is done.

    Chromium and Ray leave helper processes behind their main one (zygote, GPU process;
    raylet, GCS); they share its group, so none outlives the test. Returns (exit code, stdout).
    """
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                               start_new_session=True, **popen)
    try:
        out, _ = process.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    return process.returncode, out


@pytest.fixture(scope="session")
def run_in_own_group() -> Callable[..., tuple[int, str]]:
    """``run(command, timeout, **popen_kwargs) -> (exit code, stdout)``, nothing left running."""
    return _run_in_own_group


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "harness: runs the real harness (Ray, MLflow, training) end to end")
