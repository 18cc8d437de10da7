"""End to end in this process: a subset of ``smoke`` through a real local Ray (2 CPUs) into a
real sqlite MLflow store, with a deliberately failing outside model; then the same command
again, which finds everything done."""

from __future__ import annotations

import os

import pytest
from harness_checks import HERE, MNIST1D_RESOLUTIONS, check_finished_run, trial_runs
from mlflow import MlflowClient

from benchmark.run import main
from benchmark.zoo import list_models


@pytest.fixture
def environ_restored():
    """The runner sets a few Ray variables for its local cluster; undo them after."""
    saved = dict(os.environ)
    yield
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update(saved)


def test_smoke_subset_with_a_failing_trial(tmp_path, tmp_path_factory, monkeypatch, capsys,
                                           environ_restored):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(HERE))
    for name in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # no token written to the real home
    args = ["--suite", "smoke", "--tasks", "mnist1d_scale", "--num-cpus", "2",
            "--data-dir", str(tmp_path_factory.getbasetemp() / "harness-data")]

    assert main([*args, "--model", "harness_models:failing"]) == 1
    captured = capsys.readouterr()
    out = captured.out
    assert "FAILED mnist1d_scale/harness_models:failing/s0: RuntimeError: deliberate failure" \
        in out
    assert "retrying" not in captured.out + captured.err  # a deterministic error: no retry

    client = MlflowClient("sqlite:///mlflow.db")  # the default store, in the working folder
    children, parents = trial_runs(client, "smoke")
    models = list_models("mnist1d_scale")
    assert sorted(r.data.tags["sefl.model"] for r in children) == sorted(
        [*models, "harness_models:failing"])
    for run in children:
        if run.data.tags["sefl.model"] == "harness_models:failing":
            assert run.info.status == "FAILED"
            assert run.data.tags["sefl.error"].startswith(
                "RuntimeError: deliberate failure of a test model")
        else:
            check_finished_run(client, run, "smoke", epochs=1, resolutions=MNIST1D_RESOLUTIONS)
    assert len(parents) == 1 and parents[0].info.status == "FAILED"
    assert {parents[0].data.tags["mlflow.runName"].split()[0]} == {"smoke"}
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert parents[0].data.metrics["trials/failed"] == 1
    assert parents[0].data.metrics["trials/finished"] == len(models)

    # Again without the failing model: every trial is cached, nothing runs, exit 0.
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"0 finished, {len(models)} cached, 0 failed" in out
    children_after, parents_after = trial_runs(client, "smoke")
    assert sorted(r.info.run_id for r in children_after) == sorted(
        r.info.run_id for r in children)
    assert len(parents_after) == 2
