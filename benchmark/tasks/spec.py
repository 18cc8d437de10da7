"""What a task module declares (``TaskSpec``), and turning built tensors into a ``Task``.

A task module gives its options, how to find its source data, how to build the split tensors
from it (the cached part), and the layout of the task for given options (the part that is cheap
and not cached: canvas, resolutions, normalisation, training augmentation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import torch

from benchmark.tasks.augment import Augment
from benchmark.tasks.dataset import ScaleSplit, store_from_payload
from benchmark.tasks.options import Option
from benchmark.tasks.resolutions import resolution_grid
from benchmark.tasks.splits import SPLITS
from benchmark.tasks.task import Task, TaskLayout

__all__ = ["Source", "TaskSpec", "assemble", "scale_layout"]


class Source(Protocol):
    def fingerprint(self) -> Any:
        """JSON-able identity of the source data (part of the cache key)."""


@dataclass(frozen=True)
class TaskSpec:
    """``locate(data_dir, options)`` finds the source (raising ValueError when it is missing);
    ``build(source, options)`` returns (tensors, metadata): per split ``labels``,
    ``resolutions``, ``pool_index`` and a ``store`` payload, plus JSON-able facts;
    ``layout(options)`` gives the task's layout and its training augmentation (None: none);
    ``check(options)`` rejects option combinations that make no sense."""

    name: str
    options: dict[str, Option]
    locate: Callable[[Path, dict], Source]
    build: Callable[[Source, dict], tuple[dict, dict]]
    layout: Callable[[dict], tuple[TaskLayout, Augment | None]]
    check: Callable[[dict], None] = lambda options: None


def scale_layout(
    options: dict,
    ndim: int,
    in_channels: int,
    top: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> TaskLayout:
    """The layout of a 10-class scale task whose top resolution (and canvas) is ``top`` and
    whose resolutions follow the ``min_resolution`` / ``resolution_step`` options."""
    return TaskLayout(
        protocol=options["protocol"],
        ndim=ndim,
        in_channels=in_channels,
        num_classes=10,
        canvas=top,
        resolutions=resolution_grid(top, options["min_resolution"], options["resolution_step"]),
        mean=mean,
        std=std,
    )


def _counts(resolutions: torch.Tensor) -> dict[int, int]:
    values, counts = torch.unique(resolutions, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def assemble(
    name: str,
    layout: TaskLayout,
    train_augment: Augment | None,
    tensors: dict,
    metadata: dict,
    options: dict,
) -> Task:
    """The ``Task`` over built (or cached) split tensors."""
    splits = {}
    for split in SPLITS:
        record = tensors[split]
        augment = train_augment if split == "train" else None
        store = store_from_payload(record["store"], layout.canvas, layout.ndim, augment)
        splits[split] = ScaleSplit(
            store,
            record["labels"],
            record["resolutions"],
            record["pool_index"],
            layout.mean,
            layout.std,
        )
    metadata = {
        **metadata,
        "options": dict(options),
        "split_sizes": {split: len(data) for split, data in splits.items()},
        "per_resolution_counts": {s: _counts(d.resolutions) for s, d in splits.items()},
    }
    shared = {f.name: getattr(layout, f.name) for f in fields(TaskLayout)}
    return Task(
        **shared, name=name, splits=splits, canvas_mode=options["canvas_mode"], metadata=metadata
    )
