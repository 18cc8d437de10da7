"""The fast path of ``ScaleEqNonlin2d`` and ``ScaleEqMaxPool2d``: each level with exact-size
DFT matrices and a hand-written backward pass.

For each level r of the plan (ascending; ``sefl.layers.levels``):

    x_r = D_r x                            inverse DFT of the band of r: rows, then columns
    y_r = act(scale_r * x_r + shift_r)     the norm's statistics come from the spectrum
    out += the ring of DFT_r(y_r)          only the ring's rows and columns are computed

The rows' inverse uses the even and odd parts of the spectrum, E[k] = X[k] + X[-k] and
O[k] = i (X[k] - X[-k]) for k >= 0. Row i of the level is then C_i + S_i and its mirror row r - i
is C_i - S_i, with C = cos-matrix @ E and S = sin-matrix @ O: two real products with half the rows
and half the frequencies replace a complex product with all of them (a quarter of the work). The
level's rows are kept in the order 0, 1, .., r // 2, then the mirrors r - 1, r - 2, .., and every
matrix that acts along the rows uses that order. The norm's scale is applied while E and O are
cropped to the level's band (it commutes with the transform) and its shift to the zero column, so
the norm adds no pass over the level.

The max-pool variant inserts two steps between the activation and the ring: the low-pass to
the band of the pooled grid ceil(r / 2) (a real r x r product along each axis) and the 2 x 2
max-pool (ceil mode); its ring is taken on the pooled grid.

Spectra are read and written in the grid's own layout ``[B, C, N, N // 2 + 1]``, without a crop
to the band or a pad back: E and O gather the band's rows of the input, and each ring's rows are
written to their rows of the output grid. The Hermitian projection of the zero column (what the
inverse real FFT reads) is the real part of E and O in that column. ``H = band(n)``; ``BC`` is
batch x channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from sefl.layers.level_transforms import columns_inverse, half_forward
from sefl.layers.levels import LevelPlan, output_size
from sefl.spectral import band, fit_spectrum, to_space, to_spectrum

__all__ = ["Level2d", "apply_levels_2d", "levels_2d"]

Blocks = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Ring:
    """The ring of a signal's DFT on an r x r grid: the frequencies of band b above
    ``inner_band`` (-1: the whole band), in the compact output layout.

    rows_pick [2P, r] real: rows -> the P ring rows b >= |kx| > inner_band (re, then im);
    rows_dft [r, b + 1] complex: columns j -> q on those rows;
    cols_pick [2D, r] real: j -> the D ring columns b >= q > inner_band (re, then im);
    cols_dft [2 inner_band + 1, r] complex: rows -> |kx| <= inner_band, below those columns;
    row_blocks / below_blocks: [start, stop) of those rows in the output grid's layout, in the
    order of the matrices. Matrices along the rows follow the signal's row order.
    """

    size: int
    band: int
    inner_band: int
    rows_pick: Tensor
    rows_dft: Tensor
    cols_pick: Tensor
    cols_dft: Tensor
    row_blocks: Blocks
    below_blocks: Blocks


@dataclass(frozen=True)
class Level2d:
    """One level: an r x r grid of band b (rows in the mirror order) and the ring it adds.

    even_rows [r // 2 + 1, b + 1], odd_rows [r // 2 + 1, b] real: E, O -> the first rows;
    inverse_cols [2 (b + 1), r] real: interleaved (re, im) column frequency q -> column j;
    ring: on the level's grid, or for the pooled variant on the pooled ceil(r / 2) grid, after
    lowpass_rows [r, r] (mirror order -> natural order) and lowpass_cols [r, r] keep the band of
    the pooled grid and a 2 x 2 max-pool.
    """

    size: int
    band: int
    even_rows: Tensor
    odd_rows: Tensor
    inverse_cols: Tensor
    ring: Ring
    lowpass_rows: Tensor | None = None
    lowpass_cols: Tensor | None = None


def _mirror_order(r: int) -> Tensor:
    """The level's row order: 0 .. r // 2, then r - 1 down to r - (r - 1) // 2."""
    return torch.cat([torch.arange(r // 2 + 1), r - torch.arange(1, (r - 1) // 2 + 1)])


def _blocks(frequencies: list[int], grid: int) -> Blocks:
    """Runs of consecutive rows of a ``grid``-point layout holding ``frequencies`` (in their
    order)."""
    rows = [k % grid for k in frequencies]
    blocks: list[list[int]] = []
    for row in rows:
        if blocks and blocks[-1][1] == row:
            blocks[-1][1] += 1
        else:
            blocks.append([row, row + 1])
    return tuple((start, stop) for start, stop in blocks)


def _ring(r: int, inner_band: int, grid: int, row_order: Tensor, real, cplx) -> Ring:
    b = band(r)
    # Negative frequencies first, so that each sign is one block of the compact layout.
    kx = list(range(-b, 0)) + list(range(b + 1))
    ring_rows = [k for k in kx if abs(k) > inner_band]
    below = list(range(inner_band + 1)) + list(range(-inner_band, 0))
    columns = torch.arange(inner_band + 1, b + 1) if inner_band >= 0 else torch.arange(0)
    picked_rows = half_forward(torch.tensor(ring_rows), r)[row_order]
    picked_cols = half_forward(columns, r)
    return Ring(
        size=r,
        band=b,
        inner_band=inner_band,
        rows_pick=torch.cat([picked_rows.real.T, picked_rows.imag.T]).to(**real),
        rows_dft=half_forward(torch.arange(b + 1), r).to(**cplx),
        cols_pick=torch.cat([picked_cols.real.T, picked_cols.imag.T]).to(**real),
        cols_dft=half_forward(torch.tensor(below, dtype=torch.long), r)[row_order].T.to(**cplx),
        row_blocks=_blocks(ring_rows, grid),
        below_blocks=_blocks(below, grid),
    )


def _lowpass(r: int, m: int) -> Tensor:
    """[r, r]: keeping the band of an m-point grid, on a real r-point signal (D_m, then back to
    r points, as ``sefl.spectral`` defines them); row i holds the response to an impulse at i,
    and the matrix is symmetric."""
    impulses = to_spectrum(torch.eye(r, dtype=torch.float64), ndim=1)
    return to_space(fit_spectrum(fit_spectrum(impulses, m, 1, r), r, 1, m), r, ndim=1)


def _level_2d(r: int, inner: int, grid: int, pooled: bool, dtype: torch.dtype, device) -> Level2d:
    b = band(r)
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    real, cplx = {"dtype": dtype, "device": device}, {"dtype": cdtype, "device": device}
    rows = torch.arange(r // 2 + 1, dtype=torch.float64)[:, None]
    angle = 2 * torch.pi * rows * torch.arange(b + 1, dtype=torch.float64) / r
    inner_band = band(inner) if inner else -1
    mirror = _mirror_order(r)
    extra = {}
    if pooled:
        pooled_size = output_size(r, pooled=True)
        lowpass = _lowpass(r, pooled_size)
        ring = _ring(pooled_size, inner_band, grid, torch.arange(pooled_size), real, cplx)
        extra = {"lowpass_rows": lowpass[:, mirror].to(**real), "lowpass_cols": lowpass.to(**real)}
    else:
        ring = _ring(r, inner_band, grid, mirror, real, cplx)
    return Level2d(
        size=r,
        band=b,
        even_rows=angle.cos().to(**real),
        odd_rows=angle[:, 1:].sin().to(**real),
        inverse_cols=columns_inverse(r).to(**real),
        ring=ring,
        **extra,
    )


def levels_2d(
    plan: LevelPlan, dtype: torch.dtype, device, pooled: bool = False
) -> tuple[Level2d, ...]:
    """The matrices of every level of ``plan`` in ``dtype`` (complex ones to match);
    ``pooled``: the max-pool variant, whose rings are on the pooled grids."""
    grid = output_size(plan.n, pooled)
    return tuple(
        _level_2d(r, inner, grid, pooled, dtype, device) for r, inner in zip(plan.sizes, plan.inner)
    )


def _even_odd(spec: Tensor) -> tuple[Tensor, Tensor]:
    """[B, C, N, N // 2 + 1] -> E [H + 1, BC, H + 1, 2] and O [H, BC, H + 1, 2] (real views) of
    the band's rows and columns, with the zero column's Hermitian projection."""
    n = spec.shape[-2]
    h = band(n)
    rows = spec.permute(2, 0, 1, 3)[..., : h + 1]
    positive, negative = rows[1 : h + 1], rows[n - h :].flip(0)
    even = torch.cat([rows[:1], positive + negative]).flatten(1, 2)
    odd = ((positive - negative) * 1j).flatten(1, 2)
    even, odd = torch.view_as_real(even.contiguous()), torch.view_as_real(odd.contiguous())
    # (X[k] + conj X[-k]) / 2 in the zero column makes E and O real there.
    even[:, :, 0, 1] = 0
    odd[:, :, 0, 1] = 0
    return even, odd


def _even_odd_backward(grad_even: Tensor, grad_odd: Tensor, shape: torch.Size) -> Tensor:
    """The gradient of ``_even_odd``: real views [H + 1, BC, H + 1, 2], [H, BC, H + 1, 2]
    (modified in place) -> ``shape`` = [B, C, N, N // 2 + 1] complex."""
    grad_even[:, :, 0, 1] = 0
    grad_odd[:, :, 0, 1] = 0
    grad_even, grad_odd = torch.view_as_complex(grad_even), torch.view_as_complex(grad_odd)
    b, c, n, columns = shape
    h = grad_odd.shape[0]
    rotated = grad_odd * 1j
    rows = grad_even.new_zeros(n, b * c, columns)
    rows[0, :, : h + 1] = grad_even[0]
    rows[1 : h + 1, :, : h + 1] = grad_even[1:] - rotated
    rows[n - h :, :, : h + 1] = (grad_even[1:] + rotated).flip(0)
    return rows.unflatten(1, (b, c)).permute(1, 2, 0, 3)


def _activation_backward(activation: Callable[[Tensor], Tensor], x: Tensor, grad: Tensor):
    """grad * activation'(x) for any pointwise activation, by differentiating it again."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        return torch.autograd.grad(activation(x), x, grad)[0]


def _level_space(even, odd, level: Level2d, scale, shift) -> Tensor:
    """E, O (real views) -> the level in space, [r * BC, r] (rows in the mirror order, BC,
    columns), with the norm's scale and shift (each [BC] or None) applied."""
    r, b = level.size, level.band
    bc = even.shape[1]
    top, mirrored = r // 2 + 1, (r - 1) // 2
    even = even[: b + 1, :, : b + 1]
    odd = odd[:b, :, : b + 1]
    if scale is not None:
        even, odd = even * scale.view(1, bc, 1, 1), odd * scale.view(1, bc, 1, 1)
    width = bc * (b + 1) * 2  # explicit: a block may have no rows
    even, odd = even.reshape(b + 1, width), odd.reshape(b, width)
    half = even.new_empty(r, bc, b + 1, 2)
    # Rows i <= r // 2 are cos-part + sin-part, their mirrors r - i cos-part - sin-part: each
    # block is written by its own products, without temporaries.
    top_rows, mirror_rows = half[:top].view(top, width), half[top:].view(mirrored, width)
    torch.mm(level.even_rows, even, out=top_rows)
    torch.mm(level.even_rows[1 : 1 + mirrored], even, out=mirror_rows)
    if b > 0:
        top_rows.addmm_(level.odd_rows, odd)
        mirror_rows.addmm_(level.odd_rows[1 : 1 + mirrored], odd, alpha=-1)
    if shift is not None:
        # The shift is the mean: the real part of the zero column, whose weight is 1.
        half[:, :, 0, 0] += shift
    return half.view(r * bc, 2 * (b + 1)) @ level.inverse_cols


def _level_space_backward(grad_x: Tensor, even, odd, level: Level2d, scale):
    """The gradient of ``_level_space`` for grad_x [r * BC, r]: the gradients of the E and O
    crops it read (before the scale; [b + 1, BC, b + 1, 2] and, for b > 0, [b, BC, b + 1, 2]),
    and of its scale and shift ([BC] each; None without a norm)."""
    r, b = level.size, level.band
    bc = even.shape[1]
    top, mirrored = r // 2 + 1, (r - 1) // 2
    grad_half = grad_x @ level.inverse_cols.T
    grad_shift = None if scale is None else grad_half.view(r, bc, b + 1, 2)[:, :, 0, 0].sum(0)
    grad_top, grad_mirror = grad_half.view(r, -1)[:top], grad_half.view(r, -1)[top:]
    grad_even = level.even_rows.T @ grad_top
    grad_even.addmm_(level.even_rows[1 : 1 + mirrored].T, grad_mirror)
    grad_crops = [grad_even.view(b + 1, bc, b + 1, 2)]
    if b > 0:
        grad_odd = level.odd_rows.T @ grad_top
        grad_odd.addmm_(level.odd_rows[1 : 1 + mirrored].T, grad_mirror, alpha=-1)
        grad_crops.append(grad_odd.view(b, bc, b + 1, 2))
    if scale is None:
        return grad_crops, None, None
    crops = (even[: b + 1, :, : b + 1], odd[:b, :, : b + 1])
    # The crops are multiplied by the scale: its gradient is <grad, crop> over all but BC.
    grad_scale = sum((g * crop).sum((0, 2, 3)) for g, crop in zip(grad_crops, crops))
    return grad_crops, grad_scale, grad_shift


def _write_blocks(out: Tensor, values: Tensor, blocks: Blocks, columns: slice) -> None:
    """out[rows of ``blocks``, :, columns] = values (its rows in the order of the blocks)."""
    done = 0
    for start, stop in blocks:
        out[start:stop, :, columns] = values[done : done + stop - start]
        done += stop - start


def _read_blocks(grad: Tensor, blocks: Blocks, columns: slice) -> Tensor:
    """The rows of ``blocks`` of grad[:, :, columns], in the order of the blocks."""
    return torch.cat([grad[start:stop, :, columns] for start, stop in blocks])


def _ring_forward(y: Tensor, ring: Ring, out: Tensor) -> None:
    """Write the ring of DFT_r(y) into ``out`` [K, BC, Kc] (compact layout, complex);
    y: [r * BC, r] (rows, BC, columns)."""
    r, b, inner = ring.size, ring.band, ring.inner_band
    bc = out.shape[1]
    p = ring.rows_pick.shape[0] // 2
    picked = (ring.rows_pick @ y.view(r, bc * r)).view(2, p, bc, r)
    picked = torch.complex(picked[0], picked[1]).view(p * bc, r)
    ring_rows = (picked @ ring.rows_dft).view(p, bc, b + 1)
    _write_blocks(out, ring_rows, ring.row_blocks, slice(0, b + 1))
    if inner < 0:
        return
    d = b - inner
    # Picking the columns with the signal transposed: a wide product, twice as fast as a
    # product with only 2D output columns.
    cols = (ring.cols_pick @ y.T).view(2, d, r, bc)
    ring_cols = ring.cols_dft @ torch.complex(cols[0], cols[1])  # [D, rows below, BC]
    _write_blocks(out, ring_cols.permute(1, 2, 0), ring.below_blocks, slice(inner + 1, b + 1))


def _ring_backward(grad: Tensor, ring: Ring) -> Tensor:
    """The gradient of ``_ring_forward``: grad [K, BC, Kc] complex -> [r * BC, r]."""
    r, b, inner = ring.size, ring.band, ring.inner_band
    bc = grad.shape[1]
    p = ring.rows_pick.shape[0] // 2
    rows = _read_blocks(grad, ring.row_blocks, slice(0, b + 1))
    picked = rows.reshape(p * bc, b + 1) @ ring.rows_dft.mH
    picked = torch.view_as_real(picked).view(p, bc * r, 2).permute(2, 0, 1).reshape(2 * p, -1)
    grad_y = ring.rows_pick.T @ picked
    if inner >= 0:
        below = _read_blocks(grad, ring.below_blocks, slice(inner + 1, b + 1))
        cols = ring.cols_dft.mH @ below.permute(2, 0, 1)  # [D, r, BC]
        cols = torch.cat([cols.real, cols.imag]).view(-1, r * bc)
        grad_y.view(r * bc, r).addmm_(cols.T, ring.cols_pick)
    return grad_y.view(r * bc, r)


def _pool(y: Tensor, level: Level2d) -> tuple[Tensor, Tensor, Tensor]:
    """The pooled variant's step between the activation and the ring: keep the pooled grid's
    band, then max-pool 2 x 2 (ceil mode). y [r * BC, r] -> [m * BC, m] (natural row order),
    and which row of each pair of rows ([m, BC, 2m]) and which column of each pair of columns
    ([m, BC, m]) held the maximum."""
    r, m = level.size, output_size(level.size, pooled=True)
    bc = y.shape[0] // r
    low = (level.lowpass_rows @ y.view(r, bc * r)).view(r * bc, r) @ level.lowpass_cols.T
    # Padding with -inf makes the last window of an odd grid the ceil mode's partial window.
    padded = torch.nn.functional.pad(
        low.view(r, bc, r), (0, 2 * m - r, 0, 0, 0, 2 * m - r), value=-torch.inf
    )
    # The larger of each pair of rows, then of each pair of columns: the window's maximum,
    # without gathering the windows.
    rows, row_index = padded.view(m, 2, bc, 2 * m).max(1)
    pooled, col_index = rows.view(m, bc, m, 2).max(-1)
    return pooled.view(m * bc, m), row_index, col_index


def _pool_backward(grad: Tensor, row_index: Tensor, col_index: Tensor, level: Level2d) -> Tensor:
    """The gradient of ``_pool``: grad [m * BC, m] -> [r * BC, r]."""
    r, (m, bc) = level.size, col_index.shape[:2]
    cols = grad.new_zeros(m, bc, m, 2).scatter_(-1, col_index[..., None], grad.view(m, bc, m, 1))
    rows = grad.new_zeros(m, 2, bc, 2 * m)
    rows.scatter_(1, row_index[:, None], cols.view(m, 1, bc, 2 * m))
    low = rows.view(2 * m, bc, 2 * m)[:r, :, :r].reshape(r * bc, r) @ level.lowpass_cols
    return level.lowpass_rows.T @ low.view(r, bc * r)


class _Rings2d(torch.autograd.Function):
    """Every level's ring; the backward keeps only each level's pre-activation (and, pooled,
    where each window's maximum was)."""

    @staticmethod
    def forward(ctx, spec, scale, shift, levels, activation, out_size):
        b, c, _, _ = spec.shape
        even, odd = _even_odd(spec)
        out = spec.new_zeros(out_size, b * c, out_size // 2 + 1)
        saved = []
        for index, level in enumerate(levels):
            level_scale = None if scale is None else scale[index]
            level_shift = None if shift is None else shift[index]
            x = _level_space(even, odd, level, level_scale, level_shift)
            y = activation(x)
            if level.lowpass_rows is None:
                saved.append(x)
            else:
                y, row_index, col_index = _pool(y, level)
                saved.extend([x, row_index.to(torch.uint8), col_index.to(torch.uint8)])
            _ring_forward(y, level.ring, out)
        ctx.levels, ctx.activation, ctx.shape = levels, activation, spec.shape
        ctx.save_for_backward(even, odd, scale, *saved)
        return out.unflatten(1, (b, c)).permute(1, 2, 0, 3)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        even, odd, scale, *saved = ctx.saved_tensors
        grad = grad.permute(2, 0, 1, 3).flatten(1, 2)
        grad_even, grad_odd = torch.zeros_like(even), torch.zeros_like(odd)
        norm = scale is not None
        grad_scale = torch.empty_like(scale) if norm else None
        grad_shift = torch.empty_like(scale) if norm else None
        saved = iter(saved)
        for index, level in enumerate(ctx.levels):
            b, x = level.band, next(saved)
            grad_y = _ring_backward(grad, level.ring)
            if level.lowpass_rows is not None:
                row_index, col_index = next(saved).long(), next(saved).long()
                grad_y = _pool_backward(grad_y, row_index, col_index, level)
            grad_x = _activation_backward(ctx.activation, x, grad_y.view_as(x))
            level_scale = scale[index] if norm else None
            grad_crops, level_grad_scale, level_grad_shift = _level_space_backward(
                grad_x, even, odd, level, level_scale
            )
            targets = (grad_even[: b + 1, :, : b + 1], grad_odd[:b, :, : b + 1])
            for grad_crop, target in zip(grad_crops, targets):
                if norm:
                    target.addcmul_(grad_crop, level_scale.view(1, -1, 1, 1))
                else:
                    target.add_(grad_crop)
            if norm:
                grad_scale[index], grad_shift[index] = level_grad_scale, level_grad_shift
        grad_spec = _even_odd_backward(grad_even, grad_odd, ctx.shape)
        return grad_spec, grad_scale, grad_shift, None, None, None


def apply_levels_2d(
    spec: Tensor,
    levels: tuple[Level2d, ...],
    activation: Callable[[Tensor], Tensor],
    out_size: int,
    scale: Tensor | None = None,
    shift: Tensor | None = None,
) -> Tensor:
    """spec: [B, C, N, N // 2 + 1] -> [B, C, M, M // 2 + 1] with M = ``out_size`` (N, or the
    pooled grid): every level's ring of ``activation(scale * D_r x + shift)`` (pooled: of its
    low-pass and max-pool); ``levels`` from ``levels_2d`` for this N; scale, shift: [B, C, L]
    per level (the instance norm), or None."""
    if scale is not None:
        scale = scale.flatten(0, 1).T.contiguous()
        shift = shift.flatten(0, 1).T.contiguous()
    return _Rings2d.apply(spec, scale, shift, levels, activation, out_size)
