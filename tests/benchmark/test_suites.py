"""Suites: the shipped TOML files, expansion, filters, and errors that name file, line and key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmark.suites import SuiteError, expand_suite, list_suites, load_suite
from benchmark.zoo import TASKS, list_models
from reports.published import published_model, published_model_map

SHIPPED = ["data_efficiency", "full", "paper_1d", "paper_mnist", "paper_stl", "quick",
           "repro_cpu", "smoke"]
PAPER = ["data_efficiency", "full", "paper_1d", "paper_mnist", "paper_stl", "repro_cpu"]


def _write(tmp_path: Path, text: str, name: str = "suite.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_suites_are_listed():
    assert list_suites() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_suite_expands(name):
    trials = expand_suite(load_suite(name))
    assert trials and all(t["task"] in TASKS for t in trials)
    assert load_suite(name).description


def test_smoke_has_every_registered_model_on_every_task_for_one_epoch():
    trials = expand_suite(load_suite("smoke"))
    for task in TASKS:
        assert sorted(t["model"] for t in trials if t["task"] == task) == list_models(task)
    assert {t["epochs"] for t in trials} == {1}


def test_full_is_the_union_of_the_paper_suites():
    parts = ["paper_mnist", "data_efficiency", "paper_stl", "paper_1d"]
    union = [t for name in parts for t in expand_suite(load_suite(name))]
    assert expand_suite(load_suite("full")) == union


def test_data_efficiency_sweeps_the_training_set_size():
    trials = expand_suite(load_suite("data_efficiency"))
    assert {t["n_train"] for t in trials} == {5000, 2500, 1000}
    # The published batch (128, the protocol's default) and every other size as the protocol's.
    assert {(t["batch_size"], t["n_val"], t["n_test"]) for t in trials} == {(None, None, None)}


@pytest.mark.parametrize("name", PAPER)
def test_paper_suites_test_the_model_after_the_final_epoch(name):
    assert {t["select"] for t in expand_suite(load_suite(name))} == {"last"}


def test_repro_cpu_is_one_model_per_published_name_of_the_n_train_1000_row():
    trials = expand_suite(load_suite("repro_cpu"))
    mapping = published_model_map()
    names = set(mapping.loc[mapping["table"] == "data_efficiency", "published_model"])
    named = {published_model("data_efficiency", t["model"]) for t in trials}
    assert named == names  # every published name, through a zoo model
    assert {(t["task"], t["protocol"], t["width"], t["epochs"], t["n_train"], t["n_val"],
             t["seed"], t["select"], t["equiv_images"]) for t in trials} == {
        ("mnist_scale", "fourier", 1.0, 60, 1000, 500, 0, "last", 128)}
    # the published batch and optimiser: left to the protocol, as in data_efficiency
    assert {t["batch_size"] for t in trials} == {None}
    assert {t["model"] for t in trials} <= set(list_models("mnist_scale"))


def test_later_tables_win(tmp_path):
    path = _write(tmp_path, """
[defaults]
epochs = 1
width = 0.5
batch_size = 4
lr = 0.1

[[grid]]
tasks = ["mnist_scale"]
models = ["cnn", "sefl"]
seeds = [0, 1]
trial = { epochs = 2, width = 0.25, batch_size = 8 }
per_task.mnist_scale = { epochs = 3 }
per_model.sefl = { width = 1.0 }
sweep = { batch_size = [16, 32] }
""")
    trials = expand_suite(load_suite(str(path)))
    assert len(trials) == 2 * 2 * 2
    cnn = [t for t in trials if t["model"] == "cnn"]
    sefl = [t for t in trials if t["model"] == "sefl"]
    assert {(t["epochs"], t["width"], t["lr"]) for t in cnn} == {(3, 0.25, 0.1)}
    assert {t["width"] for t in sefl} == {1.0}
    assert {t["batch_size"] for t in trials} == {16, 32}
    # Order: tasks, models, sweep values, seeds.
    assert [(t["model"], t["batch_size"], t["seed"]) for t in trials[:4]] == [
        ("cnn", 16, 0), ("cnn", 16, 1), ("cnn", 32, 0), ("cnn", 32, 1)]


def test_wildcards_filters_and_outside_models():
    suite = load_suite("paper_mnist")
    trials = expand_suite(suite, models=["sesn_*"], seeds=[0, 5],
                          extra_models=["harness_models:tiny"])
    assert {t["model"] for t in trials} == set(list_models("mnist_scale", "sesn_*"))
    assert {t["seed"] for t in trials} == {0, 5}
    with_outside = expand_suite(suite, models=["harness_*"], seeds=[0],
                                extra_models=["harness_models:tiny"])
    assert [t["model"] for t in with_outside] == ["harness_models:tiny"]


def test_duplicate_trials_are_expanded_once(tmp_path):
    grid = '[[grid]]\ntasks = ["mnist_scale"]\nmodels = ["cnn"]\n'
    path = _write(tmp_path, grid + grid)
    assert len(expand_suite(load_suite(str(path)))) == 1


def test_nothing_matching_the_filters_is_an_error():
    with pytest.raises(SuiteError, match="no trial of suite 'quick' matches --models nope"):
        expand_suite(load_suite("quick"), models=["nope"])


def test_include(tmp_path):
    _write(tmp_path, '[[grid]]\ntasks = ["mnist_scale"]\nmodels = ["cnn"]\n', "inner.toml")
    path = _write(tmp_path, f'include = ["{tmp_path / "inner.toml"}"]\n')
    assert [t["model"] for t in expand_suite(load_suite(str(path)))] == ["cnn"]


def test_including_itself_is_an_error(tmp_path):
    path = tmp_path / "loop.toml"
    path.write_text(f'include = ["{path}"]\n')
    with pytest.raises(SuiteError, match=r"loop.toml:1: include: suite .* includes itself"):
        load_suite(str(path))


def test_unknown_suite_lists_the_suites():
    with pytest.raises(SuiteError, match="unknown suite 'nope'; suites: data_efficiency"):
        load_suite("nope")


def test_missing_suite_file():
    with pytest.raises(SuiteError, match="does not exist"):
        load_suite("no/such/suite.toml")


@pytest.mark.parametrize("text, expected", [
    ('[[grid]]\ntasks = ["mnist_scale"]\nmodels = [cnn]\n',
     ":3: invalid TOML (key models): Invalid value"),
    ('[[grid]]\ntasks = ["mnist_scale"]\nepochs = \nmodels = ["cnn"]\n',
     ":3: invalid TOML (key epochs): Invalid value"),
    ('[[grid]]\ntasks = ["mnist_scale"]\nmodels = ["cnn"\n',
     ":3: invalid TOML (key models): Unclosed array at the end of the file"),
])
def test_invalid_toml_names_file_line_and_key(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    assert str(info.value).startswith(f"{path}{expected}"), str(info.value)


GRID = '[[grid]]\ntasks = ["mnist_scale"]\nmodels = ["cnn"]\n'


@pytest.mark.parametrize("text, line, key, problem", [
    ('descripton = "x"\n' + GRID, 1, "descripton", "unknown key"),
    (GRID + 'trial = { epochs = 0 }\n', 4, "grid[1].trial.epochs", "positive integer"),
    (GRID + '[[grid]]\ntasks = ["mnist_scale"]\nmodels = ["cnn"]\n'
     '[grid.trial]\nwidht = 2\n', 8, "grid[2].trial.widht", "unknown key"),
    (GRID + 'seeds = [0, "1"]\n', 4, "grid[1].seeds", "list of integers"),
    ('[defaults]\nlr = "fast"\n' + GRID, 2, "defaults.lr", "finite number"),
    (GRID.replace('"cnn"', '"cnnn"'), 3, "grid[1].models", "unknown model 'cnnn'"),
    (GRID.replace('"mnist_scale"', '"mnist"'), 2, "grid[1].tasks", "unknown task 'mnist'"),
    (GRID.replace('["cnn"]', '["sesn_scalar"]').replace('"mnist_scale"', '"mnist1d_scale"'),
     3, "grid[1].models", "model 'sesn_scalar' does not support task 'mnist1d_scale'"),
    (GRID + 'per_model.cnnx = { epochs = 1 }\n', 4, "grid[1].per_model.cnnx", "unknown model"),
    (GRID + 'per_task.stl10_scale = { epochs = 1 }\n', 4, "grid[1].per_task.stl10_scale",
     "not one of this grid's tasks"),
    (GRID + 'sweep = { n_train = [100, -1] }\n', 4, "grid[1].sweep.n_train",
     "positive integer"),
    (GRID + 'trial = { seed = 1 }\n', 4, "grid[1].trial.seed", "unknown key"),
    ('missing_data = "ignore"\n' + GRID, 1, "missing_data", "not one of error, skip"),
    ('[[grid]]\nmodels = ["cnn"]\n', 1, "grid[1]", "missing key 'tasks'"),
])
def test_mistakes_name_file_line_and_key(tmp_path, text, line, key, problem):
    path = _write(tmp_path, text)
    with pytest.raises(SuiteError) as info:
        expand_suite(load_suite(str(path)))
    message = str(info.value)
    assert message.startswith(f"{path.resolve()}:{line}: {key}: "), message
    assert problem in message


@pytest.mark.parametrize("n_train", [1000, 2500])
def test_data_efficiency_cnn_trains_at_its_n_train_and_batch_on_the_mnist_here(
    n_train, tmp_path
):
    import os

    from benchmark.train import run_trial

    data_dir = os.environ.get("SEFL_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "mnist").is_dir():
        pytest.skip("real MNIST absent: set SEFL_DATA_DIR to the folder that holds mnist/")
    (trial,) = [t for t in expand_suite(load_suite("data_efficiency"), models=["cnn"], seeds=[0])
                if t["n_train"] == n_train]
    # A small subset of the work: one epoch of three batches, narrow, a short evaluation.
    small = {**trial, "epochs": 1, "width": 0.25, "train_batches": 3, "eval_batches": 1,
             "equiv_images": 2}
    result = run_trial(small, data_dir=data_dir, cache_dir=str(tmp_path))
    assert result.metrics["data/n_train"] == n_train  # as written, on the 10k images here
    assert result.info["plan"]["batch_size"] == 128 and result.info["select"] == "last"
    assert result.info["training_batches"] == "mixed resolutions"  # the CNN is a canvas model
    assert len(result.history) == 1 and math.isfinite(result.history[0]["train/loss"])
