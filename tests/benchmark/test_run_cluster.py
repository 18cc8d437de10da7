"""Servers outside the driver: ``--address`` of a Ray head started with ``ray start --head``
and ``--tracking-uri`` of an ``mlflow server``, both on 127.0.0.1 and stopped after."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from harness_checks import (
    MNIST1D_RESOLUTIONS,
    MNIST1D_SIZES,
    check_finished_run,
    driver_env,
    free_port,
    run_driver,
    start,
    stop,
    trial_runs,
)
from harness_services import wait_for
from mlflow import MlflowClient

SUITE = f"""
[[grid]]
tasks = ["mnist1d_scale"]
models = ["harness_models:tiny"]

[grid.trial]
epochs = 2
batch_size = 8
train_batches = 2
equiv_images = 4
{MNIST1D_SIZES}
"""


def test_existing_ray_cluster_and_mlflow_server(tmp_path, tmp_path_factory):
    (tmp_path / "cluster.toml").write_text(SUITE)
    # A Ray head on 127.0.0.1 only, without token authentication; the driver joins it as a
    # process of the same machine. Short temp folder: Ray's socket paths have a length limit.
    env = driver_env(tmp_path / "home", RAY_AUTH_MODE="disabled",
                     RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    ray_temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    ray_port, mlflow_port = free_port(), free_port()
    head = start([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
                  "--node-ip-address", "127.0.0.1", "--port", str(ray_port), "--num-cpus", "2",
                  "--include-dashboard", "false", "--temp-dir", str(ray_temp)],
                 tmp_path, env, tmp_path / "ray.log")
    server = start([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
                    str(mlflow_port), "--backend-store-uri", f"sqlite:///{tmp_path / 'srv.db'}",
                    "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
                   tmp_path, env, tmp_path / "mlflow.log")
    uri = f"http://127.0.0.1:{mlflow_port}"
    try:
        wait_for(f"{uri}/health", server, tmp_path / "mlflow.log")
        code, out = run_driver(
            ["--suite", str(tmp_path / "cluster.toml"), "--address", f"127.0.0.1:{ray_port}",
             "--tracking-uri", uri, "--storage", str(tmp_path / "ray_results"),
             "--data-dir", str(tmp_path_factory.getbasetemp() / "harness-data")],
            tmp_path, env)
        assert code == 0, out[-3000:] + (tmp_path / "ray.log").read_text()[-2000:]
        client = MlflowClient(uri)
        children, parents = trial_runs(client, "cluster")
        assert len(children) == 1 and len(parents) == 1
        check_finished_run(client, children[0], "cluster", 2, MNIST1D_RESOLUTIONS)
        assert list((tmp_path / "artifacts").rglob("model.pt"))  # stored by the server
        assert not (tmp_path / "mlflow.db").exists()  # nothing went to the default store
        # The trial ran on the head we started: its session logs the driver's connection.
        assert list(ray_temp.glob("session_*/logs/python-core-driver-*"))
    finally:
        stop(server)
        stop(head)
        shutil.rmtree(ray_temp, ignore_errors=True)
