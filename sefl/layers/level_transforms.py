"""The fast path of ``ScaleEqNonlin``: all levels at once, as small dense DFT matrices.

The straightforward implementation loops in Python over the resolutions with a pair of FFTs and
an instance norm each. Here the levels are stacked on one axis (zero-padded to the largest level
of their group) and transformed with matrix products:

    x[l] = D_{r_l} x                           inverse DFT, rows then columns
    y[l] = act(scale[l] * x[l] + shift[l])     the norm's statistics come from the spectrum
    out  = the ring of DFT_{r_l}(y[l]) for each l   only the ring's rows and columns are computed

Padded rows and columns never reach the output: the forward matrices are zero there. Norm
statistics by Parseval: the mean of D_r x is the zero-frequency coefficient and its variance is
the power of the other frequencies in band(r), so no spatial reduction is needed.

Spectra here are in the compact layout of the input's band: a ``K = 2H + 1`` grid with
``H = band(n)`` (``fit_spectrum(spec, K)``), ``Kc = H + 1``. In 2D the levels are split into a few
groups of similar size so that padding wastes little work; each group is one set of products.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from sefl.layers.levels import LevelPlan
from sefl.spectral import band, ring_mask, signed_frequencies

__all__ = [
    "Group2d",
    "Levels1d",
    "apply_levels_1d",
    "apply_levels_2d",
    "band_power_weights",
    "groups_2d",
    "hermitian_projection",
    "levels_1d",
    "partition",
]

Activate = Callable[[Tensor, slice], Tensor]
TWO_PI = 2 * math.pi


def hermitian_projection(spec: Tensor, ndim: int) -> Tensor:
    """Make the zero column of a half spectrum Hermitian, as the inverse real FFT reads it.

    A complex channel mixing can leave X[k, 0] != conj(X[-k, 0]); irfft then uses only the
    Hermitian part, so the statistics and the matrices here must too.
    """
    if ndim == 1:
        return torch.cat([spec[..., :1].real.to(spec.dtype), spec[..., 1:]], dim=-1)
    col = spec[..., :, :1]
    size = spec.shape[-2]
    negated = (-torch.arange(size, device=spec.device)) % size  # index of -k for each k
    mirrored = col.index_select(-2, negated).conj()
    return torch.cat([(col + mirrored) / 2, spec[..., :, 1:]], dim=-1)


def band_power_weights(sizes: tuple[int, ...], compact: int, ndim: int) -> Tensor:
    """[L, K, Kc] (2D) or [L, Kc] (1D): weights w with sum(w |X|^2) = variance of D_r x.

    The half axis counts every non-zero frequency twice (its mirror is implicit); the zero
    frequency (the mean) is left out.
    """
    q = signed_frequencies(compact, half=True)
    twice = torch.where(q == 0, 1.0, 2.0).double()
    radius = q if ndim == 1 else torch.maximum(signed_frequencies(compact).abs()[:, None], q)
    return torch.stack([((radius <= band(r)) & (radius > 0)).double() * twice for r in sizes])


def _columns_inverse(sizes, kc: int, padded: int) -> Tensor:
    """[L, 2 Kc, R] real: interleaved (re, im) half-axis coefficients -> an r-point signal."""
    q = torch.arange(kc, dtype=torch.float64)[:, None]
    j = torch.arange(padded, dtype=torch.float64)[None, :]
    mats = []
    for r in sizes:
        weight = torch.where(q == 0, 1.0, 2.0) * ((q <= band(r)) & (j < r))
        phase = TWO_PI * q * j / r
        mats.append(torch.stack([weight * phase.cos(), -weight * phase.sin()], 1).flatten(0, 1))
    return torch.stack(mats)


def _half_forward(frequencies: Tensor, r: int, padded: int) -> Tensor:
    """[R, F] complex: (1/r) exp(-2 pi i q j / r) for j < r, the DFT at the given frequencies."""
    j = torch.arange(padded, dtype=torch.float64)[:, None]
    keep = (j < r).double() / r
    return torch.polar(keep.expand(-1, len(frequencies)), -TWO_PI * j * frequencies.double() / r)


@dataclass(frozen=True)
class Levels1d:
    """1D matrices: ``inverse`` [L, 2 Kc, R]; ``forward`` [L * R, 2 Kc] with each level's ring
    folded in."""

    inverse: Tensor
    forward: Tensor


def levels_1d(plan: LevelPlan, dtype: torch.dtype, device) -> Levels1d:
    h = band(plan.n)
    kc, padded = h + 1, max(plan.sizes)
    q = torch.arange(kc)
    forward = []
    for inner, r in zip(plan.inner, plan.sizes):
        ring = ring_mask(inner, r, 2 * h + 1, ndim=1).double()
        forward.append(torch.view_as_real(_half_forward(q, r, padded) * ring).flatten(1))
    to = {"dtype": dtype, "device": device}
    return Levels1d(
        inverse=_columns_inverse(plan.sizes, kc, padded).to(**to),
        forward=torch.cat(forward).to(**to),
    )


def apply_levels_1d(spec: Tensor, mats: Levels1d, activate: Activate) -> Tensor:
    """spec: compact [B, C, Kc] (Hermitian) -> [B, C, Kc]: the assembled rings of every level."""
    b, c, kc = spec.shape
    coeffs = torch.view_as_real(spec).flatten(-2)
    x = torch.einsum("bcq,lqj->bclj", coeffs, mats.inverse)
    y = activate(x, slice(None))
    out = y.flatten(2) @ mats.forward
    return torch.view_as_complex(out.view(b, c, kc, 2))


@dataclass(frozen=True)
class Group2d:
    """2D matrices of consecutive levels ``levels`` (a slice of the plan), padded to R.

    Inverse, on the group's compact band Kg = 2 hg + 1 (hg: band of its largest level):
      rows_inverse [Lg * R, Kg] complex; cols_inverse [Lg, 2 Kcg, R] real.
    Ring, forward (P ring rows and D ring columns per level, zero-padded):
      rows_pick [Lg, 2 P, R] real (re then im of the ring rows' DFT along i);
      rows_dft [Lg, 2 R, 2 Kc] real (complex product along j, interleaved output);
      rows_place [Lg * P, K] complex one-hot: output row of each ring row;
      cols_pick [Lg, R, 2 D] real (the ring columns' DFT along j, interleaved);
      cols_dft [Lg, K, R] complex (DFT along i, zero outside |kx| <= band of the level below);
      cols_place [Lg * D, Kc] complex one-hot: output column of each ring column.
    """

    levels: slice
    compact: int
    rows_inverse: Tensor
    cols_inverse: Tensor
    rows_pick: Tensor
    rows_dft: Tensor
    rows_place: Tensor
    cols_pick: Tensor
    cols_dft: Tensor
    cols_place: Tensor


def partition(sizes: tuple[int, ...], groups: int) -> list[slice]:
    """Split ascending sizes into at most ``groups`` runs minimising sum(len * max^3), the
    padded work of the products."""
    n = len(sizes)
    groups = min(groups, n)
    inf = float("inf")
    cost = [[inf] * (n + 1) for _ in range(groups + 1)]
    cut = [[0] * (n + 1) for _ in range(groups + 1)]
    cost[0][0] = 0.0
    for g in range(1, groups + 1):
        for end in range(1, n + 1):
            for start in range(end):
                c = cost[g - 1][start] + (end - start) * sizes[end - 1] ** 3
                if c < cost[g][end]:
                    cost[g][end], cut[g][end] = c, start
    best = min(range(1, groups + 1), key=lambda g: cost[g][n])
    bounds, end = [], n
    for g in range(best, 0, -1):
        bounds.append(slice(cut[g][end], end))
        end = cut[g][end]
    return bounds[::-1]


def _complex_product(matrix: Tensor) -> Tensor:
    """[R, F] complex M -> [2R, 2F] real such that [re(v) | im(v)] @ out = interleaved v M."""
    re, im = matrix.real, matrix.imag
    top = torch.stack([re, im], -1).flatten(-2)
    bottom = torch.stack([-im, re], -1).flatten(-2)
    return torch.cat([top, bottom])


def _group_2d(plan: LevelPlan, levels: slice, n_rows: int, n_cols: int) -> dict:
    h = band(plan.n)
    compact, kc = 2 * h + 1, h + 1
    sizes = plan.sizes[levels]
    inners = plan.inner[levels]
    padded = max(sizes)
    hg = band(padded)
    kx_group = signed_frequencies(2 * hg + 1).double()
    kx = signed_frequencies(compact)
    q = torch.arange(kc)
    i = torch.arange(padded, dtype=torch.float64)[:, None]
    mats = {k: [] for k in ("ri", "rp", "rd", "rpl", "cp", "cd", "cpl")}
    for inner, r in zip(inners, sizes):
        lo, hi = (band(inner) if inner else -1), band(r)
        keep = (i < r) & (kx_group.abs() <= hi)
        mats["ri"].append(torch.polar(keep.double(), TWO_PI * i * kx_group / r))
        ring_rows = [int(k) for k in kx if lo < abs(int(k)) <= hi]
        ring_cols = [c for c in range(lo + 1, hi + 1)] if lo >= 0 else []
        pick = torch.zeros(n_rows, padded, dtype=torch.complex128)
        place = torch.zeros(n_rows, compact, dtype=torch.complex128)
        for p, k in enumerate(ring_rows):
            pick[p] = _half_forward(torch.tensor([k]), r, padded)[:, 0]
            place[p, k % compact] = 1
        mats["rp"].append(torch.cat([pick.real, pick.imag]))
        mats["rd"].append(_complex_product(_half_forward(q, r, padded) * (q <= hi)))
        mats["rpl"].append(place)
        cols = torch.zeros(padded, n_cols, dtype=torch.complex128)
        cplace = torch.zeros(n_cols, kc, dtype=torch.complex128)
        for d, c in enumerate(ring_cols):
            cols[:, d] = _half_forward(torch.tensor([c]), r, padded)[:, 0]
            cplace[d, c] = 1
        mats["cp"].append(torch.view_as_real(cols).flatten(1))
        below = (kx.abs() <= lo).double()[:, None]
        mats["cd"].append(_half_forward(kx, r, padded).T * below)
        mats["cpl"].append(cplace)
    return {
        "levels": levels,
        "compact": 2 * hg + 1,
        "rows_inverse": torch.cat(mats["ri"]),
        "cols_inverse": _columns_inverse(sizes, hg + 1, padded),
        "rows_pick": torch.stack(mats["rp"]),
        "rows_dft": torch.stack(mats["rd"]),
        "rows_place": torch.cat(mats["rpl"]),
        "cols_pick": torch.stack(mats["cp"]),
        "cols_dft": torch.stack(mats["cd"]),
        "cols_place": torch.cat(mats["cpl"]),
    }


def groups_2d(plan: LevelPlan, dtype: torch.dtype, device, groups: int = 3) -> list[Group2d]:
    """The level groups of ``plan`` with their matrices in ``dtype`` (complex ones to match)."""
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    bands = [band(r) for r in plan.sizes]
    inner_bands = [band(r) if r else -1 for r in plan.inner]
    n_rows = max(2 * (b - lo) if lo >= 0 else 2 * b + 1 for b, lo in zip(bands, inner_bands))
    n_cols = (
        max(max(b - lo for b, lo in zip(bands, inner_bands) if lo >= 0), 1) if len(bands) > 1 else 1
    )
    out = []
    for levels in partition(plan.sizes, groups):
        mats = _group_2d(plan, levels, n_rows, n_cols)
        cast = {
            k: v.to(device=device, dtype=cdtype if v.is_complex() else dtype)
            for k, v in mats.items()
            if isinstance(v, Tensor)
        }
        out.append(Group2d(levels=levels, compact=mats["compact"], **cast))
    return out


def apply_levels_2d(
    spec: Tensor,
    groups: list[Group2d],
    activation: Callable[[Tensor], Tensor],
    scale: Tensor | None = None,
    shift: Tensor | None = None,
) -> Tensor:
    """spec: compact [B, C, K, Kc] (Hermitian zero column) -> [B, C, K, Kc]: every level's ring
    of ``activation(scale * D_r x + shift)``.

    scale, shift: [B, C, L] per level (the instance norm), or None. They are applied to the
    half-transformed levels (before the column transform), which are half the size of the
    levels in space: a scale multiplies every coefficient, a shift adds to the zero column.
    """
    b, c, k, kc = spec.shape
    bc = b * c
    out = spec.new_zeros(k, bc, kc)
    for g in groups:
        lg, padded = g.cols_inverse.shape[0], g.cols_inverse.shape[-1]
        kg = g.compact
        # The group's band is a crop of the input's: rows 0..hg and -hg..-1, columns 0..hg.
        hg = kg // 2
        rows_kept = torch.cat([torch.arange(hg + 1), torch.arange(k - hg, k)]).to(spec.device)
        xs = spec.index_select(-2, rows_kept)[..., : hg + 1].permute(2, 0, 1, 3).reshape(kg, -1)
        rows = torch.view_as_real((g.rows_inverse @ xs).view(lg, padded, bc, -1))
        if scale is not None:
            level_scale = scale[..., g.levels].permute(2, 0, 1).reshape(lg, 1, bc, 1, 1)
            level_shift = shift[..., g.levels].permute(2, 0, 1).reshape(lg, 1, bc, 1, 1)
            # The shift goes to the real part of the zero column, whose column weight is 1.
            mean_slot = torch.zeros(rows.shape[-2:], dtype=rows.dtype, device=rows.device)
            mean_slot[0, 0] = 1
            rows = torch.addcmul(level_shift * mean_slot, rows, level_scale)
        x = rows.flatten(-2).view(lg, padded * bc, -1) @ g.cols_inverse
        y = activation(x).view(lg, padded, bc * padded)
        # Ring rows: the DFT along i at the ring's rows, then along j at every column.
        picked = (g.rows_pick @ y).view(lg, 2, -1, bc, padded)
        picked = picked.permute(0, 2, 3, 1, 4).reshape(lg, -1, 2 * padded)
        ring_rows = torch.view_as_complex((picked @ g.rows_dft).view(lg, -1, bc * kc, 2))
        out = out + (g.rows_place.T @ ring_rows.flatten(0, 1)).view(k, bc, kc)
        # Ring columns: the DFT along j at the ring's columns, then along i at the rows below.
        cols = y.view(lg, padded * bc, padded) @ g.cols_pick
        cols = torch.view_as_complex(cols.view(lg, padded, -1, 2).contiguous())
        ring_cols = (g.cols_dft @ cols).view(lg, k, bc, -1)
        out = out + torch.einsum("lkbd,ldq->kbq", ring_cols, g.cols_place.view(lg, -1, kc))
    return out.view(k, b, c, kc).permute(1, 2, 0, 3)
