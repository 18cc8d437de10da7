"""Two drivers on the same suite and the same store, started at once: every trial runs once,
in one of them, and ends with one FINISHED run; the other leaves it alone."""

from __future__ import annotations

import sys

from harness_checks import MNIST1D_SIZES, driver_env, start, stop, trial_runs
from mlflow import MlflowClient

from benchmark.tracking import claims_experiment_name

SEEDS = 4
SUITE = f"""
[[grid]]
tasks = ["mnist1d_scale"]
models = ["harness_models:tiny"]
seeds = {list(range(SEEDS))}
[grid.trial]
epochs = 1
width = 0.25
batch_size = 8
train_batches = 2
equiv_images = 4
{MNIST1D_SIZES}
"""


def test_two_drivers_at_once_run_each_trial_once(tmp_path, tmp_path_factory):
    suite = tmp_path / "pair.toml"
    suite.write_text(SUITE)
    drivers = []
    try:
        for name in ("a", "b"):
            env = driver_env(tmp_path / f"home-{name}", RAY_AUTH_MODE="disabled")
            drivers.append(start(
                [sys.executable, "-m", "benchmark.run", "--suite", str(suite), "--num-cpus", "1",
                 "--storage", str(tmp_path / f"ray-{name}"),
                 "--data-dir", str(tmp_path_factory.getbasetemp() / "harness-data")],
                tmp_path, env, tmp_path / f"{name}.log"))
        codes = [d.wait(timeout=400) for d in drivers]
    finally:
        for driver in drivers:
            stop(driver)
    logs = [(tmp_path / f"{n}.log").read_text() for n in ("a", "b")]
    assert codes == [0, 0], [log[-2000:] for log in logs]

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    children, parents = trial_runs(client, "pair")
    # Each trial started once (one child run) and finished once.
    assert sorted(r.data.tags["sefl.seed"] for r in children) == [str(s) for s in range(SEEDS)]
    assert {r.info.status for r in children} == {"FINISHED"}
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    assert sum(p.data.metrics["trials/finished"] for p in parents) == SEEDS
    assert sum(p.data.metrics["trials/elsewhere"] + p.data.metrics["trials/cached"]
               for p in parents) == SEEDS  # what one ran, the other left
    ran_by = {r.data.tags["mlflow.parentRunId"] for r in children}
    assert ran_by <= {p.info.run_id for p in parents}
    # The claims: one per trial, each by the driver whose child run it is.
    claims = client.get_experiment_by_name(claims_experiment_name("pair"))
    [claims_run] = client.search_runs([claims.experiment_id])
    owner = {name.split(".")[1]: value for name, value in claims_run.data.params.items()}
    assert owner == {r.data.tags["sefl.trial_key"]: r.data.tags["mlflow.parentRunId"]
                     for r in children}
