"""Training and evaluation batches of a split: of one resolution each (models that take images
at their native size cannot stack two sizes in one tensor), or of any resolutions (canvas
models, whose inputs all share the canvas size)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from benchmark.tasks.seeding import seeded_generator

__all__ = ["MixedBatchSampler", "ResolutionBatchSampler", "batch_sizes"]


def batch_sizes(count: int, batch_size: int, merge_single: bool) -> list[int]:
    """The sizes of the batches ``count`` items of one resolution are cut into.

    Full batches of ``batch_size``, then the remainder as one last, smaller batch, so every item
    is served. ``merge_single``: a remainder of exactly one item joins the batch before it
    (that batch holds ``batch_size + 1``), because batch norm cannot train on a batch of one;
    a resolution with a single item still gives a batch of one.
    """
    sizes = [batch_size] * (count // batch_size)
    remainder = count % batch_size
    if remainder == 1 and merge_single and sizes:
        sizes[-1] += 1
    elif remainder:
        sizes.append(remainder)
    return sizes


class _BatchSampler:
    """What both samplers share: their arguments, and serving a subclass's ``batches()`` as
    index lists (torch's batch_sampler protocol)."""

    def __init__(
        self,
        resolutions: Tensor,
        batch_size: int,
        shuffle: bool,
        merge_single: bool,
        seed: int = 0,
        epoch: int = 0,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be an int >= 1")
        self.resolutions = resolutions
        self.batch_size, self.shuffle, self.merge_single = batch_size, shuffle, merge_single
        self.seed, self.epoch = seed, epoch

    def __iter__(self) -> Iterator[list[int]]:
        return (indices.tolist() for _, indices in self.batches())


class ResolutionBatchSampler(_BatchSampler):
    """Index batches of one resolution each; usable as a torch ``DataLoader`` batch_sampler.

    resolutions: ``[n]`` the resolution of every item; every item is in exactly one batch.
    ``shuffle``: items are shuffled within each resolution and the batches of all resolutions
    are interleaved in a random order, both seeded by ``(seed, epoch)``; otherwise resolutions
    come in ascending order and items in index order. ``merge_single``: see ``batch_sizes``.
    """

    def batches(self) -> list[tuple[int, Tensor]]:
        """(resolution, indices) of every batch, in serving order."""
        generator = seeded_generator(self.seed, "batches", self.epoch) if self.shuffle else None
        batches = []
        for r in torch.unique(self.resolutions).tolist():
            members = torch.nonzero(self.resolutions == r).flatten()
            if generator is not None:
                members = members[torch.randperm(len(members), generator=generator)]
            sizes = batch_sizes(len(members), self.batch_size, self.merge_single)
            batches.extend((r, chunk) for chunk in torch.split(members, sizes))
        if generator is not None:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        return batches

    def __len__(self) -> int:
        counts = torch.unique(self.resolutions, return_counts=True)[1].tolist()
        return sum(len(batch_sizes(c, self.batch_size, self.merge_single)) for c in counts)


class MixedBatchSampler(_BatchSampler):
    """Index batches drawn from the whole split, whatever their resolutions; the interface of
    ``ResolutionBatchSampler`` (``batches`` gives ``(None, indices)``: no single resolution).

    resolutions: ``[n]`` (only their number is used); every item is in exactly one batch.
    ``shuffle``: one permutation of all items, seeded by ``(seed, epoch)``, cut into batches;
    otherwise index order. ``merge_single``: see ``batch_sizes``.
    """

    def batches(self) -> list[tuple[None, Tensor]]:
        """(None, indices) of every batch, in serving order."""
        if self.shuffle:
            order = torch.randperm(
                len(self.resolutions), generator=seeded_generator(self.seed, "batches", self.epoch)
            )
        else:
            order = torch.arange(len(self.resolutions))
        sizes = batch_sizes(len(self.resolutions), self.batch_size, self.merge_single)
        return [(None, chunk) for chunk in torch.split(order, sizes)]

    def __len__(self) -> int:
        return len(batch_sizes(len(self.resolutions), self.batch_size, self.merge_single))
