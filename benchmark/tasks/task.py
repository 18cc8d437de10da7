"""The ``Task`` object every trial receives (DESIGN.md "Task protocol")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from benchmark.tasks.dataset import ScaleSplit
from benchmark.tasks.loader import CanvasMode, ResolutionLoader
from benchmark.tasks.sampler import MixedBatchSampler, ResolutionBatchSampler
from benchmark.tasks.seeding import seeded_generator
from benchmark.tasks.splits import SPLITS

__all__ = ["Task", "TaskLayout"]


@dataclass
class TaskLayout:
    """What a task is, apart from its data; it follows from the protocol options alone.

    canvas: the size "canvas" models get every image padded (or resized) to; also the top
    resolution N of ``equivariance_images``. resolutions: ascending resolutions at which models
    are measured (test items of the "fourier" protocols carry them; "sesn" items are all at
    28 and these are the resolutions of the equivariance measurement). mean, std: the
    normalisation already applied to every image served.
    """

    protocol: str
    ndim: int
    in_channels: int
    num_classes: int
    canvas: int
    resolutions: list[int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass
class Task(TaskLayout):
    """A built scale task: its layout, its splits, and metadata (split sizes, per-resolution
    counts, sources, the reduced-size warning (None when sizes were not reduced), the
    options)."""

    name: str
    splits: dict[str, ScaleSplit]
    canvas_mode: CanvasMode = "pad"
    metadata: dict = field(default_factory=dict)

    def loader(
        self,
        split: str,
        batch_size: int,
        input_mode: Literal["native", "canvas"] = "native",
        shuffle: bool | None = None,
        seed: int = 0,
        epoch: int = 0,
        limit: int | None = None,
        mixed: bool = False,
    ) -> ResolutionLoader:
        """Batches ``(x [B, C, r, r], y [B], r)`` of one resolution each (1D: ``[B, C, r]``);
        ``mixed``: batches drawn from every resolution at once (r None), on the canvas, so only
        with ``input_mode="canvas"``.

        Every item is served once per epoch, at any batch size: each resolution (``mixed``: the
        whole split) gives full batches and one smaller last batch. "train": shuffled (unless ``shuffle=False``) by
        (seed, epoch), training augmentation, and no batch of one (a last batch of one joins the
        batch before it; a resolution with a single training item is refused), because batch
        norm cannot train on one image. "val"/"test": in order. ``input_mode="canvas"`` serves
        x on ``self.canvas`` (r still names the native resolution). ``limit``: at most that
        many batches.
        """
        if split not in SPLITS:
            raise ValueError(f"split={split!r} must be one of {SPLITS}")
        if input_mode not in ("native", "canvas"):
            raise ValueError(f"input_mode={input_mode!r} must be 'native' or 'canvas'")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"limit={limit!r} must be None or an int >= 1")
        if mixed and input_mode != "canvas":
            raise ValueError("mixed=True needs input_mode='canvas': images at their native "
                             "sizes cannot share a batch")
        train = split == "train"
        data = self.splits[split]
        sampler = (MixedBatchSampler if mixed else ResolutionBatchSampler)(
            data.resolutions,
            batch_size,
            shuffle=train if shuffle is None else shuffle,
            merge_single=train,
            seed=seed,
            epoch=epoch,
        )
        if train and batch_size > 1 and not mixed:
            self._check_no_single_batch(data)
        canvas = self.canvas if input_mode == "canvas" else None
        return ResolutionLoader(data, sampler, train, canvas, self.canvas_mode, self.ndim, limit)

    @staticmethod
    def _check_no_single_batch(data: ScaleSplit) -> None:
        # A resolution with one training item can only be served as a batch of one.
        values, counts = torch.unique(data.resolutions, return_counts=True)
        single = values[counts == 1].tolist()
        if single:
            n = len(values)
            raise ValueError(
                f"the train split has a single item at resolution(s) {single}, which would be "
                f"a training batch of one (batch norm cannot train on it); use n_train >= "
                f"{2 * n} (two per resolution, {n} resolutions)"
            )

    def equivariance_images(self, n: int, seed: int = 0) -> Tensor:
        """A fixed, seeded subset of n normalised test images at the top resolution N:
        ``[n, C, N, N]`` (1D ``[n, C, N]``); their down-scaled copies are made by
        ``sefl.equivariance.downscale`` when measuring."""
        test = self.splits["test"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(test):
            raise ValueError(f"n={n!r} must be an int in 1..{len(test)} (the test split size)")
        chosen = torch.randperm(len(test), generator=seeded_generator(seed, "equivariance"))[:n]
        return test.top_images(chosen)
