"""The trial dict: one model trained on one task with one seed (DESIGN.md "Trial").

A trial is a plain, JSON-serialisable dict. ``normalize_trial`` fills every field so that two
spellings of the same trial (``width = 1`` and ``width = 1.0``, a field left out and the same
field at its default) become the same dict, and ``trial_key`` hashes that dict: the sha256 of
``{"code": <code fingerprint>, "trial": <trial>}`` as canonical JSON (sorted keys, no spaces).
The code fingerprint hashes the sources of the packages that make a result (``sefl``,
``baselines``, ``benchmark``), so changed code never reuses a result of the code before.

Fields whose value is None (or "auto") take the published protocol's default for the task and
the kind of model; ``benchmark.train`` resolves them and records what it used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from collections.abc import Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "BATCHINGS",
    "CODE_PACKAGES",
    "OPTIMIZERS",
    "SCHEDULES",
    "SELECTIONS",
    "TRIAL_FIELDS",
    "TrialFieldError",
    "cache_status",
    "canonical_json",
    "code_fingerprint",
    "flatten_trial",
    "normalize_trial",
    "package_version",
    "trial_key",
    "trial_name",
]

OPTIMIZERS = ("auto", "adam", "adamw", "sgd")
SCHEDULES = ("auto", "step", "multistep", "constant")
# Which weights are tested: those after the final epoch (the authors' code) or those of the
# epoch with the best validation accuracy.
SELECTIONS = ("last", "best_val")
# How training batches are formed: "auto" mixes resolutions for canvas models and keeps one per
# batch for native ones (whose inputs of two sizes cannot share a tensor).
BATCHINGS = ("auto", "one_resolution", "mixed")
# The packages whose sources make a trial's result (part of every trial key).
CODE_PACKAGES = ("sefl", "baselines", "benchmark")

# field -> (kind, default). Kinds: "str", "str?", "int", "int?", "float", "float?",
# "ints?" (list of ints or None), "table" (a dict of JSON values).
TRIAL_FIELDS: dict[str, tuple[str, Any]] = {
    "task": ("str", None),
    "model": ("str", None),
    "seed": ("int", 0),
    "protocol": ("str?", None),
    "width": ("float", 1.0),
    "epochs": ("int?", None),
    "batch_size": ("int?", None),
    "optimizer": ("str", "auto"),
    "lr": ("float?", None),
    "weight_decay": ("float?", None),
    "momentum": ("float?", None),
    "schedule": ("str", "auto"),
    "step_size": ("int?", None),
    "milestones": ("ints?", None),
    "gamma": ("float?", None),
    "n_train": ("int?", None),
    "n_val": ("int?", None),
    "n_test": ("int?", None),
    "train_batches": ("int?", None),
    "eval_batches": ("int?", None),
    "equiv_images": ("int", 512),
    "select": ("str", "best_val"),
    "batching": ("str", "auto"),
    "task_options": ("table", None),
    "model_options": ("table", None),
}
_REQUIRED = ("task", "model")
_POSITIVE = ("epochs", "batch_size", "step_size", "n_train", "n_val", "n_test", "train_batches",
             "eval_batches", "equiv_images")
_CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "select": SELECTIONS,
            "batching": BATCHINGS}


class TrialFieldError(ValueError):
    """A trial field that is unknown, missing or of the wrong value; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _bad(field: str, value: Any, allowed: str) -> TrialFieldError:
    return TrialFieldError(field, f"trial field {field!r} = {value!r}: expected {allowed}")


def _coerce(field: str, kind: str, value: Any) -> Any:
    if value is None:
        if kind.endswith("?") or kind == "table":
            return {} if kind == "table" else None
        raise _bad(field, value, "a value (it has no default)")
    base = kind.rstrip("?")
    if base == "str":
        if not isinstance(value, str) or not value:
            raise _bad(field, value, "a non-empty string")
        return value
    if base == "int":
        # bool is an int subclass; True as a seed is a typo, not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(field, value, "an integer")
        return value
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad(field, value, "a finite number")
        return float(value)
    if base == "ints":
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise _bad(field, value, "a list of integers")
        return sorted(value)
    if base == "table":
        if not isinstance(value, Mapping):
            raise _bad(field, value, "a table (dict) of options")
        # Round-trip through JSON: the key hashes JSON, so the trial must be JSON already.
        try:
            return json.loads(json.dumps(dict(value), sort_keys=True, allow_nan=False))
        except (TypeError, ValueError) as err:
            raise _bad(field, value, f"JSON-serialisable values ({err})") from err
    raise AssertionError(f"unknown field kind {kind}")


def normalize_trial(trial: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``trial`` and return it with every field of ``TRIAL_FIELDS`` present.

    Raises TrialFieldError (a ValueError) naming the field for an unknown field, a missing ``task``/``model``, a
    value of the wrong type, a non-positive count or an unknown optimizer/schedule.
    """
    unknown = sorted(set(trial) - set(TRIAL_FIELDS))
    if unknown:
        raise TrialFieldError(
            unknown[0],
            f"unknown trial field(s) {', '.join(map(repr, unknown))}; allowed: "
            f"{', '.join(TRIAL_FIELDS)}",
        )
    for field in _REQUIRED:
        if trial.get(field) is None:
            raise TrialFieldError(field, f"trial field {field!r} is required")
    out = {
        field: _coerce(field, kind, trial.get(field, default))
        for field, (kind, default) in TRIAL_FIELDS.items()
    }
    for field in _POSITIVE:
        if out[field] is not None and out[field] <= 0:
            raise _bad(field, out[field], "a positive integer")
    if out["width"] <= 0:
        raise _bad("width", out["width"], "a number > 0")
    for field, choices in _CHOICES.items():
        if out[field] not in choices:
            raise _bad(field, out[field], f"one of {', '.join(choices)}")
    return out


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def package_version() -> str:
    """The installed version of sefl-bench (recorded with every run)."""
    return metadata.version("sefl-bench")


@lru_cache(maxsize=4)
def code_fingerprint(packages: tuple[str, ...] = CODE_PACKAGES) -> str:
    """sha256 hex digest of every ``.py`` source of ``packages``, as imported (a checkout or a
    pip install alike): each file's path inside its package and its bytes, in path order."""
    digest = hashlib.sha256()
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"package {package!r} is not importable; install sefl-bench")
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{package}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def trial_key(trial: Mapping[str, Any], code: str | None = None) -> str:
    """sha256 hex digest of the normalised trial and the code fingerprint (``code``: None for
    ``code_fingerprint()``)."""
    payload = {"code": code or code_fingerprint(), "trial": normalize_trial(trial)}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def cache_status(
    trial: Mapping[str, Any],
    key: str,
    finished: Mapping[str, tuple[str, Mapping[str, str]]],
    resumable: Mapping[str, str],
) -> tuple[str, str]:
    """("cached" | "resume" | "new", why) for a normalised trial and its key.

    finished: key -> (run id, params) of FINISHED runs; resumable: key -> checkpoint. A new
    trial whose dict (its params) matches a finished run of another key was run by other code.
    """
    if key in finished:
        return "cached", f"FINISHED run {finished[key][0]}"
    if key in resumable:
        return "resume", f"from checkpoint {resumable[key]}"
    params = flatten_trial(trial)
    for run_id, run_params in finished.values():
        if dict(run_params) == params:
            return "new", f"code changed since run {run_id}"
    return "new", "no run with this key"


def trial_name(trial: Mapping[str, Any]) -> str:
    """The child run's name: ``<task>/<model>/s<seed>``."""
    return f"{trial['task']}/{trial['model']}/s{trial['seed']}"


def flatten_trial(trial: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"task_options": {"canvas_mode": "pad"}}`` -> ``{"task_options.canvas_mode": "pad"}``,
    every value as the string MLflow stores as a param."""
    flat: dict[str, str] = {}
    for name, value in trial.items():
        if isinstance(value, Mapping):
            flat.update(flatten_trial(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = str(value)
    return flat
