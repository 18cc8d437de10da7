"""The MLflow side: runs, tags, params, metrics, artifacts, lookups of finished and stale runs,
claims of trials by concurrent drivers."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from benchmark.tracking import CLAIM_TTL_S, Tracker, experiment_name, store_exists
from benchmark.trial import normalize_trial

TRIAL = normalize_trial({"task": "mnist1d_scale", "model": "sefl", "seed": 2, "epochs": 2,
                         "task_options": {"circular_shift": True}})
METRICS = {"test/acc": 0.5, "test/acc/res_24": 0.25, "equiv/err": 1e-7, "params/count": 10.0}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture
def uri(store, monkeypatch) -> str:
    monkeypatch.chdir(store)  # a sqlite store keeps its artifacts in ./mlruns
    return f"sqlite:///{store / 'mlflow.db'}"


def _result_dir(tmp_path: Path, key: str) -> Path:
    torch.save({"w": torch.ones(2)}, tmp_path / "model.pt")
    record = {"trial": TRIAL, "key": key, "metrics": METRICS,
              "per_resolution": [{"resolution": 24, "n_test": 4, "test_acc": 0.25,
                                  "equiv_err": 1e-7, "equiv_err_bicubic": 0.1},
                                 {"resolution": 72, "n_test": 4, "test_acc": 0.75,
                                  "equiv_err": None, "equiv_err_bicubic": None}],
              "info": {"epochs_trained": 2, "device": "test cpu"}}
    (tmp_path / "result.json").write_text(json.dumps(record))
    return tmp_path


def test_store_exists_only_for_an_existing_sqlite_file(tmp_path):
    assert not store_exists(f"sqlite:///{tmp_path / 'none.db'}")
    (tmp_path / "some.db").touch()
    assert store_exists(f"sqlite:///{tmp_path / 'some.db'}")
    assert store_exists("http://127.0.0.1:5000")


def test_a_finished_trial_has_the_schema(uri, tmp_path):
    tracker = Tracker(uri, "finish", "0.1.0", code="f1" * 32)
    parent = tracker.start_parent("python -m benchmark.run --suite finish")
    run_id = tracker.start_trial(parent, TRIAL, "k1")
    for epoch in (1, 2):
        tracker.log_epoch(run_id, {"epoch": epoch, "train/loss": 1.0 / epoch, "train/acc": 0.1,
                                   "val/acc": 0.2 * epoch, "lr": 0.01, "time/epoch_s": 3.0,
                                   "sefl_kind": "epoch"})
    assert tracker.finish_trial(run_id, "k1", _result_dir(tmp_path, "k1")) == METRICS
    tracker.end_parent(parent, "FINISHED", {"trials/total": 1})

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "mnist1d_scale/sefl/s2"
    assert client.get_experiment(run.info.experiment_id).name == experiment_name("finish")
    tags = run.data.tags
    assert {k: tags[k] for k in ("sefl.trial_key", "sefl.task", "sefl.model", "sefl.seed",
                                 "sefl.suite", "sefl.version", "sefl.code", "sefl.hardware",
                                 "mlflow.parentRunId")} == {
        "sefl.trial_key": "k1", "sefl.task": "mnist1d_scale", "sefl.model": "sefl",
        "sefl.seed": "2", "sefl.suite": "finish", "sefl.version": "0.1.0",
        "sefl.code": "f1" * 32, "sefl.hardware": "test cpu", "mlflow.parentRunId": parent}
    assert "sefl.error" not in tags
    assert run.data.params["task_options.circular_shift"] == "True"
    assert run.data.params["epochs"] == "2" and run.data.params["lr"] == "None"
    assert run.data.metrics == {**METRICS, "train/loss": 0.5, "train/acc": 0.1, "val/acc": 0.4,
                                "lr": 0.01, "time/epoch_s": 3.0}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "val/acc")] == [
        (1, 0.2), (2, 0.4)]
    assert sorted(a.path for a in client.list_artifacts(run_id)) == [
        "model.pt", "per_resolution.csv", "trial.json"]
    folder = Path(client.download_artifacts(run_id, "", str(tmp_path / "down")))
    assert json.loads((folder / "trial.json").read_text())["metrics"] == METRICS
    rows = list(csv.DictReader((folder / "per_resolution.csv").open()))
    assert [r["resolution"] for r in rows] == ["24", "72"] and rows[1]["equiv_err"] == ""
    assert torch.equal(torch.load(folder / "model.pt", weights_only=True)["w"], torch.ones(2))
    assert client.get_run(parent).info.status == "FINISHED"
    assert "sefl.task" not in client.get_run(parent).data.tags  # reports tell parents apart
    assert set(tracker.finished()) == {"k1"}


def test_a_rerun_replaces_the_finished_run(uri, tmp_path):
    tracker = Tracker(uri, "rerun", "0.1.0")
    parent = tracker.start_parent("run")
    first = tracker.start_trial(parent, TRIAL, "k")
    tracker.finish_trial(first, "k", _result_dir(tmp_path, "k"))
    second = tracker.start_trial(parent, TRIAL, "k")
    tracker.finish_trial(second, "k", _result_dir(tmp_path, "k"))
    assert tracker.finished()["k"].info.run_id == second
    assert [r.info.run_id for r in tracker._runs("FINISHED")
            if r.data.tags.get("sefl.trial_key") == "k"] == [second]


def test_failed_trial_keeps_its_error(uri):
    tracker = Tracker(uri, "fail", "0.1.0")
    run_id = tracker.start_trial(tracker.start_parent("run"), TRIAL, "k")
    tracker.fail_trial(run_id, "RuntimeError: boom " + "x" * 5000, "Traceback ...\nboom")
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["sefl.error"].startswith("RuntimeError: boom")
    assert len(run.data.tags["sefl.error"]) == 1000
    assert [a.path for a in client.list_artifacts(run_id)] == ["error.txt"]
    assert tracker.finished() == {}


def test_stale_runs_are_killed_and_their_checkpoints_found(uri):
    tracker = Tracker(uri, "stale", "0.1.0")
    parent = tracker.start_parent("run")
    with_checkpoint = tracker.start_trial(parent, TRIAL, "a")
    tracker.set_tag(with_checkpoint, "sefl.checkpoint", "/ckpt/a")
    tracker.start_trial(parent, TRIAL, "b")
    assert len(tracker.stale()) == 3
    assert tracker.resumable() == {"a": "/ckpt/a"}  # left RUNNING by a killed driver
    assert tracker.kill_stale() == 3
    assert tracker.stale() == []
    assert tracker.resumable() == {"a": "/ckpt/a"}
    statuses = {r.info.status for r in MlflowClient(uri).search_runs(
        [tracker.experiment_id(create=False)])}
    assert statuses == {"KILLED"}


def test_reading_a_missing_experiment_creates_nothing(uri):
    tracker = Tracker(uri, "never-run", "0.1.0")
    assert tracker.finished() == {} and tracker.stale() == [] and tracker.resumable() == {}
    assert MlflowClient(uri).get_experiment_by_name(experiment_name("never-run")) is None


def _driver(tracker: Tracker, host: str = "another-host", pid: int = 1,
            beat_age_s: float = 0.0) -> str:
    """A parent run as another driver's: its host:pid and a heartbeat ``beat_age_s`` old."""
    parent = tracker.start_parent("run")
    tracker.set_tag(parent, "sefl.driver", f"{host}:{pid}")
    tracker.set_tag(parent, "sefl.heartbeat", str(int((time.time() - beat_age_s) * 1000)))
    return parent


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_spares_the_runs_of_a_live_driver(uri):
    tracker = Tracker(uri, "two-drivers", "0.1.0")
    live, gone = _driver(tracker), _driver(tracker, beat_age_s=CLAIM_TTL_S + 1)
    tracker.start_trial(live, TRIAL, "a")
    tracker.start_trial(gone, TRIAL, "b")
    stale = {r.info.run_id: r for r in tracker.stale()}
    assert gone in stale and live not in stale
    assert {r.data.tags.get("sefl.trial_key") for r in stale.values()} == {None, "b"}


@pytest.mark.parametrize("how", ["ended", "silent", "process gone"])
def test_a_claim_lives_as_long_as_its_driver(uri, how):
    tracker = Tracker(uri, f"claims-{how.replace(' ', '-')}", "0.1.0")
    first = _driver(tracker)
    assert tracker.claim(["k1", "k2"], first) == {"k1", "k2"}
    assert tracker.claim(["k1", "k2"], first) == {"k1", "k2"}  # claiming again is harmless
    second = _driver(tracker, host="third-host")
    assert tracker.claim(["k1", "k2", "k3"], second) == {"k3"}  # the first driver is alive
    if how == "ended":
        tracker.end_parent(first, "KILLED", {})
    elif how == "silent":  # its machine went: no heartbeat for longer than the claims live
        tracker.set_tag(first, "sefl.heartbeat",
                        str(int((time.time() - CLAIM_TTL_S - 1) * 1000)))
    else:  # on this machine, its process is not there any more
        tracker.set_tag(first, "sefl.driver", f"{socket.gethostname()}:{_dead_pid()}")
    assert tracker.claim(["k1", "k2", "k3"], second) == {"k1", "k2", "k3"}
    assert tracker.claim(["k1"], first if how != "ended" else _driver(tracker)) == set()


def test_concurrent_claims_give_each_trial_to_exactly_one_driver(uri):
    keys = [f"key{i}" for i in range(30)]
    trackers = [Tracker(uri, "claims-race", "0.1.0") for _ in range(4)]
    parents = [_driver(t, host=f"host{i}") for i, t in enumerate(trackers)]
    barrier = threading.Barrier(len(trackers))

    def claim(i: int) -> set[str]:
        barrier.wait()
        # Each driver claims the keys in its own order, so that they collide mid-way.
        return trackers[i].claim(keys[i * 7:] + keys[:i * 7], parents[i])

    with ThreadPoolExecutor(len(trackers)) as pool:
        held = list(pool.map(claim, range(len(trackers))))
    assert sorted(k for h in held for k in h) == sorted(keys)  # each once, none left out


def test_runs_open_as_model_training_with_the_task_as_dataset(uri, tmp_path, capfd):
    tracker = Tracker(uri, "as-users-expect", "0.1.0")
    parent = tracker.start_parent("run")
    run_id = tracker.start_trial(parent, TRIAL, "k1", data_dir=str(tmp_path / "data"))
    other = tracker.start_trial(parent, {**TRIAL, "seed": 3}, "k2", data_dir=str(tmp_path))
    sized = tracker.start_trial(parent, {**TRIAL, "n_train": 64}, "k3", data_dir=str(tmp_path))
    client = MlflowClient(uri)
    experiment = client.get_experiment(tracker.experiment_id(create=False))
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    [data] = client.get_run(run_id).inputs.dataset_inputs
    assert data.dataset.name == "mnist1d_scale"
    assert json.loads(data.dataset.source) == {"uri": str(tmp_path / "data")}
    digests = [client.get_run(r).inputs.dataset_inputs[0].dataset.digest
               for r in (run_id, other, sized)]
    assert digests[0] == digests[1] != digests[2]  # the seed does not change the data
    # Reading an artifact back prints no progress bar (reports download every trial's).
    tracker.finish_trial(run_id, "k1", _result_dir(tmp_path, "k1"))
    capfd.readouterr()
    client.download_artifacts(run_id, "per_resolution.csv", str(tmp_path))
    assert "Downloading" not in capfd.readouterr().err


def test_an_experiment_made_by_an_older_version_gets_the_kind(uri):
    client = MlflowClient(uri)
    made = client.create_experiment(experiment_name("older"))
    Tracker(uri, "older", "0.1.0").start_parent("run")
    assert client.get_experiment(made).tags["mlflow.experimentKind"] == "custom_model_development"
