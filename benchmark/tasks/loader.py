"""Serving a split as batches ``(x, y, r)`` of one resolution, natively or on a canvas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from torch import Tensor

from benchmark.tasks.dataset import ScaleSplit
from benchmark.tasks.resolutions import to_resolution
from benchmark.tasks.sampler import ResolutionBatchSampler
from benchmark.tasks.seeding import seeded_generator
from sefl.canvas import pad_to_canvas

__all__ = ["ResolutionLoader", "to_canvas"]

CanvasMode = Literal["pad", "resize"]


def to_canvas(x: Tensor, canvas: int, mode: CanvasMode, ndim: int) -> Tensor:
    """x ``[B, C, r..]`` -> ``[B, C, canvas..]``: zero-padded, centred ("pad"), or ideally
    up-sampled ("resize"); unchanged when r already is the canvas size."""
    if mode == "pad":
        return pad_to_canvas(x, canvas)
    return to_resolution(x, canvas, ndim)


class ResolutionLoader:
    """Iterable of ``(x [B, C, r..] float32, y [B] int64, r)``; every batch has one resolution.

    ``augment``: apply the split's training augmentation, each batch with its own generator
    seeded by (seed, epoch, batch number), so a run is reproducible batch by batch.
    ``canvas``: None serves images at their native resolution, else on that canvas size.
    """

    def __init__(
        self,
        split: ScaleSplit,
        sampler: ResolutionBatchSampler,
        augment: bool,
        canvas: int | None,
        canvas_mode: CanvasMode,
        ndim: int,
        limit: int | None = None,
    ):
        self.split, self.sampler, self.augment = split, sampler, augment
        self.canvas, self.canvas_mode, self.ndim, self.limit = canvas, canvas_mode, ndim, limit

    def __len__(self) -> int:
        n = len(self.sampler)
        return n if self.limit is None else min(n, self.limit)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, int]]:
        batches = self.sampler.batches()[: len(self)]
        for number, (resolution, indices) in enumerate(batches):
            generator = None
            if self.augment:
                generator = seeded_generator(
                    self.sampler.seed, "augment", self.sampler.epoch, number
                )
            x = self.split.fetch(indices, generator)
            if self.canvas is not None:
                x = to_canvas(x, self.canvas, self.canvas_mode, self.ndim)
            yield x, self.split.labels[indices], resolution
