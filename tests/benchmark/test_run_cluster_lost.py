"""The Ray cluster dies under the driver (its GCS and raylet SIGKILLed, as a user killing Ray's
processes would): the driver says within seconds what finished and that the same command
resumes, exits 3 without Ray's dump on the console, and the same command then finishes the
rest from its checkpoint."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path

import psutil
from harness_checks import driver_env, mnist1d_suite, run_driver, start, stop, trial_runs
from mlflow import MlflowClient

EPOCHS = 8
SUITE = mnist1d_suite(["harness_models:tiny", "harness_models:slow"], EPOCHS)


def _state(db: Path) -> tuple[set[str], int]:
    """(models whose run is FINISHED, checkpointed epochs of the slow model's RUNNING run)."""
    if not db.exists():
        return set(), 0
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            done = {m for (m,) in connection.execute(
                "SELECT t.value FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                "WHERE r.status = 'FINISHED' AND t.key = 'sefl.model'")}
            epochs = connection.execute(
                "SELECT MAX(m.step) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                "JOIN tags c ON c.run_uuid = r.run_uuid JOIN metrics m "
                "ON m.run_uuid = r.run_uuid WHERE r.status = 'RUNNING' AND t.key = 'sefl.model' "
                "AND t.value = 'harness_models:slow' AND c.key = 'sefl.checkpoint' "
                "AND m.key = 'val/acc'").fetchone()[0]
    except sqlite3.OperationalError as err:  # tables still being created, or a write
        if any(m in str(err) for m in ("no such table", "no such column", "locked")):
            return set(), 0
        raise
    return done, epochs or 0


def test_cluster_killed_under_the_driver(tmp_path, tmp_path_factory):
    suite = tmp_path / "lost.toml"
    suite.write_text(SUITE)
    env = driver_env(tmp_path / "home", RAY_AUTH_MODE="disabled")
    args = ["--suite", str(suite), "--num-cpus", "2", "--storage", str(tmp_path / "ray"),
            "--data-dir", str(tmp_path_factory.getbasetemp() / "harness-data")]
    db = tmp_path / "mlflow.db"
    log = tmp_path / "lost.log"

    driver = start([sys.executable, "-m", "benchmark.run", *args], tmp_path, env, log)
    try:
        deadline = time.monotonic() + 240
        while True:
            done, epochs = _state(db)
            if "harness_models:tiny" in done and 1 <= epochs < EPOCHS - 1:
                break
            assert driver.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the slow trial never checkpointed"
            time.sleep(0.2)
        ray_servers = [p for p in psutil.Process(driver.pid).children(recursive=True)
                       if p.name() in ("gcs_server", "raylet")]
        assert len(ray_servers) == 2
        killed_at = time.monotonic()
        for process in ray_servers:
            process.send_signal(signal.SIGKILL)
        code = driver.wait(timeout=60)
        waited = time.monotonic() - killed_at
    finally:
        stop(driver, signal.SIGKILL)

    out = log.read_text()
    assert code == 3, out[-3000:]
    assert waited < 20  # not Ray's minute of waiting for its GCS
    message = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(message) == 1, out[-3000:]
    assert "the Ray cluster stopped under the driver" in message[0]
    assert "1 finished (mnist1d_scale/harness_models:tiny/s0)" in message[0]
    assert "1 interrupted (mnist1d_scale/harness_models:slow/s0)" in message[0]
    assert "run the same command to resume" in message[0]
    assert f"--suite {suite}" in message[0]
    # Ray's own messages went to the log file the message names, none to the console.
    assert not re.search(r"rpc_client|GCS may have been killed|Traceback|raylet", out.replace(
        message[0], "")), out[-3000:]
    ray_log = Path(re.search(r"Ray's log: (\S+)\.$", message[0]).group(1))
    assert ray_log.is_file()

    client = MlflowClient(f"sqlite:///{db}")
    children, parents = trial_runs(client, "lost")
    status = {r.data.tags["sefl.model"]: r.info.status for r in children}
    assert status == {"harness_models:tiny": "FINISHED", "harness_models:slow": "KILLED"}
    assert [p.info.status for p in parents] == ["KILLED"]

    # The same command resumes: the finished trial is cached, the other continues.
    code, out = run_driver(args, tmp_path, env)
    assert code == 0, out[-3000:]
    assert "0 finished" not in out and "1 finished, 1 cached, 0 failed" in out
    children, _ = trial_runs(client, "lost")
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["sefl.model"] for r in finished) == [
        "harness_models:slow", "harness_models:tiny"]
    slow = next(r for r in finished if r.data.tags["sefl.model"] == "harness_models:slow")
    record = json.loads(Path(client.download_artifacts(slow.info.run_id, "trial.json"))
                        .read_text())
    assert 1 <= record["resumed_from"] < EPOCHS
