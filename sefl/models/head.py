"""The multi-level classification head of the SEFL models (specs/sefl-method.md section 4).

For each level i, the last feature map is low-passed to band(i), sampled on a fixed grid,
max-pooled to a few cells and classified by one shared MLP. Level i sees only D_i of the
(equivariant) features, so the level-i logits of an image and of its down-scaled copy agree
for every level both have: the head is exactly invariant level by level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sefl.spectral import band, fit_spectrum, signed_frequencies, to_space

__all__ = ["MultiLevelHead", "level_masks"]


def level_masks(levels: list[int], grid: int, ndim: int, device=None) -> Tensor:
    """[L, *F] real: the band(i) low-pass of each level i in a ``grid``'s spectrum layout."""
    q = signed_frequencies(grid, half=True, device=device)
    radius = q if ndim == 1 else torch.maximum(signed_frequencies(grid, device=device).abs()[:, None], q)
    return torch.stack([(radius <= band(i)).float() for i in levels])


class MultiLevelHead(nn.Module):
    """spec ``[B, C, *F]`` of an n-point feature map -> logits ``[B, len(levels(n)), classes]``.

    Levels are ``first, first + step, ...`` up to the input's top level, each capped at ``cap``;
    each is sampled on a ``grid``
    grid and max-pooled with window ``pool`` (ceil mode), then the shared MLP: LayerNorm,
    Linear -> hidden, Dropout, LayerNorm, ReLU, Linear -> classes.
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        ndim: int,
        grid: int,
        pool: int,
        first_level: int,
        level_step: int = 1,
        level_cap: int | None = None,
        hidden: int = 256,
        dropout: float = 0.75,
    ) -> None:
        super().__init__()
        self.ndim = ndim
        self.grid = grid
        self.pool = pool
        self.first_level = first_level
        self.level_step = level_step
        self.level_cap = level_cap if level_cap is not None else grid
        cells = (-(-grid // pool)) ** ndim
        self.mlp = nn.Sequential(
            nn.LayerNorm(cells * channels),
            nn.Linear(cells * channels, hidden),
            nn.Dropout(dropout),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def levels(self, top: int) -> list[int]:
        """The levels a ``top``-level input gets (ValueError when there is none)."""
        steps = range(self.first_level, top + 1, self.level_step)
        levels = [min(i, self.level_cap) for i in steps]
        if not levels:
            raise ValueError(
                f"a feature map of size {top} is below the head's first level {self.first_level}"
            )
        return levels

    def forward(self, spec: Tensor, n: int, top: int | None = None) -> Tensor:
        """spec: the n-point map's spectrum; ``top`` (default n): the input's resolution, which
        decides the levels."""
        levels = self.levels(n if top is None else top)
        on_grid = fit_spectrum(spec, self.grid, self.ndim, n)
        masks = level_masks(levels, self.grid, self.ndim, spec.device).to(spec.real.dtype)
        stacked = on_grid.unsqueeze(1) * masks[:, None]  # [B, L, C, *F]
        space = to_space(stacked, self.grid, self.ndim)
        pool = F.max_pool2d if self.ndim == 2 else F.max_pool1d
        pooled = pool(space.flatten(0, 1), self.pool, ceil_mode=True)
        return self.mlp(pooled.flatten(1)).view(spec.shape[0], len(levels), -1)
