"""The fast path of ``ScaleEqNonlin``: DFT matrices per level, and the 1D implementation.

The straightforward implementation (the oracle) loops in Python over every resolution with a
pair of full-size FFTs and an instance norm each. The fast path visits only the levels (the
resolutions that add frequencies, ``sefl.layers.levels``) and, for each level r:

    x_r = D_r x                           a small inverse-DFT matrix on the band of r
    y_r = act(scale_r * x_r + shift_r)    the norm's statistics come from the spectrum
    out = the ring of DFT_r(y_r)           only the ring's frequencies are computed

Norm statistics by Parseval: the mean of D_r x is the zero-frequency coefficient and its variance
is the power of the other frequencies in band(r), so no spatial reduction is needed. This module
holds the matrices both dimensions share, the norm's weights and the 1D path
(``sefl.layers.rings_2d`` is the 2D one). Spectra are in the compact layout of the input's band,
``Kc = band(n) + 1`` coefficients (``fit_spectrum(spec, 2 band(n) + 1)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from sefl.layers.levels import LevelPlan
from sefl.spectral import band, signed_frequencies

__all__ = [
    "Level1d",
    "apply_levels_1d",
    "band_power_weights",
    "columns_inverse",
    "half_forward",
    "hermitian_projection",
    "hermitian_zero_column",
    "levels_1d",
]

TWO_PI = 2 * math.pi


def hermitian_projection(spec: Tensor) -> Tensor:
    """Make the zero frequency of a 1D half spectrum ``[..., Kc]`` real, as the inverse real FFT
    reads it (a complex channel mixing can leave it complex)."""
    return torch.cat([spec[..., :1].real.to(spec.dtype), spec[..., 1:]], dim=-1)


def hermitian_zero_column(spec: Tensor, negated: Tensor) -> Tensor:
    """[..., N, Nc] -> [..., N]: the zero column's Hermitian part ``(X[k, 0] + conj X[-k, 0]) / 2``,
    the part the inverse real FFT reads; ``negated``: the row of -k for each row k."""
    column = spec[..., :, 0]
    return (column + column.index_select(-1, negated).conj()) / 2


def band_power_weights(sizes: tuple[int, ...], grid: int, ndim: int) -> Tensor:
    """[L, N, Nc] (2D) or [L, Nc] (1D) on the spectrum layout of a ``grid``-point grid: weights
    w with sum(w |X|^2) = variance of D_r x, for each level size r in ``sizes``.

    The half axis counts every non-zero frequency twice (its mirror is implicit); the zero
    frequency (the mean) and the frequencies outside band(r) (the Nyquist bins) are left out.
    """
    q = signed_frequencies(grid, half=True)
    twice = torch.where(q == 0, 1.0, 2.0).double()
    radius = q if ndim == 1 else torch.maximum(signed_frequencies(grid).abs()[:, None], q)
    return torch.stack([((radius <= band(r)) & (radius > 0)).double() * twice for r in sizes])


def columns_inverse(r: int) -> Tensor:
    """[2 (b + 1), r] real with b = band(r): the interleaved (re, im) half-axis coefficients
    0..b of a real r-point signal -> the signal."""
    q = torch.arange(band(r) + 1, dtype=torch.float64)[:, None]
    j = torch.arange(r, dtype=torch.float64)[None, :]
    weight = torch.where(q == 0, 1.0, 2.0)
    phase = TWO_PI * q * j / r
    return torch.stack([weight * phase.cos(), -weight * phase.sin()], 1).flatten(0, 1)


def half_forward(frequencies: Tensor, r: int) -> Tensor:
    """[r, F] complex: (1/r) exp(-2 pi i q j / r), the r-point DFT at the given frequencies."""
    j = torch.arange(r, dtype=torch.float64)[:, None]
    return torch.polar(
        torch.full((r, len(frequencies)), 1.0 / r, dtype=torch.float64),
        -TWO_PI * j * frequencies.double() / r,
    )


@dataclass(frozen=True)
class Level1d:
    """The DFT matrices of one 1D level of size r and band b whose ring is the frequencies
    (inner_band, b]: ``inverse`` [2 (b + 1), r] (interleaved coefficients -> signal), ``ring``
    [r, 2D] (signal -> the D ring coefficients, interleaved)."""

    size: int
    band: int
    inverse: Tensor
    ring: Tensor


def levels_1d(plan: LevelPlan, dtype: torch.dtype, device) -> tuple[Level1d, ...]:
    """The matrices of every level of ``plan`` in ``dtype``."""
    levels = []
    for r, inner in zip(plan.sizes, plan.inner):
        b, inner_band = band(r), band(inner) if inner else -1
        ring = half_forward(torch.arange(inner_band + 1, b + 1), r)
        levels.append(
            Level1d(
                size=r,
                band=b,
                inverse=columns_inverse(r).to(dtype=dtype, device=device),
                ring=torch.view_as_real(ring).flatten(1).to(dtype=dtype, device=device),
            )
        )
    return tuple(levels)


def apply_levels_1d(
    spec: Tensor,
    levels: tuple[Level1d, ...],
    activation: Callable[[Tensor], Tensor],
    scale: Tensor | None = None,
    shift: Tensor | None = None,
) -> Tensor:
    """spec: compact [B, C, Kc] (Hermitian) -> [B, C, Kc]: every level's ring of
    ``activation(scale * D_r x + shift)``; scale, shift: [B, C, L] per level, or None.

    The rings are consecutive runs of frequencies, so the output is their concatenation.
    """
    b, c, kc = spec.shape
    coeffs = torch.view_as_real(spec).reshape(b * c, 2 * kc)
    rings = []
    for index, level in enumerate(levels):
        # A leading block of columns: a strided view the matrix product reads without a copy.
        crop = coeffs[:, : 2 * (level.band + 1)]
        if scale is None:
            x = crop @ level.inverse
        else:
            level_scale = scale[..., index].reshape(b * c, 1)
            level_shift = shift[..., index].reshape(b * c, 1)
            x = torch.addmm(level_shift, crop * level_scale, level.inverse)
        rings.append(activation(x) @ level.ring)
    return torch.view_as_complex(torch.cat(rings, -1).view(b, c, kc, 2))
