"""Scale-equivariant nonlinearities (Rahman & Yeh, NeurIPS 2023; specs/sefl-method.md section 3).

A pointwise nonlinearity at one resolution creates frequencies above the band and so breaks
equivariance. These layers produce every output frequency from the coarsest resolution that can
represent it: for each level r (see ``sefl.layers.levels``) go to space at r, optionally apply a
per-resolution instance norm, apply the activation, and keep the ring of frequencies that level
adds. Then ``D_r out(x) == out(D_r x)`` exactly for every r in the layer's resolution set.

Two implementations with identical outputs: ``"loop"``, the straightforward per-resolution
Python loop (the test oracle), and ``"fast"`` (default), which visits only the levels, with small
DFT matrices, the norm's statistics from the spectrum and only each ring's frequencies
(``sefl.layers.level_transforms``, ``sefl.layers.rings_2d``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sefl.layers.level_transforms import (
    apply_levels_1d,
    band_power_weights,
    hermitian_projection,
    hermitian_zero_column,
    levels_1d,
)
from sefl.layers.levels import (
    LevelPlan,
    level_sizes,
    norm_index_for,
    output_size,
    plan_levels,
    resolution_set,
)
from sefl.layers.rings_2d import apply_levels_2d, levels_2d
from sefl.spectral import band, fit_spectrum, ring_mask, to_space, to_spectrum

__all__ = ["PointwiseNonlin", "ScaleEqMaxPool2d", "ScaleEqNonlin1d", "ScaleEqNonlin2d"]

Activation = Callable[[Tensor], Tensor]
Implementation = Literal["fast", "loop"]


@dataclass(frozen=True)
class _FastPlan:
    """What the fast path of one input size, dtype and device needs, built once: the level
    plan, its matrices, the norm's band-power weights (2D: with the zero column apart, which
    the Hermitian projection changes), the norm index of each level and, in 2D, the row of -k
    for each row k."""

    plan: LevelPlan
    levels: tuple
    power: Tensor
    norm_index: Tensor
    zero_column_power: Tensor | None = None
    negated: Tensor | None = None


class _ScaleEqNonlin(nn.Module):
    ndim: int
    pooled: bool = False

    def __init__(
        self,
        channels: int,
        base: int,
        max_resolution: int,
        step: int = 1,
        activation: Activation = F.relu,
        norm: bool = True,
        eps: float = 1e-5,
        implementation: Implementation = "fast",
    ) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if implementation not in ("fast", "loop"):
            raise ValueError(f"implementation must be 'fast' or 'loop', got {implementation!r}")
        self.channels = channels
        self.resolutions = resolution_set(base, max_resolution, step)
        self.levels = level_sizes(self.resolutions, self.pooled)
        self.activation = activation
        self.eps = eps
        self.implementation = implementation
        self.norm = norm
        # One affine instance norm per level, as the paper's per-resolution norms; separate
        # parameters so that training can decay each level's by its own factor.
        count = len(self.levels) if norm else 0
        self.norm_weights = nn.ParameterList([torch.ones(channels) for _ in range(count)])
        self.norm_biases = nn.ParameterList([torch.zeros(channels) for _ in range(count)])
        self._matrices: dict[tuple, tuple] = {}

    def extra_repr(self) -> str:
        r = self.resolutions
        return (
            f"{self.channels}, resolutions={r[0]}..{r[-1]} ({len(self.levels)} levels), "
            f"norm={self.norm}, implementation={self.implementation!r}"
        )

    @property
    def norm_weight(self) -> Tensor | None:
        """[levels, C] scales of the per-level norms (None without norm)."""
        return torch.stack(list(self.norm_weights)) if self.norm else None

    @property
    def norm_bias(self) -> Tensor | None:
        """[levels, C] shifts of the per-level norms (None without norm)."""
        return torch.stack(list(self.norm_biases)) if self.norm else None

    @property
    def base(self) -> int:
        return self.resolutions[0]

    @property
    def max_resolution(self) -> int:
        return self.resolutions[-1]

    def _check(self, spec: Tensor, n: int) -> None:
        if not spec.is_complex():
            raise ValueError(f"{type(self).__name__} takes a complex spectrum, got {spec.dtype}")
        if spec.dim() != self.ndim + 2 or spec.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__} expects a spectrum [B, {self.channels}, ...] with "
                f"{self.ndim} frequency axes, got shape {tuple(spec.shape)}"
            )
        if not self.base <= n <= self.max_resolution:
            raise ValueError(
                f"{type(self).__name__}: input size {n} is outside the layer's resolutions "
                f"[{self.base}, {self.max_resolution}]; resample the input or widen the layer"
            )

    def _normalise(self, x: Tensor, index: int) -> Tensor:
        if not self.norm:
            return x
        return F.instance_norm(
            x, weight=self.norm_weights[index], bias=self.norm_biases[index], eps=self.eps
        )

    def _level_output(self, y: Tensor, r: int) -> Tensor:
        """The activated level r in space -> its spectrum on the level's output grid."""
        return to_spectrum(y, self.ndim)

    def forward_loop(self, spec: Tensor, n: int) -> Tensor:
        """The straightforward implementation: every resolution r of the set below n, and n,
        supplies the ring of output frequencies above the band of the previous one."""
        visits = [r for r in self.resolutions if r < n] + [n]
        m = output_size(n, self.pooled)
        out = spec.new_zeros(fit_spectrum(spec, m, self.ndim, n).shape)
        below = 0
        for r in visits:
            index = norm_index_for(r, self.resolutions, self.levels, self.pooled)
            x_r = to_space(fit_spectrum(spec, r, self.ndim, n), r, self.ndim)
            y_r = self.activation(self._normalise(x_r, index))
            r_out = output_size(r, self.pooled)
            level = fit_spectrum(self._level_output(y_r, r), m, self.ndim, r_out)
            out = out + ring_mask(below, r_out, m, self.ndim, spec.device) * level
            below = r_out
        return out

    def _fast_plan(self, n: int, dtype: torch.dtype, device) -> _FastPlan:
        """The fast path's plan of an n-point input (built once per size, dtype and device)."""
        key = (n, dtype, str(device))
        if key not in self._matrices:
            plan = plan_levels(n, self.resolutions, self.pooled)
            to = {"dtype": dtype, "device": device}
            norm_index = torch.tensor(plan.norm_index, device=device)
            if self.ndim == 1:
                power = band_power_weights(plan.sizes, 2 * band(n) + 1, 1).to(**to)
                fast = _FastPlan(plan, levels_1d(plan, dtype, device), power, norm_index)
            else:
                power = band_power_weights(plan.sizes, n, 2).to(**to)
                zero_column = power[:, :, 0].clone()
                power[:, :, 0] = 0
                negated = (-torch.arange(n, device=device)) % n
                levels = levels_2d(plan, dtype, device, pooled=self.pooled)
                fast = _FastPlan(plan, levels, power, norm_index, zero_column, negated)
            self._matrices[key] = fast
        return self._matrices[key]

    def _norm_affine(
        self, fast: _FastPlan, variance: Tensor, mean: Tensor
    ) -> tuple[Tensor, Tensor] | None:
        """Scale and shift [B, C, L] of every level's instance norm from the variance [B, C, L]
        and the mean [B, C] of the input in space (equal at every level)."""
        if not self.norm:
            return None
        index = fast.norm_index
        scale = self.norm_weight[index].T * torch.rsqrt(variance + self.eps)
        return scale, self.norm_bias[index].T - mean[..., None] * scale


class ScaleEqNonlin1d(_ScaleEqNonlin):
    """Scale-equivariant nonlinearity on 1D spectra.

    forward(spec, n): spec ``[B, C, n // 2 + 1]`` complex (an n-point signal's spectrum,
    ``base <= n <= max_resolution``) -> ``[B, C, n // 2 + 1]``.
    """

    ndim = 1

    def forward(self, spec: Tensor, n: int) -> Tensor:
        self._check(spec, n)
        if self.implementation == "loop":
            return self.forward_loop(spec, n)
        fast = self._fast_plan(n, spec.real.dtype, spec.device)
        compact = 2 * band(n) + 1
        spec_c = hermitian_projection(fit_spectrum(spec, compact, 1, n))
        affine = None
        if self.norm:
            # Parseval: the mean is the zero frequency, the variance the power of the rest.
            power_spectrum = torch.view_as_real(spec_c).square().sum(-1)  # |X|^2, no sqrt
            variance = torch.einsum("bcq,lq->bcl", power_spectrum, fast.power)
            affine = self._norm_affine(fast, variance, spec_c[..., 0].real)
        out = apply_levels_1d(spec_c, fast.levels, self.activation, *(affine or ()))
        return fit_spectrum(out, n, 1, compact)


class ScaleEqNonlin2d(_ScaleEqNonlin):
    """Scale-equivariant nonlinearity on 2D spectra.

    forward(spec): spec ``[B, C, N, N // 2 + 1]`` complex (``base <= N <= max_resolution``)
    -> ``[B, C, N, N // 2 + 1]``.
    """

    ndim = 2

    def forward(self, spec: Tensor) -> Tensor:
        n = spec.shape[-2]
        self._check(spec, n)
        if self.implementation == "loop":
            return self.forward_loop(spec, n)
        fast = self._fast_plan(n, spec.real.dtype, spec.device)
        affine = None
        if self.norm:
            # Parseval on the grid's own layout (the Nyquist bins have weight 0), with the zero
            # column's Hermitian part, which is what the levels see.
            power_spectrum = torch.view_as_real(spec).square().sum(-1)  # |X|^2, no sqrt
            variance = torch.einsum("bckq,lkq->bcl", power_spectrum, fast.power)
            zero_column = hermitian_zero_column(spec, fast.negated)
            zero_power = torch.view_as_real(zero_column).square().sum(-1)
            variance = variance + torch.einsum("bck,lk->bcl", zero_power, fast.zero_column_power)
            affine = self._norm_affine(fast, variance, spec[..., 0, 0].real)
        out_size = output_size(n, self.pooled)
        return apply_levels_2d(spec, fast.levels, self.activation, out_size, *(affine or ()))


class ScaleEqMaxPool2d(ScaleEqNonlin2d):
    """Scale-equivariant nonlinearity followed by 2x max-pooling.

    At each level r: activation, low-pass to band(ceil(r / 2)), max-pool 2 (ceil mode); the ring
    is taken at the pooled size. forward(spec): ``[B, C, N, N // 2 + 1]`` complex ->
    ``[B, C, M, M // 2 + 1]`` with ``M = ceil(N / 2)``.
    """

    pooled = True

    def _level_output(self, y: Tensor, r: int) -> Tensor:
        m = output_size(r, pooled=True)
        low = to_space(fit_spectrum(fit_spectrum(to_spectrum(y), m), r), r)
        return to_spectrum(F.max_pool2d(low, 2, ceil_mode=True))


class PointwiseNonlin(nn.Module):
    """The plain nonlinearity of a Fourier CNN: instance norm and activation at the input's own
    resolution. Resolution-agnostic but NOT scale-equivariant (the baseline SEFL improves on).

    forward(spec, n=None): ``[B, C, *F]`` complex spectrum of an n-point signal (2D: n from
    ``spec.shape[-2]``) -> the same shape; ``pooled=True`` max-pools 2 (ceil mode) in space,
    giving a ``ceil(n / 2)`` grid.
    """

    def __init__(
        self,
        channels: int,
        ndim: int = 2,
        activation: Activation = F.relu,
        norm: bool = True,
        pooled: bool = False,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if ndim not in (1, 2):
            raise ValueError(f"ndim must be 1 or 2, got {ndim}")
        self.ndim = ndim
        self.activation = activation
        self.pooled = pooled
        self.norm = nn.InstanceNorm1d(channels, affine=True, eps=eps) if norm else nn.Identity()
        if norm and ndim == 2:
            self.norm = nn.InstanceNorm2d(channels, affine=True, eps=eps)

    def forward(self, spec: Tensor, n: int | None = None) -> Tensor:
        n = spec.shape[-2] if self.ndim == 2 else n
        if n is None:
            raise ValueError("PointwiseNonlin with ndim=1 needs n, the signal length")
        y = self.activation(self.norm(to_space(spec, n, self.ndim)))
        if self.pooled:
            pool = F.max_pool2d if self.ndim == 2 else F.max_pool1d
            y = pool(y, 2, ceil_mode=True)
        return to_spectrum(y, self.ndim)
