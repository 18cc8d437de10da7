"""Which errors of a trial Tune may retry: crashes only. The trainable runs here in this
process, with ``ray.tune``'s session calls replaced by recorders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ray import tune

from benchmark.trainable import is_crash, train_in_tune
from benchmark.trial import normalize_trial

HERE = Path(__file__).parent
TRIAL = {"task": "mnist1d_scale", "n_train": 56, "n_val": 28, "n_test": 56, "width": 0.25,
         "batch_size": 8, "epochs": 1, "train_batches": 1, "eval_batches": 1, "equiv_images": 2}


@pytest.fixture
def reports(monkeypatch, tmp_path_factory):
    monkeypatch.syspath_prepend(str(HERE))
    sent = []
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint=None: sent.append(metrics))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    data_dir = str(tmp_path_factory.getbasetemp() / "harness-data")

    def run(model: str, **fields):
        entry = {"trial": normalize_trial({**TRIAL, "model": model, **fields}), "key": "k",
                 "version": "v", "data_dir": data_dir, "cache_dir": None, "resume_from": None}
        train_in_tune({"entry": entry})
        return sent

    return run


@pytest.mark.parametrize("model, fields, message", [
    ("harness_models:failing", {}, "RuntimeError: deliberate failure of a test model"),
    ("harness_models:nan_logits", {}, "FloatingPointError: loss is nan at epoch 1, batch 1"),
    ("harness_models:tiny", {"task_options": {"colour": 1}}, "ValueError: unknown option"),
])
def test_a_deterministic_error_is_reported_not_raised(reports, model, fields, message):
    sent = reports(model, **fields)
    assert sent[-1]["sefl_kind"] == "error" and sent[-1]["sefl_error"].startswith(message)
    assert "\n" not in sent[-1]["sefl_error"] and "Traceback" in sent[-1]["sefl_traceback"]


def test_out_of_memory_is_raised_for_a_retry(reports, monkeypatch):
    import harness_models

    def out_of_memory(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(harness_models.TinyNet, "forward", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError):
        reports("harness_models:tiny")


def test_crashes_are_memory_and_ray_errors_only():
    from ray.exceptions import RayError

    assert is_crash(MemoryError()) and is_crash(torch.OutOfMemoryError("x"))
    assert is_crash(RayError())
    for deterministic in (ValueError("bad option"), FileNotFoundError("no data"),
                          RuntimeError("shape mismatch"), TypeError("x"), KeyError("y")):
        assert not is_crash(deterministic)


def test_a_finished_trial_reports_its_result(reports):
    sent = reports("harness_models:tiny")
    assert [m["sefl_kind"] for m in sent] == ["epoch", "final"]
