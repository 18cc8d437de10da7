"""Training augmentations on batches of raw-scale images (pixel values in [0, 1], before the
normalisation), each drawing from the generator it is given.

x: ``[B, C, n, n]`` (``CircularShift`` also ``[B, C, n]``) -> the same shape. Zero fill means
black, as in torchvision on PIL images. Augmentations are small picklable objects, so a split
that holds one can go to DataLoader workers or Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Augment",
    "CircularShift",
    "Compose",
    "Cutout",
    "RandomCrop",
    "RandomRescale",
    "compose",
    "horizontal_flip",
    "rescale_about_centre",
]

Augment = Callable[[Tensor, torch.Generator], Tensor]


@dataclass(frozen=True)
class Compose:
    """The given augmentations, applied in order."""

    augments: tuple[Augment, ...]

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        for augment in self.augments:
            x = augment(x, generator)
        return x


def compose(*augments: Augment | None) -> Augment | None:
    """The augmentations given (None entries skipped) in order; None when there are none."""
    chosen = tuple(a for a in augments if a is not None)
    return Compose(chosen) if chosen else None


def _take(x: Tensor, rows: Tensor, cols: Tensor | None) -> Tensor:
    """Per-sample index maps: out[b, c, i, j] = x[b, c, rows[b, i], cols[b, j]]
    (1D: out[b, c, i] = x[b, c, rows[b, i]])."""
    batch = torch.arange(len(x))
    if cols is None:
        return x[batch[:, None], :, rows].permute(0, 2, 1)
    return x[batch[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@dataclass(frozen=True)
class CircularShift:
    """Periodic shift of every sample by its own integer offsets in ``[-m, m]`` per axis,
    ``m = max(1, round(max_fraction * n))``."""

    max_fraction: float

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n = x.shape[-1]
        m = max(1, round(self.max_fraction * n))
        axes = x.dim() - 2
        shifts = torch.randint(-m, m + 1, (axes, len(x)), generator=generator)
        grids = [(torch.arange(n)[None, :] - s[:, None]) % n for s in shifts]
        return _take(x, grids[0], grids[1] if axes == 2 else None)


def rescale_about_centre(x: Tensor, factors: Tensor) -> Tensor:
    """Each image scaled by its factor about the image centre on the same canvas, bicubic, zero
    fill, clipped to [0, 1] like an 8-bit image (torchvision ``RandomAffine(0, scale=...)``).

    x: ``[B, C, n, n]``, factors ``[B]`` -> ``[B, C, n, n]``.
    """
    theta = torch.zeros(len(x), 2, 3, dtype=x.dtype)
    # The grid maps output coordinates to input ones, hence the inverse factor.
    theta[:, 0, 0] = 1.0 / factors
    theta[:, 1, 1] = 1.0 / factors
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bicubic", padding_mode="zeros", align_corners=False)
    return out.clamp(0.0, 1.0)


@dataclass(frozen=True)
class RandomRescale:
    """``rescale_about_centre`` by a factor drawn uniformly from ``[low, high]`` per sample."""

    low: float
    high: float

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        uniform = torch.rand(len(x), generator=generator, dtype=x.dtype)
        return rescale_about_centre(x, self.low + (self.high - self.low) * uniform)


@dataclass(frozen=True)
class RandomCrop:
    """Zero-pad by ``padding`` on every side, then crop a random window of the original size."""

    padding: int

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n, pad = x.shape[-1], self.padding
        padded = F.pad(x, (pad,) * 4)
        starts = torch.randint(0, 2 * pad + 1, (2, len(x)), generator=generator)
        rows, cols = (s[:, None] + torch.arange(n)[None, :] for s in starts)
        return _take(padded, rows, cols)


def horizontal_flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Mirror each sample left-right with probability 1/2."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


@dataclass(frozen=True)
class Cutout:
    """One ``size`` x ``size`` hole per sample, centred anywhere on the image and clipped at its
    border (DeVries & Taylor 2017), filled with ``fill`` per channel (the mean: 0 once
    normalised, as in the published pipeline where Cutout follows Normalize)."""

    size: int
    fill: Sequence[float]

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n = x.shape[-1]
        centres = torch.randint(0, n, (2, len(x)), generator=generator)
        grid = torch.arange(n)[None, :]
        inside = [
            (grid >= (c - self.size // 2)[:, None])
            & (grid < (c + self.size - self.size // 2)[:, None])
            for c in centres
        ]
        hole = (inside[0][:, :, None] & inside[1][:, None, :])[:, None]
        fill = torch.tensor(self.fill, dtype=x.dtype)[None, :, None, None]
        return torch.where(hole, fill, x)
