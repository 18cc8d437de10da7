"""The Tune function trainable: one trial on a Ray worker.

It runs ``benchmark.train.run_trial`` and hands everything to the driver through
``ray.tune.report``: every epoch's metrics with a checkpoint of the whole training state, then
the final result as a checkpoint holding ``result.json`` and ``model.pt``. It writes nothing to
MLflow (the driver does). It continues from ``ray.tune.get_checkpoint()`` when Tune retries it
after a failure, or from the entry's ``resume_from`` when an earlier invocation was interrupted;
the epochs done before are reported again so the new run has the whole history (the driver
logs each epoch once per run).

Tune retries every exception a trainable raises, so only crashes are raised (``is_crash``: out
of memory, Ray's own errors; a lost node or a preempted worker never reaches Python). Any other
error is deterministic (a bad option, missing data, a shape mismatch: the same trial fails the
same way again), so it is reported as a result (``sefl_kind`` "error", ``sefl_error`` its
one-line message, ``sefl_traceback``) and the trial ends at once, failed, without a retry.
"""

from __future__ import annotations

import json
import tempfile
import traceback
from pathlib import Path
from typing import Any

__all__ = ["MODEL_FILE", "RESULT_FILE", "STATE_FILE", "checkpoint_uri", "is_crash",
           "train_in_tune"]

STATE_FILE = "state.pt"
RESULT_FILE = "result.json"
MODEL_FILE = "model.pt"


def checkpoint_uri(checkpoint) -> str:
    """Where a ``ray.tune.Checkpoint`` lies, as a path or URI ``Checkpoint(uri)`` reopens."""
    scheme = checkpoint.filesystem.type_name
    if scheme == "local":
        return checkpoint.path
    return f"{ {'gcs': 'gs'}.get(scheme, scheme)}://{checkpoint.path}"


def is_crash(error: BaseException) -> bool:
    """Whether ``error`` is worth a retry from the last checkpoint: out of memory (host or GPU)
    or an error of Ray itself (e.g. storage lost under ``tune.report``)."""
    import torch
    from ray.exceptions import RayError

    return isinstance(error, (MemoryError, torch.OutOfMemoryError, RayError))


def _report_history(history: list[dict[str, float]]) -> None:
    from ray import tune

    for metrics in history:
        tune.report({**metrics, "sefl_kind": "epoch"})


def _report_final(folder: Path) -> None:
    from ray import tune

    tune.report({"sefl_kind": "final"}, checkpoint=tune.Checkpoint.from_directory(folder))


def train_in_tune(config: dict[str, Any]) -> None:
    """Tune entry point. ``config["entry"]``: ``trial`` (normalised trial dict), ``key``,
    ``version``, ``data_dir`` (absolute), ``cache_dir`` (absolute or None), ``resume_from``
    (checkpoint URI or None)."""
    import ray
    import torch
    from ray import tune

    from benchmark.train import load_state, run_trial, save_state

    entry = config["entry"]
    source = tune.get_checkpoint()
    if source is None and entry["resume_from"]:
        source = tune.Checkpoint(entry["resume_from"])
    resume = None
    if source is not None:
        with source.as_directory() as folder:
            if (Path(folder) / RESULT_FILE).is_file():
                # The trial had finished; only its recording was interrupted.
                _report_history(json.loads((Path(folder) / RESULT_FILE).read_text())["history"])
                _report_final(Path(folder))
                return
            resume = load_state(Path(folder) / STATE_FILE)
        _report_history(resume["history"])

    def on_epoch(metrics: dict[str, float], state: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            save_state(state, Path(folder) / STATE_FILE)
            # report() copies the folder to Tune's storage before it returns.
            tune.report({**metrics, "sefl_kind": "epoch"},
                        checkpoint=tune.Checkpoint.from_directory(folder))

    # Ray sets CUDA_VISIBLE_DEVICES to the GPUs it gave this trial.
    device = "cuda" if ray.get_gpu_ids() else "cpu"
    try:
        result = run_trial(entry["trial"], data_dir=entry["data_dir"],
                           cache_dir=entry["cache_dir"], device=device, on_epoch=on_epoch,
                           resume=resume)
    except Exception as err:
        if is_crash(err):
            raise
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0]
        tune.report({"sefl_kind": "error", "sefl_error": message,
                     "sefl_traceback": traceback.format_exc()})
        return
    with tempfile.TemporaryDirectory() as folder:
        torch.save(result.state_dict, Path(folder) / MODEL_FILE)
        record = {"trial": entry["trial"], "key": entry["key"], "version": entry["version"],
                  "metrics": result.metrics, "per_resolution": result.per_resolution,
                  "history": result.history, "info": result.info,
                  "resumed_from": resume["epoch"] if resume else None}
        (Path(folder) / RESULT_FILE).write_text(json.dumps(record, indent=1, default=str))
        _report_final(Path(folder))
