"""The trial dict: normalisation, keys, names, flattening."""

from __future__ import annotations

import hashlib
import json

import pytest

from benchmark.trial import (
    TRIAL_FIELDS,
    TrialFieldError,
    cache_status,
    canonical_json,
    code_fingerprint,
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
    assert trial_key({**BASE, **variant}, "c1") == trial_key(BASE, "c1")


@pytest.mark.parametrize("change", [{"seed": 1}, {"width": 0.5}, {"n_train": 1000},
                                    {"task_options": {"canvas_mode": "resize"}},
                                    {"select": "last"}])
def test_different_trials_have_different_keys(change):
    assert trial_key({**BASE, **change}, "c1") != trial_key(BASE, "c1")


def test_key_is_sha256_of_canonical_json_with_the_code_fingerprint():
    payload = {"code": "c9", "trial": normalize_trial(BASE)}
    expected = hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert trial_key(BASE, "c9") == expected
    assert trial_key(BASE, "c9") != trial_key(BASE, "c8")
    assert trial_key(BASE) == trial_key(BASE, code_fingerprint())


def test_code_fingerprint_follows_every_python_source(tmp_path, monkeypatch):
    package = tmp_path / "fingerprinted"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "inner" / "layer.py").write_text("SCALE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def fingerprint():
        code_fingerprint.cache_clear()
        return code_fingerprint(("fingerprinted",))

    before = fingerprint()
    assert len(before) == 64 and fingerprint() == before
    (package / "notes.txt").write_text("not code")
    assert fingerprint() == before
    (package / "inner" / "layer.py").write_text("SCALE = 2\n")
    changed = fingerprint()
    assert changed != before
    (package / "inner" / "extra.py").write_text("")
    assert fingerprint() != changed
    code_fingerprint.cache_clear()


def test_code_fingerprint_covers_the_three_packages():
    code_fingerprint.cache_clear()
    assert code_fingerprint() != code_fingerprint(("sefl", "benchmark"))
    with pytest.raises(RuntimeError, match="'no_such_package' is not importable"):
        code_fingerprint(("no_such_package",))


def test_select_is_last_or_best_val():
    assert normalize_trial(BASE)["select"] == "best_val"
    assert normalize_trial({**BASE, "select": "last"})["select"] == "last"
    assert flatten_trial(normalize_trial({**BASE, "select": "last"}))["select"] == "last"
    with pytest.raises(TrialFieldError, match="'select' = 'best'.*last, best_val"):
        normalize_trial({**BASE, "select": "best"})


def test_batching_is_auto_one_resolution_or_mixed_and_part_of_the_key():
    assert normalize_trial(BASE)["batching"] == "auto"
    one = {**BASE, "batching": "one_resolution"}
    assert flatten_trial(normalize_trial(one))["batching"] == "one_resolution"
    assert trial_key(one, code="c") != trial_key(BASE, code="c")
    assert trial_key({**BASE, "batching": "auto"}, code="c") == trial_key(BASE, code="c")
    with pytest.raises(TrialFieldError, match="'batching' = 'single'.*auto, one_resolution, mixed"):
        normalize_trial({**BASE, "batching": "single"})


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


def test_cache_status_says_why_a_trial_is_new_or_cached():
    trial = normalize_trial({**BASE, "seed": 3})
    key, old_key = trial_key(trial, "code-now"), trial_key(trial, "code-before")
    other = flatten_trial(normalize_trial(BASE))
    same = flatten_trial(trial)
    assert cache_status(trial, key, {}, {}) == ("new", "no run with this key")
    assert cache_status(trial, key, {"k2": ("r2", other)}, {}) == ("new", "no run with this key")
    assert cache_status(trial, key, {old_key: ("r1", same), "k2": ("r2", other)}, {}) == (
        "new", "code changed since run r1")
    assert cache_status(trial, key, {key: ("r3", same), old_key: ("r1", same)}, {}) == (
        "cached", "FINISHED run r3")
    assert cache_status(trial, key, {}, {key: "/ckpt/4"}) == ("resume", "from checkpoint /ckpt/4")
