"""Ctrl-C: SIGINT to the driver while one trial trains and another waits for a CPU. It exits 130,
its summary says how far the running trial got and that the waiting one never started, and the
running trial's MLflow run is closed KILLED with its checkpoint, ready to resume."""

from __future__ import annotations

import signal
import sys
import time

from harness_checks import checkpointed_epochs, driver_env, mnist1d_suite, start, stop, trial_runs
from mlflow import MlflowClient

EPOCHS = 6
SUITE = mnist1d_suite(["harness_models:slow", "harness_models:tiny"], EPOCHS)


def _row(output: str, model: str) -> str:
    rows = [line for line in output.splitlines() if line.startswith("mnist1d_scale") and
            f" {model} " in line]
    assert len(rows) == 1, output[-3000:]
    return rows[0]


def test_ctrl_c_reports_how_far_each_trial_got(tmp_path, tmp_path_factory):
    suite = tmp_path / "interrupt.toml"
    suite.write_text(SUITE)
    db = tmp_path / "mlflow.db"
    log = tmp_path / "driver.log"
    args = ["--suite", str(suite), "--num-cpus", "1", "--storage", str(tmp_path / "ray"),
            "--data-dir", str(tmp_path_factory.getbasetemp() / "harness-data")]
    driver = start([sys.executable, "-m", "benchmark.run", *args], tmp_path,
                   driver_env(tmp_path / "home"), log)
    try:
        deadline = time.monotonic() + 180
        while not 1 <= checkpointed_epochs(db, "harness_models:slow") < EPOCHS - 1:
            assert driver.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the slow trial never checkpointed"
            time.sleep(0.2)
        driver.send_signal(signal.SIGINT)  # what Ctrl-C sends the driver
        code = driver.wait(timeout=90)
    finally:
        stop(driver, signal.SIGKILL)  # the local Ray the driver started
    output = log.read_text()

    assert code == 130, output[-3000:]
    slow = _row(output, "harness_models:slow")
    epoch = int(slow.split("interrupted at epoch ")[1].split()[0])
    assert 1 <= epoch < EPOCHS, slow
    assert "not started" in _row(output, "harness_models:tiny")
    assert "0 finished, 0 cached, 0 failed, 2 interrupted" in output

    children, parents = trial_runs(MlflowClient(f"sqlite:///{db}"), "interrupt")
    assert [(r.data.tags["sefl.model"], r.info.status) for r in children] == [
        ("harness_models:slow", "KILLED")]  # the waiting trial left no run
    assert "sefl.checkpoint" in children[0].data.tags
    assert [p.info.status for p in parents] == ["KILLED"]
