"""Models for the feature pictures: from the zoo at initialisation, or trained, from a run.

A fresh model is built exactly as a trial's model before its first step
(``benchmark.train.build_model``: the zoo's factory after ``torch.manual_seed(seed)``). A
trained one comes from an MLflow trial run of the harness (``benchmark.tracking``): its
``trial.json`` artifact holds the trial dict (``"trial"``), its ``model.pt`` artifact the
best-validation weights (a ``torch.save``-d state_dict).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.tracking import store_exists
from benchmark.trainable import MODEL_FILE

__all__ = [
    "TRIAL_FILE",
    "FeatureInputError",
    "LoadedModel",
    "has_weights",
    "model_at_init",
    "model_from_run",
]

TRIAL_FILE = "trial.json"


class FeatureInputError(ValueError):
    """A model, run or option the user named that cannot be used (the CLI exits 2 on it)."""


@dataclass(frozen=True)
class LoadedModel:
    """A model in eval mode, its column label and the trial dict it was built from."""

    label: str
    model: nn.Module
    trial: dict[str, Any]


def _build(trial: dict[str, Any]) -> nn.Module:
    from benchmark.train import build_model
    from benchmark.trial import normalize_trial

    return build_model(normalize_trial(trial))


def model_at_init(name: str, task: str, width: float = 1.0, seed: int = 0) -> LoadedModel:
    """Model ``name`` of the zoo (or ``module:factory``) for ``task``, initialised from ``seed``.

    Raises FeatureInputError for a model the zoo does not have for ``task``.
    """
    from benchmark.zoo import list_models

    known = list_models(task)
    if ":" not in name and name not in known:
        raise FeatureInputError(f"--models {name}: no such model for task {task}; models: "
                                f"{', '.join(known)}")
    trial = {"task": task, "model": name, "width": width, "seed": seed}
    try:
        model = _build(trial)
    except ValueError as err:
        raise FeatureInputError(f"--models {name}: {err}") from err
    return LoadedModel(f"{name} (init)", model.eval(), trial)


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    if not store_exists(tracking_uri):
        raise FeatureInputError(f"--tracking-uri {tracking_uri}: no MLflow store there; point "
                                "--tracking-uri at the store the runs were recorded in")
    return MlflowClient(tracking_uri)


def has_weights(client, run_id: str) -> bool:
    """Whether the run saved its weights and trial (``model.pt`` and ``trial.json``)."""
    names = {item.path for item in client.list_artifacts(run_id)}
    return {MODEL_FILE, TRIAL_FILE} <= names


def model_from_run(run_id: str, tracking_uri: str) -> LoadedModel:
    """The trained model of trial run ``run_id``: built from its trial, weights loaded.

    Raises FeatureInputError for a missing store, an unknown run, or a run without weights.
    """
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException as err:
        raise FeatureInputError(f"--run-id {run_id}: no such run in {tracking_uri}") from err
    if not has_weights(client, run_id):
        raise FeatureInputError(f"--run-id {run_id}: the run did not record its weights "
                                f"(artifacts {MODEL_FILE} and {TRIAL_FILE})")
    with tempfile.TemporaryDirectory() as folder:
        trial_path = client.download_artifacts(run_id, TRIAL_FILE, folder)
        trial = json.loads(Path(trial_path).read_text())["trial"]
        weights_path = client.download_artifacts(run_id, MODEL_FILE, folder)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    try:
        model = _build(trial)
        model.load_state_dict(state)
    except (ValueError, RuntimeError) as err:
        # RuntimeError: the weights do not fit the model the zoo builds for this trial today.
        raise FeatureInputError(f"--run-id {run_id}: cannot rebuild its model: {err}") from err
    return LoadedModel(f"{trial['model']} (run {run_id[:8]})", model.eval(), trial)
