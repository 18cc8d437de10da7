"""Node loss: a 3-node Ray cluster on 127.0.0.1 (a head without CPUs and two workers, from
``ray.cluster_utils.Cluster``); a worker node is SIGKILLed (its raylet and the trial's worker
process under it) while both trials train. Every
trial still finishes exactly once, the lost one continuing from its checkpoint on the live
worker, and the same command then finds everything cached. Only the nodes this test started
are stopped."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import psutil
from harness_checks import driver_env, mnist1d_suite, run_driver, start, stop, trial_runs
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

EPOCHS = 8
SUITE = mnist1d_suite(["harness_models:slow"], EPOCHS, seeds=[0, 1])


def _checkpointed(client: MlflowClient) -> dict[str, int]:
    """seed -> epochs checkpointed, of the RUNNING trial runs."""
    try:
        children, _ = trial_runs(client, "nodes")
    except (AttributeError, MlflowException):  # no experiment yet
        return {}
    return {r.data.tags["sefl.seed"]: int(max(
        (m.step for m in client.get_metric_history(r.info.run_id, "val/acc")), default=0))
        for r in children if r.info.status == "RUNNING" and "sefl.checkpoint" in r.data.tags}


def test_a_lost_worker_node_loses_no_trial(tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # every node on 127.0.0.1
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    from ray.cluster_utils import Cluster

    suite = tmp_path / "nodes.toml"
    suite.write_text(SUITE)
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False})
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        env = driver_env(tmp_path / "home", RAY_AUTH_MODE="disabled",
                         RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
        args = ["--suite", str(suite), "--address", cluster.address,
                "--storage", str(tmp_path / "ray"), "--max-failures", "2",
                "--data-dir", str(tmp_path_factory.getbasetemp() / "harness-data")]
        client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
        log = tmp_path / "driver.log"
        driver = start([sys.executable, "-m", "benchmark.run", *args], tmp_path, env, log)
        try:
            deadline = time.monotonic() + 300
            while True:
                epochs = _checkpointed(client)
                if len(epochs) == 2 and all(1 <= e < EPOCHS - 2 for e in epochs.values()):
                    break
                assert driver.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, f"no checkpoints: {epochs}"
                time.sleep(0.3)
            # The machine goes: its raylet and the trial's worker under it, at once.
            raylet = psutil.Process(workers[0].all_processes["raylet"][0].process.pid)
            for process in [*raylet.children(recursive=True), raylet]:
                process.send_signal(signal.SIGKILL)
            code = driver.wait(timeout=400)
        finally:
            stop(driver)
        out = log.read_text()
        assert code == 0, out[-3000:]
        assert "2 finished, 0 cached, 0 failed" in out
        assert "raylet" not in out.lower()  # Ray's report of the dead node is in its log file

        children, _ = trial_runs(client, "nodes")
        assert sorted(r.data.tags["sefl.seed"] for r in children) == ["0", "1"]  # once each
        assert {r.info.status for r in children} == {"FINISHED"}
        resumed = []
        for run in children:
            record = json.loads(Path(client.download_artifacts(run.info.run_id, "trial.json"))
                                .read_text())
            assert [h["epoch"] for h in record["history"]] == list(range(1, EPOCHS + 1))
            steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/acc")]
            assert steps == list(range(1, EPOCHS + 1))  # each epoch logged once
            resumed.append(record["resumed_from"])
        # The trial of the lost node went on from its checkpoint, not from epoch 0.
        assert any(r is not None and 1 <= r < EPOCHS for r in resumed), resumed

        code, out = run_driver(args, tmp_path, env)
        assert code == 0 and "0 finished, 2 cached, 0 failed" in out, out[-3000:]
    finally:
        cluster.shutdown()
