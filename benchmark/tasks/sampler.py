"""Batches that each hold a single resolution (models that take images at their native size
cannot stack two sizes in one tensor)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from benchmark.tasks.seeding import seeded_generator

__all__ = ["ResolutionBatchSampler"]


class ResolutionBatchSampler:
    """Index batches of one resolution each; usable as a torch ``DataLoader`` batch_sampler.

    resolutions: ``[n]`` the resolution of every item. ``shuffle``: items are shuffled within
    each resolution and the batches of all resolutions are interleaved in a random order, both
    seeded by ``(seed, epoch)``; otherwise resolutions come in ascending order and items in
    index order. ``drop_last``: the last incomplete batch of each resolution is dropped.
    """

    def __init__(
        self,
        resolutions: Tensor,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        seed: int = 0,
        epoch: int = 0,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be an int >= 1")
        self.resolutions = resolutions
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.epoch = seed, epoch

    def batches(self) -> list[tuple[int, Tensor]]:
        """(resolution, indices) of every batch, in serving order."""
        generator = seeded_generator(self.seed, "batches", self.epoch) if self.shuffle else None
        batches = []
        for r in torch.unique(self.resolutions).tolist():
            members = torch.nonzero(self.resolutions == r).flatten()
            if generator is not None:
                members = members[torch.randperm(len(members), generator=generator)]
            for chunk in torch.split(members, self.batch_size):
                if len(chunk) == self.batch_size or not self.drop_last:
                    batches.append((r, chunk))
        if generator is not None:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return (indices.tolist() for _, indices in self.batches())

    def __len__(self) -> int:
        counts = torch.unique(self.resolutions, return_counts=True)[1]
        if self.drop_last:
            return int((counts // self.batch_size).sum())
        return int(((counts + self.batch_size - 1) // self.batch_size).sum())
