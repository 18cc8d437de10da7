"""The model registry: names -> factories, per task (timm's register/create/list, per task).

A model name may stand for one architecture per task (``sefl`` is a 2D model on
``mnist_scale`` and a 1D one on ``mnist1d_scale``), so a factory is registered for a
``(name, task)`` pair. Factories take ``width`` and keyword overrides and return an
``nn.Module`` that follows the model protocol of DESIGN.md.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable

from torch import nn

__all__ = ["TASKS", "create_model", "list_models", "model_tasks", "register_model"]

TASKS = ("mnist_scale", "stl10_scale", "mnist1d_scale")

Factory = Callable[..., nn.Module]
_REGISTRY: dict[str, dict[str, Factory]] = {}


def register_model(name: str, task: str) -> Callable[[Factory], Factory]:
    """Decorator: register ``factory(width=1.0, **overrides)`` as model ``name`` on ``task``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} for model {name!r}; tasks: {', '.join(TASKS)}")

    def decorator(factory: Factory) -> Factory:
        if task in _REGISTRY.get(name, {}):
            raise ValueError(f"model {name!r} is already registered for task {task!r}")
        _REGISTRY.setdefault(name, {})[task] = factory
        return factory

    return decorator


def list_models(task: str | None = None, pattern: str = "*") -> list[str]:
    """Sorted model names, those supporting ``task`` when given, matching a wildcard pattern."""
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    names = [n for n, per_task in _REGISTRY.items() if task is None or task in per_task]
    return sorted(fnmatch.filter(names, pattern))


def model_tasks(name: str) -> list[str]:
    """The tasks a registered model supports."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return sorted(_REGISTRY[name])


def _outside_factory(spec: str) -> Factory:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import module {module_name!r} of model {spec!r}: {err}") from err
    factory = getattr(module, attr, None)
    if not callable(factory):
        # A user error like every bad name: ValueError, so the CLI reports it as one.
        raise ValueError(f"model {spec!r}: {module_name} has no callable {attr!r}")  # noqa: TRY004
    return factory


def create_model(name: str, task: str, width: float = 1.0, **overrides) -> nn.Module:
    """Build model ``name`` for ``task``.

    ``name`` is a registered name or ``module:factory`` for a model from outside the zoo (called
    as ``factory(task=task, width=width, **overrides)``). Overrides that are None are dropped so
    the factory's defaults hold.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if ":" in name:
        return _outside_factory(name)(task=task, width=width, **kwargs)
    per_task = _REGISTRY.get(name)
    if per_task is None:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    if task not in per_task:
        raise ValueError(
            f"model {name!r} does not support task {task!r}; it supports: {', '.join(sorted(per_task))}"
        )
    return per_task[task](width=width, **kwargs)
