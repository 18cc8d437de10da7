"""One trial without Ray or MLflow: ``benchmark.train.run_trial`` on a tiny MNIST-1D task."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from benchmark.train import build_model, build_task, load_state, resolve_plan, run_trial, save_state
from benchmark.trial import normalize_trial

HERE = Path(__file__).parent
# The sizes of the smoke suite's MNIST-1D grid: every harness test shares one cached task.
SIZES = {"n_train": 56, "n_val": 28, "n_test": 56}
TRIAL = {"task": "mnist1d_scale", **SIZES, "width": 0.25, "batch_size": 8, "epochs": 2,
         "train_batches": 3, "equiv_images": 6}
MODELS = ["harness_models:tiny", "harness_models:own_loss", "sefl"]


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    data_dir = tmp_path_factory.getbasetemp() / "harness-data"
    return build_task(normalize_trial({**TRIAL, "model": "cnn"}), str(data_dir))


@pytest.fixture(autouse=True)
def _helper_models(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))


@pytest.mark.parametrize("model", MODELS)
def test_trial_reports_every_schema_metric(task, model):
    epochs = []
    result = run_trial({**TRIAL, "model": model}, task=task,
                       on_epoch=lambda metrics, state: epochs.append((metrics, state["epoch"])))
    assert [m["epoch"] for m, _ in epochs] == [1, 2] and [e for _, e in epochs] == [1, 2]
    for metrics, _ in epochs:
        assert set(metrics) == {"epoch", "train/loss", "train/acc", "val/acc", "lr",
                                "time/epoch_s"}
        assert math.isfinite(metrics["train/loss"]) and 0 <= metrics["train/acc"] <= 1
    m = result.metrics
    lower = [r for r in task.resolutions if r < max(task.resolutions)]
    expected = {"test/acc", "scale/consistency",
                "params/count", "time/train_s", "time/eval_s", "throughput/train_img_s",
                "throughput/eval_img_s", "data/n_train", "data/n_val", "data/n_test"}
    expected |= {f"test/acc/res_{r}" for r in task.resolutions}
    blocks = len(build_model(normalize_trial({**TRIAL, "model": model})).features(
        task.equivariance_images(1)))
    measured = result.info["equiv_measured_resolutions"]
    assert list(measured) == [f"block_{i}" for i in range(1, blocks + 1)]
    assert all(set(rs) <= set(lower) for rs in measured.values())
    first, last = measured["block_1"], measured[f"block_{blocks}"]
    for name in ("equiv/err", "equiv/err_bicubic"):
        expected |= {name, f"{name}/first"}
        expected |= {f"{name}/res_{r}" for r in last} | {f"{name}/first/res_{r}" for r in first}
        expected |= {f"{name}/block_{i}" for i in range(1, blocks + 1) if measured[f"block_{i}"]}
    assert set(m) == expected
    assert 0 <= m["test/acc"] <= 1 and 0 <= m["scale/consistency"] <= 1
    assert m["equiv/err"] == m[f"equiv/err/block_{blocks}"] >= 0
    assert m["equiv/err/first"] == m["equiv/err/block_1"] >= 0
    assert m["equiv/err"] == pytest.approx(sum(m[f"equiv/err/res_{r}"] for r in last) / len(last))
    assert m["params/count"] > 0 and m["throughput/train_img_s"] > 0
    assert (m["data/n_train"], m["data/n_val"], m["data/n_test"]) == (56, 28, 56)
    # The overall accuracy is the per-resolution accuracies weighted by their counts.
    rows = result.per_resolution
    assert [r["resolution"] for r in rows] == sorted(task.resolutions)
    assert sum(r["n_test"] for r in rows) == SIZES["n_test"]
    assert m["test/acc"] == pytest.approx(
        sum(r["test_acc"] * r["n_test"] for r in rows) / SIZES["n_test"])
    assert rows[-1]["equiv_err"] is None  # the top resolution has nothing to compare with
    for row in rows:
        r = row["resolution"]
        assert row["equiv_err"] == m.get(f"equiv/err/res_{r}")
        assert row["equiv_err_first_bicubic"] == m.get(f"equiv/err_bicubic/first/res_{r}")
    assert result.info["epochs_trained"] == 2 and len(result.history) == 2


@pytest.mark.parametrize("model", ["harness_models:tiny", "sefl"])
def test_resumed_trial_ends_with_the_same_weights(task, model, tmp_path):
    trial = {**TRIAL, "model": model, "epochs": 3}
    straight = run_trial(trial, task=task)

    def stop_after_first(metrics, state):
        if metrics["epoch"] == 1:
            save_state(state, tmp_path / "state.pt")
            raise KeyboardInterrupt  # an interruption right after the checkpoint

    with pytest.raises(KeyboardInterrupt):
        run_trial(trial, task=task, on_epoch=stop_after_first)
    resumed = run_trial(trial, task=task, resume=load_state(tmp_path / "state.pt"))
    assert resumed.state_dict.keys() == straight.state_dict.keys()
    for name, value in straight.state_dict.items():
        torch.testing.assert_close(resumed.state_dict[name], value, msg=name)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.metrics["test/acc"] == straight.metrics["test/acc"]


def test_nan_loss_raises(task):
    with pytest.raises(FloatingPointError, match="loss is nan at epoch 1, batch 1"):
        run_trial({**TRIAL, "model": "harness_models:nan_logits"}, task=task)


def test_model_without_features_is_refused(task, monkeypatch):
    import harness_models

    monkeypatch.delattr(harness_models.TinyNet, "features")
    with pytest.raises(TypeError, match="has no features"):
        run_trial({**TRIAL, "model": "harness_models:tiny"}, task=task)


def test_own_parameter_groups_reach_the_optimizer(task, monkeypatch):
    import harness_models

    seen = []
    original = harness_models._OwnLossNet.param_groups
    monkeypatch.setattr(harness_models._OwnLossNet, "param_groups",
                        lambda self, wd: seen.append(wd) or original(self, wd))
    run_trial({**TRIAL, "model": "harness_models:own_loss", "weight_decay": 0.5}, task=task)
    assert seen == [0.5]


@pytest.mark.parametrize("task_name, own_loss, expected", [
    ("mnist_scale", True, {"optimizer": "adamw", "lr": 1e-2, "weight_decay": 3e-2,
                           "schedule": "step", "step_size": 20, "gamma": 0.1, "epochs": 60}),
    ("mnist_scale", False, {"optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0,
                            "schedule": "multistep", "milestones": [20, 40], "gamma": 0.1}),
    ("stl10_scale", True, {"optimizer": "adamw", "weight_decay": 1e-2, "step_size": 100,
                           "epochs": 200, "batch_size": 16}),
    ("stl10_scale", False, {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                            "weight_decay": 5e-4, "milestones": [300, 400, 600, 800],
                            "gamma": 0.2, "epochs": 1000}),
])
def test_unset_settings_follow_the_published_protocol(task_name, own_loss, expected):
    plan = resolve_plan(normalize_trial({"task": task_name, "model": "m"}), own_loss)
    assert {k: getattr(plan, k) for k in expected} == expected


def test_trial_settings_override_the_protocol():
    trial = normalize_trial({"task": "mnist_scale", "model": "m", "optimizer": "sgd",
                             "lr": 0.5, "epochs": 3})
    plan = resolve_plan(trial, own_loss=True)
    assert (plan.optimizer, plan.lr, plan.epochs, plan.weight_decay) == ("sgd", 0.5, 3, 3e-2)


@pytest.mark.parametrize("select", ["last", "best_val"])
def test_select_tests_the_last_or_the_best_validation_weights(task, select):
    weights = {}

    def keep(metrics, state):
        weights[metrics["epoch"]] = {k: v.clone() for k, v in state["model"].items()}

    trial = {**TRIAL, "model": "harness_models:tiny", "epochs": 4, "select": select}
    result = run_trial(trial, task=task, on_epoch=keep)
    vals = [h["val/acc"] for h in result.history]
    best = vals.index(max(vals)) + 1
    tested = 4 if select == "last" else best
    assert result.info["select"] == select and result.info["tested_epoch"] == tested
    assert result.info["best_epoch"] == best
    for name, value in weights[tested].items():
        torch.testing.assert_close(result.state_dict[name], value, msg=name)


def test_every_training_image_is_used_every_epoch_at_a_batch_larger_than_a_resolution(task):
    seen = []
    # 56 training images over 7 resolutions (8 each) at batch 128: one batch per resolution.
    trial = {**TRIAL, "model": "harness_models:tiny", "batch_size": 128, "train_batches": None}
    run_trial(trial, task=task, on_epoch=lambda metrics, state: seen.append(state["train_images"]))
    assert seen == [56, 112]


@pytest.mark.parametrize("input_mode, batching, mixed", [
    ("canvas", "auto", True), ("native", "auto", False), ("canvas", "one_resolution", False),
    ("canvas", "mixed", True), ("native", "one_resolution", False)])
def test_training_batches_follow_the_models_input_and_the_batching_field(
        task, monkeypatch, input_mode, batching, mixed):
    built = []
    monkeypatch.setattr("benchmark.train.build_model",
                        lambda trial: built.append(build_model(trial)) or built[-1])
    trial = {**TRIAL, "model": "harness_models:recording", "batch_size": 16, "epochs": 1,
             "train_batches": None, "batching": batching,
             "model_options": {"input_mode": input_mode}}
    result = run_trial(trial, task=task)
    shapes = built[0].training_shapes
    # 56 training images, 8 at each of 7 resolutions, at batch 16: 16 + 16 + 16 + 8 when
    # batches mix resolutions, else one batch of 8 per resolution.
    if mixed:
        assert result.info["training_batches"] == "mixed resolutions"
        assert [s[0] for s in shapes] == [16, 16, 16, 8]
    else:
        assert result.info["training_batches"] == "one resolution"
        assert [s[0] for s in shapes] == [8] * len(task.resolutions)
    if input_mode == "canvas":
        assert {s[-1] for s in shapes} == {task.canvas}
    else:
        assert sorted(s[-1] for s in shapes) == sorted(task.resolutions)
    # validation and test keep one resolution per batch, for the per-resolution accuracy
    assert {row["resolution"] for row in result.per_resolution} == set(task.resolutions)


def test_mixed_batches_for_a_native_model_are_refused_before_training(task):
    trial = {**TRIAL, "model": "harness_models:recording", "batching": "mixed",
             "model_options": {"input_mode": "native"}}
    with pytest.raises(ValueError, match="'batching' = 'mixed' needs a canvas model.*"
                                         "use batching = 'auto' or 'one_resolution'"):
        run_trial(trial, task=task, on_epoch=lambda *_: pytest.fail("it trained"))
