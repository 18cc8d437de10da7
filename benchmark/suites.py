"""Suites: TOML files that expand into trial dicts (DESIGN.md "Suites").

A suite file (``benchmark/suites/<name>.toml`` or any path) looks like::

    description = "what the suite is for"
    include = ["paper_mnist"]      # other suites whose trials are added (optional)
    missing_data = "error"         # a task without its data stops the run; "skip": drop its trials

    [defaults]                     # trial fields for every grid of this file
    epochs = 60

    [[grid]]                       # tasks x models x sweep x seeds
    tasks = ["mnist_scale"]
    models = ["sefl", "cnn"]       # names, wildcards ("sesn_*"), or "*": every model of the task
    seeds = [0, 1]
    trial = { protocol = "fourier", width = 0.5 }   # trial fields of this grid
    per_task.mnist_scale = { n_train = 1000 }        # fields for one task of the grid
    per_model.sefl = { batch_size = 64 }             # fields for one model of the grid
    sweep = { n_train = [5000, 2500] }               # one trial per value (several: the product)

Later tables win: defaults < trial < per_task < per_model < sweep. Every name is checked
before a trial starts: a mistake raises ``SuiteError`` naming the file, the line and the key.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from benchmark.trial import TRIAL_FIELDS, TrialFieldError, canonical_json, normalize_trial

__all__ = ["SUITES_DIR", "Suite", "SuiteError", "expand_suite", "list_suites", "load_suite"]

SUITES_DIR = Path(__file__).with_name("suites")
MISSING_DATA = ("error", "skip")
_TOP_KEYS = {"description", "include", "missing_data", "defaults", "grid"}
_GRID_KEYS = {"tasks", "models", "seeds", "trial", "per_task", "per_model", "sweep"}
# The grid's own keys set these trial fields; a trial table must not set them too.
_GRID_FIELDS = {"task", "model", "seed"}


class SuiteError(ValueError):
    """A suite that cannot be run; the message names the file, the line and the key."""


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its grids (validated tables, with the file each came from)."""

    name: str
    path: Path
    description: str
    missing_data: str
    grids: tuple[dict[str, Any], ...]


def list_suites() -> list[str]:
    """The names of the suites shipped in ``benchmark/suites/``."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def _resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or len(path.parts) > 1:
        if not path.is_file():
            raise SuiteError(f"suite file {name_or_path} does not exist")
        return path
    if name_or_path not in list_suites():
        raise SuiteError(f"unknown suite {name_or_path!r}; suites: {', '.join(list_suites())} "
                         "(or give the path of a .toml file)")
    return SUITES_DIR / f"{name_or_path}.toml"


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_.\"' -]+?)\s*=")


def _split_dotted(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in key.split(".")]


def _key_line(text: str, where: Sequence[str | int]) -> int | None:
    """The line (1-based) that sets the key at path ``where`` (e.g. ``("grid", 1, "trial",
    "epochs")``), or the nearest line that sets one of its parents; None if none is found.

    A small reader of TOML layout (tables, arrays of tables, dotted keys, inline tables):
    enough to point at a key, not a parser.
    """
    best: tuple[int, int] | None = None  # (matched depth, line)
    table: list[str | int] = []
    counts: dict[tuple, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            parts: list[str | int] = []
            names = _split_dotted(header.group(2))
            for i, part in enumerate(names):
                parts.append(part)
                if i == len(names) - 1 and header.group(1) == "[[":
                    # A new element of an array of tables: number it.
                    counts[tuple(parts)] = counts.get(tuple(parts), 0) + 1
                    parts.append(counts[tuple(parts)] - 1)
                elif tuple(parts) in counts:  # inside the latest element of an array of tables
                    parts.append(counts[tuple(parts)] - 1)
            table = parts
            candidates = [table]
        else:
            assign = _ASSIGN.match(line)
            if not assign:
                continue
            key = [*table, *_split_dotted(assign.group(1))]
            # An inline table on this line may hold the key: `trial = { epochs = 1 }`.
            inline = re.findall(r"[{,]\s*([A-Za-z0-9_\"'-]+)\s*=", line[assign.end():])
            candidates = [key] + [[*key, _split_dotted(k)[-1]] for k in inline]
        for candidate in candidates:
            depth = _common_prefix(candidate, where)
            if depth == len(candidate) and (best is None or depth > best[0]):
                best = (depth, number)
    return best[1] if best else None


def _common_prefix(a: Sequence, b: Sequence) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _describe(where: Sequence[str | int]) -> str:
    text = ""
    for part in where:
        text += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _syntax_error(path: Path, text: str, err: tomllib.TOMLDecodeError) -> SuiteError:
    """``file:line: invalid TOML (key k): problem`` from tomllib's "(at line L, column C)"."""
    message = str(err)
    where = re.search(r" \(at line (\d+), column \d+\)$", message)
    lines = text.splitlines()
    if where:
        line, message = int(where.group(1)), message[:where.start()]
    else:  # "(at end of document)": an array, table or string left open
        line, message = max(len(lines), 1), message.replace("(at end of document)",
                                                           "at the end of the file")
    assign = _ASSIGN.match(lines[line - 1]) if line <= len(lines) else None
    key = f" (key {assign.group(1).strip()})" if assign else ""
    return SuiteError(f"{path}:{line}: invalid TOML{key}: {message}")


class _Checker:
    """Raises SuiteError for one file, pointing at the key's line."""

    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text

    def fail(self, where: Sequence[str | int], problem: str) -> SuiteError:
        line = _key_line(self.text, where)
        place = f"{self.path}:{line}" if line else str(self.path)
        return SuiteError(f"{place}: {_describe(where)}: {problem}")

    def table(self, value: Any, where: Sequence[str | int], allowed: set[str] | None) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table, got {value!r}")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise self.fail([*where, key], f"unknown key; allowed: "
                                    f"{', '.join(sorted(allowed))}")
        return value

    def strings(self, value: Any, where: Sequence[str | int]) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and v for v in value
        ):
            raise self.fail(where, f"expected a non-empty list of names, got {value!r}")
        return value

    def trial_fields(self, value: Any, where: Sequence[str | int]) -> dict:
        fields = self.table(value, where, set(TRIAL_FIELDS) - _GRID_FIELDS)
        for field, field_value in fields.items():
            try:
                normalize_trial({"task": "t", "model": "m", field: field_value})
            except TrialFieldError as err:
                raise self.fail([*where, field], str(err)) from err
        return fields


def _load_file(path: Path, seen: tuple[Path, ...]) -> tuple[dict, list[dict]]:
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _syntax_error(path, text, err) from err
    check = _Checker(path, text)
    check.table(data, [], _TOP_KEYS)
    missing = data.get("missing_data", "error")
    if missing not in MISSING_DATA:
        raise check.fail(["missing_data"], f"{missing!r} is not one of {', '.join(MISSING_DATA)}")
    defaults = check.trial_fields(data.get("defaults", {}), ["defaults"])
    grids = []
    for name in data.get("include", []):
        included = _resolve(name).resolve()
        if included in seen:
            raise check.fail(["include"], f"suite {name!r} includes itself")
        grids += _load_file(included, (*seen, included))[1]
    raw_grids = data.get("grid", [])
    if not isinstance(raw_grids, list):
        raise check.fail(["grid"], "expected [[grid]] tables")
    for i, grid in enumerate(raw_grids):
        where = ["grid", i]
        check.table(grid, where, _GRID_KEYS)
        for key in ("tasks", "models"):
            if key not in grid:
                raise check.fail(where, f"missing key {key!r}")
        seeds = grid.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds
        ):
            raise check.fail([*where, "seeds"], f"expected a non-empty list of integers, got "
                             f"{seeds!r}")
        sweep = check.table(grid.get("sweep", {}), [*where, "sweep"], None)
        for field, values in sweep.items():
            if not isinstance(values, list) or not values:
                raise check.fail([*where, "sweep", field], "expected a non-empty list of values")
            for value in values:
                check.trial_fields({field: value}, [*where, "sweep"])
        grids.append({
            "check": check, "where": where,
            "tasks": check.strings(grid["tasks"], [*where, "tasks"]),
            "models": check.strings(grid["models"], [*where, "models"]),
            "seeds": seeds,
            "defaults": defaults,
            "trial": check.trial_fields(grid.get("trial", {}), [*where, "trial"]),
            "per_task": {t: check.trial_fields(v, [*where, "per_task", t]) for t, v in
                         check.table(grid.get("per_task", {}), [*where, "per_task"], None).items()},
            "per_model": {m: check.trial_fields(v, [*where, "per_model", m]) for m, v in
                          check.table(grid.get("per_model", {}), [*where, "per_model"],
                                      None).items()},
            "sweep": sweep,
        })
    return data, grids


def load_suite(name_or_path: str) -> Suite:
    """Read and check a suite given by name (``list_suites()``) or by the path of a TOML file."""
    path = _resolve(name_or_path)
    data, grids = _load_file(path.resolve(), (path.resolve(),))
    if not grids:
        raise SuiteError(f"{path}: the suite has no [[grid]] (and includes none)")
    return Suite(name=path.stem, path=path, description=str(data.get("description", "")),
                 missing_data=data.get("missing_data", "error"), grids=tuple(grids))


def _models_for(grid: Mapping[str, Any], task: str, extra_models: Sequence[str]) -> list[str]:
    from benchmark.zoo import list_models

    check, where = grid["check"], grid["where"]
    names: list[str] = []
    for pattern in grid["models"]:
        if ":" in pattern:
            matched = [pattern]
        elif any(c in pattern for c in "*?["):
            matched = list_models(task, pattern)
        elif pattern in list_models(task):
            matched = [pattern]
        elif pattern in list_models():
            raise check.fail([*where, "models"], f"model {pattern!r} does not support task "
                             f"{task!r}; models of {task}: {', '.join(list_models(task))}")
        else:
            raise check.fail([*where, "models"], f"unknown model {pattern!r}; models: "
                             f"{', '.join(list_models())}")
        names += [m for m in matched if m not in names]
    return names + [m for m in extra_models if m not in names]


def _grid_trials(grid: Mapping[str, Any], extra_models: Sequence[str]) -> Iterable[dict]:
    from benchmark.zoo import TASKS, list_models

    check, where = grid["check"], grid["where"]
    for task in grid["tasks"]:
        if task not in TASKS:
            raise check.fail([*where, "tasks"], f"unknown task {task!r}; tasks: "
                             f"{', '.join(TASKS)}")
    for task in grid["per_task"]:
        if task not in grid["tasks"]:
            raise check.fail([*where, "per_task", task], f"task {task!r} is not one of this "
                             f"grid's tasks ({', '.join(grid['tasks'])})")
    for model in grid["per_model"]:
        if model not in list_models() and ":" not in model:
            raise check.fail([*where, "per_model", model], f"unknown model {model!r}; models: "
                             f"{', '.join(list_models())}")
    sweep_fields = list(grid["sweep"])
    for task in grid["tasks"]:
        for model in _models_for(grid, task, extra_models):
            base = {**grid["defaults"], **grid["trial"], **grid["per_task"].get(task, {}),
                    **grid["per_model"].get(model, {})}
            for values in itertools.product(*(grid["sweep"][f] for f in sweep_fields)):
                for seed in grid["seeds"]:
                    yield normalize_trial({**base, **dict(zip(sweep_fields, values)),
                                           "task": task, "model": model, "seed": seed})


def _matches(value: str, patterns: Sequence[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(value, p) for p in patterns)


def expand_suite(
    suite: Suite,
    *,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    extra_models: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The suite's normalised trials, without duplicates, in file order.

    models/tasks/seeds: keep only trials matching one of them (model and task names may be
    wildcards); extra_models: ``module:factory`` models added to every grid. Raises SuiteError
    for an unknown task or model (naming the file, line and key) and when nothing matches.
    """
    trials: list[dict[str, Any]] = []
    seen: set[str] = set()
    for grid in suite.grids:
        for trial in _grid_trials(grid, extra_models):
            if (_matches(trial["model"], models) and _matches(trial["task"], tasks)
                    and (seeds is None or trial["seed"] in seeds)
                    and canonical_json(trial) not in seen):
                seen.add(canonical_json(trial))
                trials.append(trial)
    if not trials:
        raise SuiteError(f"no trial of suite {suite.name!r} matches --models "
                         f"{','.join(models or ['*'])} --tasks {','.join(tasks or ['*'])} "
                         f"--seeds {','.join(map(str, seeds)) if seeds else '*'}")
    return trials
