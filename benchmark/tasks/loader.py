"""Serving a split as batches ``(x, y, r)``: of one resolution r, natively or on a canvas, or of
mixed resolutions on a canvas (r None)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
from torch import Tensor

from benchmark.tasks.dataset import ScaleSplit
from benchmark.tasks.resolutions import to_resolution
from benchmark.tasks.sampler import MixedBatchSampler, ResolutionBatchSampler
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
    """Iterable of ``(x [B, C, r..] float32, y [B] int64, r)``: a ``ResolutionBatchSampler``'s
    batches have one resolution r each; a ``MixedBatchSampler``'s mix them (r None), so they
    need a canvas, where every image has the same size (``Task.loader`` refuses them without).

    ``augment``: apply the split's training augmentation, each batch with its own generator
    seeded by (seed, epoch, batch number), so a run is reproducible batch by batch.
    ``canvas``: None serves images at their native resolution, else on that canvas size.
    """

    def __init__(
        self,
        split: ScaleSplit,
        sampler: ResolutionBatchSampler | MixedBatchSampler,
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

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, int | None]]:
        batches = self.sampler.batches()[: len(self)]
        for number, (resolution, indices) in enumerate(batches):
            generator = None
            if self.augment:
                generator = seeded_generator(
                    self.sampler.seed, "augment", self.sampler.epoch, number
                )
            if resolution is None:
                x = self._mixed(indices, generator)
            else:
                x = self.split.fetch(indices, generator)
                if self.canvas is not None:
                    x = to_canvas(x, self.canvas, self.canvas_mode, self.ndim)
            yield x, self.split.labels[indices], resolution

    def _mixed(self, indices: Tensor, generator) -> Tensor:
        """``[B, C, canvas..]``: each resolution's items fetched (and augmented) together, put on
        the canvas, and returned in the order of ``indices``."""
        resolutions = self.split.resolutions[indices]
        parts, rows = [], []
        for r in torch.unique(resolutions).tolist():
            members = torch.nonzero(resolutions == r).flatten()
            part = self.split.fetch(indices[members], generator)
            parts.append(to_canvas(part, self.canvas, self.canvas_mode, self.ndim))
            rows.append(members)
        x = torch.empty((len(indices),) + parts[0].shape[1:], dtype=parts[0].dtype)
        x[torch.cat(rows)] = torch.cat(parts)
        return x
