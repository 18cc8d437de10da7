"""The multi-level classification head of the SEFL models (specs/sefl-method.md section 4).

For each level i, the last feature map is low-passed to band(i), sampled on a fixed grid,
max-pooled to a few cells and classified by one shared MLP. Level i sees only D_i of the
(equivariant) features, so the level-i logits of an image and of its down-scaled copy agree
for every level both have: the head is exactly invariant level by level.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from sefl.spectral import band, fit_spectrum, signed_frequencies

__all__ = ["MultiLevelHead", "band_images", "pooled_band_images"]


def _phases(frequencies: Tensor, grid: int, dtype: torch.dtype, device) -> Tensor:
    """[grid, F] complex: exp(2 pi i k u / grid) for u < grid and the given frequencies k."""
    u = torch.arange(grid, dtype=torch.float64, device=device)[:, None]
    phase = 2 * math.pi * u * frequencies.to(device=device, dtype=torch.float64)[None, :] / grid
    return torch.polar(torch.ones_like(phase), phase).to(dtype=dtype)


def _half_phases(h: int, grid: int, dtype: torch.dtype, device) -> tuple[Tensor, Tensor]:
    """q = 0..h and [grid, h + 1] complex exp(2 pi i q v / grid), doubled for q > 0 (the
    half-spectrum's Hermitian twin)."""
    q = torch.arange(h + 1, device=device)
    twice = torch.where(q == 0, 1.0, 2.0).to(dtype.to_real())
    return q, _phases(q, grid, dtype, device) * twice


def _ring_factors_2d(spec: Tensor, n: int, grid: int) -> tuple[Tensor, Tensor]:
    """The rings of a 2D map's spectrum as real products: spec ``[B, C, K, Kc]`` (the compact
    ``2 band(n) + 1`` half-spectrum) -> U ``[B, C, H + 1, grid, 4]``, V ``[B, C, H + 1, 4,
    grid]`` with ring h's image (u, v) = (U[h] @ V[h])[u, v], H = band(n).

    Ring h is max(|k|, q) = h: rows +h and -h along v and column h along u. The two rows share
    the phase e(h u) up to conjugation, so they fold into cos(h u) P(v) - sin(h u) Q(v), and the
    column is Re(C(u) e(h v)): an inner size of 4.
    """
    h = band(n)
    q, ev = _half_phases(h, grid, spec.dtype, spec.device)  # ev [grid, Kc]
    size = 2 * h + 1
    compact = fit_spectrum(spec, size)
    k = signed_frequencies(size, device=spec.device)
    eu = _phases(k, grid, spec.dtype, spec.device)  # [grid, K]
    in_rows = q[None, :] <= k.abs()[:, None]  # a frequency belongs to its row's ring
    row_signals = (compact * in_rows) @ ev.T  # [B, C, K, grid]: each ring row along v
    col_signals = (eu @ (compact * ~in_rows)).transpose(-1, -2)  # [B, C, Kc, grid] along u
    pos, neg = q % size, (-q) % size
    plus = row_signals[..., pos, :]
    minus = row_signals[..., neg, :] * (q > 0)[:, None]  # row -0 is row +0: count it once
    batch = compact.shape[:-2]
    phase = eu[:, pos].T  # [H + 1, grid]: e(h u)
    u_factors = torch.stack([phase.real.expand(*batch, -1, -1),
                             phase.imag.expand(*batch, -1, -1),
                             col_signals.real, col_signals.imag], dim=-1)
    v_factors = torch.stack([plus.real + minus.real, minus.imag - plus.imag,
                             ev.T.real.expand(*batch, -1, -1),
                             -ev.T.imag.expand(*batch, -1, -1)], dim=-2)
    return u_factors, v_factors


def band_images(spec: Tensor, n: int, grid: int, ndim: int, bands: list[int]) -> Tensor:
    """The low-pass of an n-point map to each of ``bands``, sampled on a ``grid`` grid.

    spec: ``[B, C, *F]`` -> ``[B, C, len(bands), grid(, grid)]`` real (bands above band(n) give
    the whole map). Band h adds to band h - 1 a ring (2D: ``_ring_factors_2d``), so the rings
    cost one batched product and the bands one sum of rings (a product with a 0/1 matrix),
    rather than one inverse FFT each.
    """
    if ndim == 1:
        h = band(n)
        _, ev = _half_phases(h, grid, spec.dtype, spec.device)  # [grid, Kc]
        coeffs = spec[..., : h + 1]
        rings = coeffs.real[..., None] * ev.T.real - coeffs.imag[..., None] * ev.T.imag
        return _sum_rings(rings, bands)
    return _sum_rings(torch.matmul(*_ring_factors_2d(spec, n, grid)), bands)


def _pooled_bands_2d(spec: Tensor, n: int, grid: int, bands: tuple[int, ...], pool: int
                     ) -> tuple[Tensor, Tensor]:
    """Max-pooled band images of a 2D map, built ring by ring: each band image is the one
    before plus a ring, and is pooled as soon as it is complete, so the images of every ring
    and band are never held at once (they dominated the head's memory traffic). The loop runs
    over the rings (at most band(grid) + 1), each step one product over every image and
    channel, with no host synchronisation; summing all rings at once (a cumulative sum over
    their stacked images) measured 2.5x slower on a CPU.

    -> pooled ``[B, C, len(bands), *cells]`` and the argmax indices ``[B, C * len(bands),
    *cells]`` within each grid x grid image (as ``F.max_pool2d`` of the stacked images).
    """
    u_factors, v_factors = (f.flatten(0, 1) for f in _ring_factors_2d(spec, n, grid))
    h = u_factors.shape[1] - 1
    rings_of = [min(b, h) for b in bands]  # bands above the map's band are the whole map
    image, pooled_at = None, {}
    for ring in range(max(rings_of) + 1):
        if image is None:
            image = torch.bmm(u_factors[:, ring], v_factors[:, ring])
        else:
            image = image.baddbmm_(u_factors[:, ring], v_factors[:, ring])
        if ring in rings_of:
            pooled_at[ring] = F.max_pool2d(image, pool, ceil_mode=True, return_indices=True)
    batch, channels = spec.shape[:2]
    pooled = torch.stack([pooled_at[r][0] for r in rings_of], 1)  # [BC, L, *cells]
    where = torch.stack([pooled_at[r][1] for r in rings_of], 1)
    cells = pooled.shape[2:]
    return (pooled.view(batch, channels, len(bands), *cells),
            where.view(batch, channels * len(bands), *cells))


@functools.lru_cache(maxsize=256)
def _on_device(values: tuple[int, ...], device: torch.device) -> Tensor:
    """A small integer tensor, built once per device: no host-to-device copy per step."""
    return torch.tensor(values, device=device)


def _sum_rings(rings: Tensor, bands: list[int]) -> Tensor:
    """rings [B, C, H + 1, *space] -> [B, C, len(bands), *space]: band h = rings 0..h."""
    h = rings.shape[2] - 1
    upto = _on_device(tuple(min(b, h) for b in bands), rings.device)
    select = (torch.arange(h + 1, device=rings.device) <= upto[:, None]).to(rings.dtype)
    flat = rings.flatten(3)
    return torch.matmul(select, flat).view(*flat.shape[:2], len(bands), *rings.shape[3:])


class _PooledBands(torch.autograd.Function):
    """Max-pool of every band image, with a backward that goes from each window's maximum
    straight to the spectrum instead of through the images (``pooled_band_images``)."""

    @staticmethod
    def forward(ctx, spec, n, grid, ndim, bands, pool):
        if ndim == 2:
            pooled, where = _pooled_bands_2d(spec, n, grid, bands, pool)
        else:
            images = band_images(spec, n, grid, ndim, list(bands))  # [B, C, L, grid]
            pooled, where = F.max_pool1d(images.flatten(1, 2), pool, ceil_mode=True,
                                         return_indices=True)
            pooled = pooled.view(*images.shape[:3], *pooled.shape[2:])
        ctx.save_for_backward(where)
        ctx.shape, ctx.n, ctx.grid, ctx.ndim, ctx.bands = spec.shape, n, grid, ndim, bands
        return pooled

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (where,) = ctx.saved_tensors
        h, grid, device = band(ctx.n), ctx.grid, grad.device
        dtype = grad.dtype.to_complex()
        batch = ctx.shape[0] * ctx.shape[1]
        # Window maximum j of image u (or (u, v)) of band b_j got gradient g_j; the image is
        # Re(sum_k X[k] e_k(u)), so X[k] gets sum_j g_j conj(e_k(u_j)) over the j with k in
        # band b_j. The band max(|kx|, q) <= b is a product of one mask per axis, so in 2D the
        # sum is one product of a [K, J] by a [J, Kc] matrix.
        cells = where.shape[2:].numel()
        levels = _on_device(tuple(min(b, h) for b in ctx.bands), device)
        bands_j = levels.repeat_interleave(cells)  # [J]
        where = where.reshape(batch, -1)
        g = grad.reshape(batch, -1).to(dtype)
        q, ev = _half_phases(h, grid, dtype, device)
        ev = ev.conj()  # [grid, Kc]
        v = where % grid if ctx.ndim == 2 else where
        cols = ev[v] * (q <= bands_j[:, None])  # [BC, J, Kc]
        if ctx.ndim == 1:
            out = torch.einsum("bj,bjq->bq", g, cols)
        else:
            k = signed_frequencies(2 * h + 1, device=device)
            eu = _phases(k, grid, dtype, device).conj()  # [grid, K]
            rows = eu[where // grid] * (k.abs() <= bands_j[:, None]) * g[..., None]  # [BC, J, K]
            out = rows.transpose(1, 2) @ cols  # [BC, K, Kc]
        return out.view(ctx.shape), None, None, None, None, None


def pooled_band_images(
    spec: Tensor, n: int, grid: int, ndim: int, bands: tuple[int, ...], pool: int
) -> Tensor:
    """Max-pool (window ``pool``, ceil mode) of ``band_images(spec, n, grid, ndim, bands)``:
    spec, the compact ``2 band(n) + 1`` spectrum of a map -> ``[B, C, len(bands), *cells]``.

    The same values and gradients as pooling the images with autograd, but the backward costs
    one small product instead of passes over every band's image.
    """
    return _PooledBands.apply(spec, n, grid, ndim, tuple(bands), pool)


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
        compact = 2 * band(min(n, self.grid)) + 1
        spec = fit_spectrum(spec, compact, self.ndim, n)
        bands = [band(i) for i in levels]
        # Several levels share a band (band(2m) = band(2m - 1)): pool each band once, then give
        # every level its band's features (each level keeps its own dropout).
        distinct = tuple(sorted(set(bands)))
        which = _on_device(tuple(distinct.index(b) for b in bands), spec.device)
        pooled = pooled_band_images(spec, compact, self.grid, self.ndim, distinct, self.pool)
        features = pooled.index_select(2, which).transpose(1, 2)
        return self.mlp(features.flatten(2)).view(spec.shape[0], len(levels), -1)
