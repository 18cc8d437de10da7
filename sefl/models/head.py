"""The multi-level classification head of the SEFL models (specs/sefl-method.md section 4).

For each level i, the last feature map is low-passed to band(i), sampled on a fixed grid,
max-pooled to a few cells and classified by one shared MLP. Level i sees only D_i of the
(equivariant) features, so the level-i logits of an image and of its down-scaled copy agree
for every level both have: the head is exactly invariant level by level.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sefl.spectral import band, fit_spectrum, signed_frequencies

__all__ = ["MultiLevelHead", "band_images"]


def _phases(frequencies: Tensor, grid: int, dtype: torch.dtype, device) -> Tensor:
    """[grid, F] complex: exp(2 pi i k u / grid) for u < grid and the given frequencies k."""
    u = torch.arange(grid, dtype=torch.float64)[:, None]
    phase = 2 * math.pi * u * frequencies.double()[None, :] / grid
    return torch.polar(torch.ones_like(phase), phase).to(device=device, dtype=dtype)


def _as_real_pair(a: Tensor, dim: int) -> Tensor:
    """Complex a -> real [re(a), -im(a)] stacked along ``dim`` (so that it pairs with
    [re(b), im(b)] in a real product to give re(a b))."""
    return torch.cat([a.real, -a.imag], dim=dim)


def band_images(spec: Tensor, n: int, grid: int, ndim: int, bands: list[int]) -> Tensor:
    """The low-pass of an n-point map to each of ``bands``, sampled on a ``grid`` grid.

    spec: ``[B, C, *F]`` -> ``[B, C, len(bands), grid(, grid)]`` real (bands above band(n) give
    the whole map). Band h adds to band h - 1 a ring; in 2D the ring is the sum of three outer
    products (rows +h and -h along v, column h along u), a real product of inner size 6. So the
    rings cost one batched product, and the bands one sum of rings (a product with a 0/1
    matrix), rather than one inverse FFT each.
    """
    h = band(n)
    q = torch.arange(h + 1, device=spec.device)
    twice = torch.where(q == 0, 1.0, 2.0).to(spec.real.dtype)
    ev = _phases(q, grid, spec.dtype, spec.device) * twice  # [grid, Kc]
    if ndim == 1:
        coeffs = spec[..., : h + 1]
        rings = coeffs.real[..., None] * ev.T.real - coeffs.imag[..., None] * ev.T.imag
        return _sum_rings(rings, bands)
    size = 2 * h + 1
    compact = fit_spectrum(spec, size)
    k = signed_frequencies(size, device=spec.device)
    eu = _phases(k, grid, spec.dtype, spec.device)  # [grid, K]
    in_rows = q[None, :] <= k.abs()[:, None]  # a frequency belongs to its row's ring
    row_signals = (compact * in_rows) @ ev.T  # [B, C, K, grid]: each ring row along v
    col_signals = (eu @ (compact * ~in_rows)).transpose(-1, -2)  # [B, C, Kc, grid] along u
    pos, neg = q % size, (-q) % size
    neg_rows = row_signals[..., neg, :] * (q > 0)[:, None]  # row -0 is row +0: count it once
    batch = compact.shape[:-2]
    u_factors = torch.cat(
        [
            _as_real_pair(eu[:, pos].T[:, :, None], -1).expand(*batch, -1, -1, -1),
            _as_real_pair(eu[:, neg].T[:, :, None], -1).expand(*batch, -1, -1, -1),
            _as_real_pair(col_signals[..., None], -1),
        ],
        dim=-1,
    )  # [B, C, H + 1, grid, 6]
    v_factors = torch.stack(
        [
            row_signals[..., pos, :].real,
            row_signals[..., pos, :].imag,
            neg_rows.real,
            neg_rows.imag,
            ev.T.real.expand(*batch, -1, -1),
            ev.T.imag.expand(*batch, -1, -1),
        ],
        dim=-2,
    )  # [B, C, H + 1, 6, grid]
    return _sum_rings(torch.matmul(u_factors, v_factors), bands)


def _sum_rings(rings: Tensor, bands: list[int]) -> Tensor:
    """rings [B, C, H + 1, *space] -> [B, C, len(bands), *space]: band h = rings 0..h."""
    h = rings.shape[2] - 1
    upto = torch.tensor([min(b, h) for b in bands], device=rings.device)
    select = (torch.arange(h + 1, device=rings.device) <= upto[:, None]).to(rings.dtype)
    flat = rings.flatten(3)
    return torch.matmul(select, flat).view(*flat.shape[:2], len(bands), *rings.shape[3:])


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
        size = min(n, self.grid)
        spec = fit_spectrum(spec, size, self.ndim, n)
        bands = [band(i) for i in levels]
        stacked = band_images(spec, size, self.grid, self.ndim, bands).transpose(1, 2)
        pool = F.max_pool2d if self.ndim == 2 else F.max_pool1d
        pooled = pool(stacked.flatten(0, 1), self.pool, ceil_mode=True)
        return self.mlp(pooled.flatten(1)).view(spec.shape[0], len(levels), -1)
