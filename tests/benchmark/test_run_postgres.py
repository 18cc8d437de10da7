"""A shared tracking server on PostgreSQL, as users run one: ``mlflow server`` on a private
PostgreSQL cluster the test starts; a suite records there and ``reports.generate`` reads it
back; the server goes away for 20 s mid-suite and nothing is lost; a server that stays away
stops the driver cleanly, and the same command resumes once it is back."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from harness_checks import MNIST1D_SIZES, driver_env, run_driver, start, stop, trial_runs
from harness_services import MlflowServer, postgres_bin, postgres_cluster
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from benchmark.tracking import EPOCH_METRICS

EPOCHS = 3
SUITE = f"""
[[grid]]
tasks = ["mnist1d_scale"]
models = ["harness_models:slow"]
seeds = [0, 1, 2]
[grid.trial]
epochs = {EPOCHS}
width = 0.25
batch_size = 8
train_batches = 3
equiv_images = 4
{MNIST1D_SIZES}
"""

if postgres_bin() is None:
    print("test_run_postgres: PostgreSQL is not installed here (.ci/run installs Debian's "
          "postgresql); skipped")
    pytestmark = pytest.mark.skip(reason="PostgreSQL is not installed (.ci/run installs it)")


@pytest.fixture
def server(tmp_path):
    with postgres_cluster() as database:
        server = MlflowServer(database, tmp_path / "artifacts", tmp_path,
                              driver_env(tmp_path / "server-home"))
        server.start()
        try:
            yield server
        finally:
            server.stop()


def _finished(client: MlflowClient, suite: str) -> list:
    try:
        children, _ = trial_runs(client, suite)
    except (AttributeError, MlflowException):  # no experiment yet, or the server restarts
        return []
    return [r for r in children if r.info.status == "FINISHED"]


def _wait_finished(client, suite: str, count: int, driver, log) -> None:
    deadline = time.monotonic() + 240
    while len(_finished(client, suite)) < count:
        assert driver.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no trial finished"
        time.sleep(0.5)


def _args(tmp_path, tmp_path_factory, suite_name: str, uri: str) -> list[str]:
    suite = tmp_path / f"{suite_name}.toml"
    suite.write_text(SUITE)
    return ["--suite", str(suite), "--num-cpus", "2", "--tracking-uri", uri,
            "--storage", str(tmp_path / "ray"),
            "--data-dir", str(tmp_path_factory.getbasetemp() / "harness-data")]


def test_outage_of_20_s_loses_nothing_and_the_report_reads_it_back(server, tmp_path,
                                                                   tmp_path_factory):
    args = _args(tmp_path, tmp_path_factory, "pg", server.uri)
    env = driver_env(tmp_path / "home", RAY_AUTH_MODE="disabled")
    client = MlflowClient(server.uri)
    log = tmp_path / "driver.log"
    driver = start([sys.executable, "-m", "benchmark.run", *args], tmp_path, env, log)
    try:
        _wait_finished(client, "pg", 1, driver, log)
        server.stop()
        time.sleep(20)
        assert driver.poll() is None, log.read_text()[-3000:]  # it waits for the store
        server.start()
        code = driver.wait(timeout=300)
    finally:
        stop(driver)
    out = log.read_text()
    assert code == 0, out[-3000:]
    assert "3 finished, 0 cached, 0 failed" in out

    children, parents = trial_runs(client, "pg")
    assert sorted(r.data.tags["sefl.seed"] for r in children) == ["0", "1", "2"]
    assert {r.info.status for r in children} == {"FINISHED"}  # one run per trial, finished
    assert [p.info.status for p in parents] == ["FINISHED"]
    for run in children:  # every epoch of every trial is there, the outage's too
        for name in EPOCH_METRICS:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, name)]
            assert steps == list(range(1, EPOCHS + 1)), (name, steps)
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"model.pt", "trial.json", "per_resolution.csv"} <= names
    assert len(list((tmp_path / "artifacts").rglob("model.pt"))) == 3  # on the server's side

    report = subprocess.run(
        [sys.executable, "-m", "reports.generate", "--suite", "pg", "--tracking-uri",
         server.uri, "--out", str(tmp_path / "report")], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=600, check=False)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "Downloading" not in report.stderr + report.stdout  # no progress bars
    assert any((tmp_path / "report").rglob("*")), "the report wrote nothing"


def test_a_store_that_stays_away_stops_the_driver_and_the_same_command_resumes(
        server, tmp_path, tmp_path_factory):
    args = _args(tmp_path, tmp_path_factory, "pgdown", server.uri)
    env = driver_env(tmp_path / "home", RAY_AUTH_MODE="disabled", SEFL_TRACKING_RETRY_S="10")
    client = MlflowClient(server.uri)
    log = tmp_path / "driver.log"
    driver = start([sys.executable, "-m", "benchmark.run", *args], tmp_path, env, log)
    try:
        _wait_finished(client, "pgdown", 1, driver, log)
        server.stop()
        stopped_at = time.monotonic()
        code = driver.wait(timeout=120)
        waited = time.monotonic() - stopped_at
    finally:
        stop(driver)
    out = log.read_text()
    assert code == 4, out[-3000:]
    assert waited < 90
    [message] = [line for line in out.splitlines() if line.startswith("error: ")]
    assert f"the MLflow store {server.uri} did not answer for 10 s" in message
    done = int(re.search(r"trials: (\d+) finished", message).group(1))
    assert done >= 1 and "run the same command to resume" in message
    assert "Traceback" not in out

    server.start()
    code, out = run_driver(args, tmp_path, env)
    assert code == 0, out[-3000:]
    assert f"{3 - done} finished, {done} cached, 0 failed" in out
    finished = _finished(client, "pgdown")
    assert sorted(r.data.tags["sefl.seed"] for r in finished) == ["0", "1", "2"]
