"""Hermite-Gaussian steerable bases of the SESN layers (specs/baselines.md section 1.1).

Reference: Sosnovik, Szmaja & Smeulders, "Scale-Equivariant Steerable Networks", ICLR 2020
(ISosnovik/sesn ``models/impl/ses_basis.py``), restated in our words:

* A basis is a tensor ``[F, S, k, k]``: F functions, each sampled at S scales on a k x k grid.
* At scale sigma_s the functions live on a centred odd support
  ``n_s = 2 * floor(floor(k * sigma_s / sigma_max) / 2) + 1`` (``scale_supports``) and are
  zero-padded to k x k, so small scales have small support.
* One Hermite-Gaussian factor is ``g_n(x; sigma) = He_n(x / sigma) * exp(-x^2 / (2 sigma^2)) /
  sigma`` (He: probabilists' Hermite polynomials); a 2D function is the outer product
  ``psi[i, j] = g_a(x_i) * g_b(x_j)`` of a row factor of order a and a column factor of order b.
* Basis **A** (STL models): all E x E order pairs at one width sigma_s.
* Basis **B** (MNIST models): widths sigma_s / mult^j for j = 0, 1, ...; at each width all order
  pairs with a + b <= max_order; concatenated and truncated to F = E^2 functions.
* Order pairs are enumerated with the column order b outer and the row order a inner.
* ``normalize_by_min_scale`` divides every function by its L2 norm at the first (smallest)
  scale, the same factor at every scale, so the relative amplitude across scales is kept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "BasisKind",
    "hermite_basis",
    "hermite_e",
    "hermite_gaussian_grid",
    "multiwidth_hermite_gaussian_grid",
    "normalize_by_min_scale",
    "scale_supports",
]

BasisKind = Literal["A", "B"]


def hermite_e(x: Tensor, n: int) -> Tensor:
    """Probabilists' Hermite polynomial He_n at x (any shape), by He_{m+1} = x He_m - m He_{m-1}."""
    if n < 0:
        raise ValueError(f"Hermite order n must be >= 0, got {n}")
    previous, current = torch.ones_like(x), x.clone()
    if n == 0:
        return previous
    for m in range(1, n):
        previous, current = current, x * current - m * previous
    return current


def _check_scales(scales: Sequence[float]) -> list[float]:
    scales = [float(s) for s in scales]
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be a non-empty list of positive numbers, got {scales}")
    if any(b <= a for a, b in itertools.pairwise(scales)):
        raise ValueError(f"scales must be strictly increasing, got {scales}")
    return scales


def scale_supports(kernel_size: int, scales: Sequence[float]) -> list[int]:
    """The odd support n_s of each scale: ``2 * floor(floor(k * s / max(scales)) / 2) + 1``."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
    scales = _check_scales(scales)
    # the small epsilon keeps k * s / s_max == k from rounding down to k - 1
    return [int(kernel_size * s / scales[-1] + 1e-9) // 2 * 2 + 1 for s in scales]


def _factor(size: int, sigma: float, order: int) -> Tensor:
    """g_order on the centred integer grid of ``size`` points, float64: [size]."""
    x = torch.arange(size, dtype=torch.float64) - size // 2
    return hermite_e(x / sigma, order) * torch.exp(-(x**2) / (2 * sigma**2)) / sigma


def _outer(size: int, sigma: float, pairs: Sequence[tuple[int, int]]) -> Tensor:
    """psi[i, j] = g_a(x_i) g_b(x_j) for each (a, b) in pairs: [len(pairs), size, size]."""
    return torch.stack(
        [torch.outer(_factor(size, sigma, a), _factor(size, sigma, b)) for a, b in pairs]
    )


def hermite_gaussian_grid(size: int, sigma: float, max_order: int) -> Tensor:
    """All (max_order + 1)^2 order pairs at one width sigma: [(max_order + 1)^2, size, size]."""
    orders = range(max_order + 1)
    return _outer(size, sigma, [(a, b) for b in orders for a in orders])


def multiwidth_hermite_gaussian_grid(
    size: int, sigma: float, num_funcs: int, mult: float, max_order: int = 4
) -> Tensor:
    """Basis B at one scale: widths sigma / mult^j, order pairs a + b <= max_order at each,
    the first ``num_funcs`` functions: [num_funcs, size, size]."""
    if mult <= 0:
        raise ValueError(f"mult must be > 0, got {mult}")
    orders = range(max_order + 1)
    pairs = [(a, b) for b in orders for a in orders if a + b <= max_order]
    widths = math.ceil(num_funcs / len(pairs))
    grids = [_outer(size, sigma / mult**j, pairs) for j in range(widths)]
    return torch.cat(grids)[:num_funcs]


def _pad_to(grid: Tensor, kernel_size: int) -> Tensor:
    pad = (kernel_size - grid.shape[-1]) // 2
    return torch.nn.functional.pad(grid, (pad, pad, pad, pad))


def hermite_basis(
    kind: BasisKind,
    kernel_size: int,
    scales: Sequence[float],
    effective_size: int,
    mult: float = 1.2,
    max_order: int = 4,
) -> Tensor:
    """The unnormalised basis of ``kind`` ("A" or "B"): [E^2, S, k, k], float64.

    ``mult`` and ``max_order`` are used by basis B only (A uses orders 0..E-1).
    """
    if effective_size < 1:
        raise ValueError(f"effective_size must be >= 1, got {effective_size}")
    num_funcs = effective_size**2
    per_scale = []
    for sigma, support in zip(scales, scale_supports(kernel_size, scales)):
        if kind == "A":
            grid = hermite_gaussian_grid(support, sigma, effective_size - 1)
        elif kind == "B":
            if support < 3:
                raise ValueError(
                    f"scale {sigma} has a support of {support} point(s) on a {kernel_size}x"
                    f"{kernel_size} kernel; basis B needs at least 3 (use a larger kernel_size)"
                )
            grid = multiwidth_hermite_gaussian_grid(support, sigma, num_funcs, mult, max_order)
        else:
            raise ValueError(f"basis kind must be 'A' or 'B', got {kind!r}")
        per_scale.append(_pad_to(grid, kernel_size))
    return torch.stack(per_scale, 1)


def normalize_by_min_scale(basis: Tensor) -> Tensor:
    """basis [F, S, k, k] divided by each function's L2 norm at the first (smallest) scale."""
    norm = basis[:, :1].pow(2).sum((-2, -1), keepdim=True).sqrt()
    return basis / norm
