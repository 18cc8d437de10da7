"""Protocol options of a task: defaults, validation and which ones shape the built tensors.

A task declares its options as a dict of ``Option``s; ``resolve_options`` fills the defaults and
checks every value, naming the option and what is allowed when one is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Option",
    "boolean",
    "build_options",
    "choice",
    "integer",
    "resolve_options",
    "scale_task_options",
]

Check = Callable[[str, Any], Any]


@dataclass(frozen=True)
class Option:
    """One protocol option. ``build``: it changes the built tensors, so it is part of the cache
    key; options that only change how batches are served (canvas mode, augmentation) are not."""

    default: Any
    check: Check
    build: bool = True


def choice(*allowed: str) -> Check:
    def check(name: str, value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"option {name}={value!r} is not allowed; choose one of {allowed}")
        return value

    return check


def integer(minimum: int, maximum: int | None = None, optional: bool = False) -> Check:
    """An int in ``[minimum, maximum]``; ``optional``: None stands for the task's default."""

    def check(name: str, value: Any) -> int | None:
        if value is None and optional:
            return None
        upper = "" if maximum is None else f" and <= {maximum}"
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < minimum
            or (maximum is not None and value > maximum)
        ):
            raise ValueError(f"option {name}={value!r} must be an int >= {minimum}{upper}")
        return value

    return check


def boolean(name: str, value: Any) -> bool:
    if value is not True and value is not False:
        raise ValueError(f"option {name}={value!r} must be True or False")
    return value


def resolve_options(task: str, schema: dict[str, Option], given: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in and every value checked; an unknown name raises ValueError."""
    unknown = sorted(set(given) - set(schema))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for task {task!r}; "
            f"allowed: {', '.join(sorted(schema))}"
        )
    resolved = {name: option.default for name, option in schema.items()}
    resolved.update(given)
    return {name: schema[name].check(name, value) for name, value in resolved.items()}


def build_options(schema: dict[str, Option], options: dict[str, Any]) -> dict[str, Any]:
    """The options that shape the built tensors (the ones the cache key depends on)."""
    return {name: value for name, value in options.items() if schema[name].build}


def scale_task_options(
    protocols: tuple[str, ...],
    min_resolution: int,
    max_resolution: int,
    resolution_step: int,
    fixed_top: bool = False,
) -> dict[str, Option]:
    """The options every scale task has: ``protocol`` (the first one is the default), ``seed``,
    ``n_train`` / ``n_val`` / ``n_test`` (None: the protocol's sizes), the resolution grid
    (``max_resolution`` only when the top is not ``fixed_top``), ``canvas_mode`` and
    ``download``."""
    options = {
        "protocol": Option(protocols[0], choice(*protocols)),
        "seed": Option(0, integer(0)),
        "n_train": Option(None, integer(1, optional=True)),
        "n_val": Option(None, integer(1, optional=True)),
        "n_test": Option(None, integer(1, optional=True)),
        "min_resolution": Option(min_resolution, integer(1, max_resolution if fixed_top else None)),
        "resolution_step": Option(resolution_step, integer(1)),
        "canvas_mode": Option("pad", choice("pad", "resize"), build=False),
        "download": Option(False, boolean, build=False),
    }
    if not fixed_top:
        options["max_resolution"] = Option(max_resolution, integer(1))
    return options
