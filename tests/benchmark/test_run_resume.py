"""Resume: SIGKILL the driver in the middle of a suite; the same command again finishes only
what is missing, continues the interrupted trial from its checkpoint, and leaves one FINISHED
run per trial. The driver runs as a user's first run would: its own HOME, Ray's default
authentication (it creates its token there)."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from harness_checks import (
    MNIST1D_RESOLUTIONS,
    check_finished_run,
    checkpointed_epochs,
    driver_env,
    mnist1d_suite,
    run_driver,
    start,
    stop,
    trial_runs,
)
from mlflow import MlflowClient

EPOCHS = 4
SUITE = mnist1d_suite(["harness_models:tiny", "harness_models:slow"], EPOCHS)


def test_kill_driver_then_resume(tmp_path, tmp_path_factory):
    suite = tmp_path / "resume.toml"
    suite.write_text(SUITE)
    env = driver_env(tmp_path / "home")
    args = ["--suite", str(suite), "--num-cpus", "2", "--storage", str(tmp_path / "ray"),
            "--data-dir", str(tmp_path_factory.getbasetemp() / "harness-data")]
    db = tmp_path / "mlflow.db"

    driver = start([sys.executable, "-m", "benchmark.run", *args], tmp_path, env,
                   tmp_path / "killed.log")
    try:
        deadline = time.monotonic() + 180
        while not 1 <= checkpointed_epochs(db, "harness_models:slow") < EPOCHS - 1:
            assert driver.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the slow trial never checkpointed"
            time.sleep(0.2)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        stop(driver, signal.SIGKILL)  # the local Ray the driver started

    code, out = run_driver(args, tmp_path, env)
    assert code == 0, out[-3000:]

    client = MlflowClient(f"sqlite:///{db}")
    children, parents = trial_runs(client, "resume")
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["sefl.model"] for r in finished) == [
        "harness_models:slow", "harness_models:tiny"]  # one FINISHED run per trial
    assert {r.info.status for r in children} <= {"FINISHED", "KILLED"}
    killed = [r for r in children if r.info.status == "KILLED"]
    assert "harness_models:slow" in {r.data.tags["sefl.model"] for r in killed}
    assert sorted(p.info.status for p in parents) == ["FINISHED", "KILLED"]
    for run in finished:
        check_finished_run(client, run, "resume", EPOCHS, MNIST1D_RESOLUTIONS)
    slow = next(r for r in finished if r.data.tags["sefl.model"] == "harness_models:slow")
    record = json.loads(Path(client.download_artifacts(slow.info.run_id, "trial.json"))
                        .read_text())
    assert 1 <= record["resumed_from"] < EPOCHS  # continued, not started again
    assert (tmp_path / "home" / ".ray" / "auth_token").is_file()  # Ray's default token auth
