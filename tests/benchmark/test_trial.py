"""The trial dict: normalisation, keys, names, flattening."""

from __future__ import annotations

import hashlib
import json

import pytest

from benchmark.trial import (
    TRIAL_FIELDS,
    TrialFieldError,
    canonical_json,
    flatten_trial,
    normalize_trial,
    trial_key,
    trial_name,
)

BASE = {"task": "mnist_scale", "model": "cnn"}


def test_normalize_fills_every_field_with_its_default():
    trial = normalize_trial(BASE)
    assert list(trial) == list(TRIAL_FIELDS)
    assert trial["seed"] == 0 and trial["width"] == 1.0 and trial["optimizer"] == "auto"
    assert trial["epochs"] is None and trial["task_options"] == {}


@pytest.mark.parametrize("variant", [
    {"width": 1},                      # int and float spell the same width
    {"seed": 0, "epochs": None},       # defaults given explicitly
    {"milestones": None, "task_options": {}},
])
def test_equal_trials_have_equal_keys(variant):
    assert trial_key({**BASE, **variant}, "1.0") == trial_key(BASE, "1.0")


@pytest.mark.parametrize("change", [{"seed": 1}, {"width": 0.5}, {"n_train": 1000},
                                    {"task_options": {"canvas_mode": "resize"}}])
def test_different_trials_have_different_keys(change):
    assert trial_key({**BASE, **change}, "1.0") != trial_key(BASE, "1.0")


def test_key_is_sha256_of_canonical_json_with_the_version():
    payload = {"trial": normalize_trial(BASE), "version": "9.9"}
    expected = hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert trial_key(BASE, "9.9") == expected
    assert trial_key(BASE, "9.9") != trial_key(BASE, "9.8")


def test_milestones_order_does_not_matter():
    assert (normalize_trial({**BASE, "milestones": [40, 20]})["milestones"]
            == normalize_trial({**BASE, "milestones": [20, 40]})["milestones"])


@pytest.mark.parametrize("trial, field", [
    ({**BASE, "epoch": 3}, "epoch"),
    ({"model": "cnn"}, "task"),
    ({**BASE, "seed": "0"}, "seed"),
    ({**BASE, "seed": True}, "seed"),
    ({**BASE, "width": 0}, "width"),
    ({**BASE, "width": float("nan")}, "width"),
    ({**BASE, "epochs": 0}, "epochs"),
    ({**BASE, "optimizer": "rmsprop"}, "optimizer"),
    ({**BASE, "schedule": "cosine"}, "schedule"),
    ({**BASE, "milestones": [20, "x"]}, "milestones"),
    ({**BASE, "task_options": {"f": object()}}, "task_options"),
    ({**BASE, "model_options": 3}, "model_options"),
])
def test_bad_fields_name_the_field(trial, field):
    with pytest.raises(TrialFieldError, match=repr(field)) as info:
        normalize_trial(trial)
    assert info.value.field == field


def test_canonical_json_sorts_keys_and_drops_spaces():
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


def test_name_and_flattening():
    trial = normalize_trial({**BASE, "seed": 3, "task_options": {"canvas_mode": "pad"}})
    assert trial_name(trial) == "mnist_scale/cnn/s3"
    flat = flatten_trial(trial)
    assert flat["task_options.canvas_mode"] == "pad"
    assert flat["seed"] == "3" and flat["epochs"] == "None"
    assert all(isinstance(v, str) for v in flat.values())
