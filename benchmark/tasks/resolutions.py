"""The resolutions of a task and their seeded, balanced assignment to items."""

from __future__ import annotations

import torch
from torch import Tensor

from sefl.spectral import resample

__all__ = ["balanced_resolutions", "downscale_groups", "resolution_grid", "to_resolution"]


def resolution_grid(top: int, minimum: int, step: int) -> list[int]:
    """Ascending resolutions ``top, top - step, ...`` down to ``minimum``: the top resolution
    is always included, whatever the step."""
    if minimum > top:
        raise ValueError(f"min_resolution={minimum} exceeds the top resolution {top}")
    return list(range(top, minimum - 1, -step))[::-1]


def balanced_resolutions(labels: Tensor, grid: list[int], generator: torch.Generator) -> Tensor:
    """One resolution from ``grid`` per item, balanced overall and within every class.

    labels: ``[n]`` -> ``[n]`` int64. Items are ordered by class (randomly within a class) and
    dealt the resolutions in a shuffled cycle, so any two resolutions' counts differ by at most
    one, in the whole split and in each class.
    """
    n = len(labels)
    order = torch.randperm(n, generator=generator)
    order = order[torch.argsort(labels[order], stable=True)]
    cycle = torch.tensor(grid)[torch.randperm(len(grid), generator=generator)]
    assigned = torch.empty(n, dtype=torch.long)
    assigned[order] = cycle[torch.arange(n) % len(grid)]
    return assigned


def to_resolution(x: Tensor, size: int, ndim: int) -> Tensor:
    """Ideal resampling of ``[..., n]`` / ``[..., n, n]`` to ``size``; the identity when
    ``size == n`` (an image at the top resolution is served as stored)."""
    if x.shape[-1] == size:
        return x
    return resample(x, size, ndim)


def downscale_groups(
    images: Tensor, resolutions: Tensor, ndim: int
) -> tuple[dict[int, Tensor], Tensor]:
    """Every image at its own resolution, grouped by resolution.

    images: ``[n, C, N]`` or ``[n, C, N, N]`` float, resolutions ``[n]`` -> ({r: ``[n_r, C, r..]``},
    position ``[n]``: each image's row in its group).
    """
    groups = {}
    position = torch.empty(len(images), dtype=torch.long)
    for r in torch.unique(resolutions).tolist():
        members = torch.nonzero(resolutions == r).flatten()
        groups[r] = to_resolution(images[members], r, ndim).contiguous()
        position[members] = torch.arange(len(members))
    return groups, position
