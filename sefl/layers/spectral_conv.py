"""Localised spectral convolution (Rahman & Yeh, NeurIPS 2023; specs/sefl-method.md section 3).

The learned object is a real n-tap (1D) or n x n (2D) filter ``w``, ``[C_in, C_out, n(, n)]``;
only real filters are expressible. ``L = DFT_n(w)`` (unnormalised) is the spec's tensor, and its
Dirichlet interpolation onto ``G`` global integer frequencies, ``W = M L M^T``, is the layer's
multiplier: each input frequency ``|k| <= band(min(G - 1, N))`` is multiplied by ``W[:, :, k]``
and the rest is zeroed. The multiplier depends only on the integer frequency, never on the grid
size N, so the layer commutes with ideal down-scaling exactly.

``M L`` at frequency k is the DTFT of ``ifft_n(L) = w`` at ``2 pi k / G``, so W is the G-point DFT
of w zero-padded to G. It is built that way, from real Fourier matrices of n columns, and is
Hermitian (``W[-k] = conj W[k]``): the product on the half spectrum equals the real part of the
full-spectrum product that the authors take, and on a G x G grid the layer is the circular
convolution with w, restricted to the passed band.

The authors' weights map onto ours exactly. They store complex ``L_a`` (their scale: the same
unnormalised n-point DFT, with ``ifft_n(L_a, norm="forward")`` their spatial filter) and complex
1x1 weights, and keep the real part of the result, so only ``Herm(L_a)[m] = (L_a[m] +
conj(L_a[-m mod n])) / 2`` and the real part of the 1x1 act: ``w = Re(ifft_n(L_a))`` (the
inverse DFT with its 1/n per axis) gives their layer, with ``L = Herm(L_a)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from sefl.spectral import band, signed_frequencies

__all__ = [
    "SpectralConv1d",
    "SpectralConv2d",
    "contract_real",
    "dirichlet_matrix",
    "tap_phases",
]


def dirichlet_matrix(frequencies: Tensor, local_modes: int, global_modes: int) -> Tensor:
    """M[l, m] = D(2 pi (k_l / G - m / n)) for integer frequencies k_l: ``[len(k), n]`` complex128.

    D(t) = (1/n) exp(-i t (n - 1) / 2) sin(n t / 2) / sin(t / 2), with D = 1 where t is a
    multiple of 2 pi (D is 2 pi-periodic, so negative frequencies need no wrapping). This is the
    spec's definition of the interpolation; the layers use the equal ``tap_phases @ DFT_n``.
    """
    n = local_modes
    t = 2 * math.pi * (frequencies.double()[:, None] / global_modes - torch.arange(n).double() / n)
    half = t / 2
    sin_half = torch.sin(half)
    at_pole = sin_half.abs() < 1e-12
    ratio = torch.sin(n * half) / torch.where(at_pole, torch.ones_like(sin_half), sin_half)
    # At t = 2 pi j the limit of sin(n t/2) / sin(t/2) is n (-1)^(j (n - 1)).
    limit = n * torch.cos(torch.pi * torch.round(t / (2 * math.pi)) * (n - 1))
    ratio = torch.where(at_pole, limit, ratio)
    return torch.exp(-1j * half * (n - 1)) * ratio / n


def tap_phases(
    frequencies: Tensor, local_modes: int, global_modes: int, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor]:
    """(cos, sin) of ``2 pi k_l . j / G`` for every tap j: two real ``[len(k), n^d]`` matrices.

    frequencies: ``[F]`` integers (1D), or ``[F, d]`` integer vectors with the taps
    ``j in [0, n)^d`` in row-major order (that of ``w.flatten``). ``(cos - i sin) @ w`` is the
    G-point DFT of an n-tap filter w at the frequencies k_l, which equals
    ``dirichlet_matrix(k, n, G) @ DFT_n(w)`` in 1D.
    """
    freqs = frequencies.view(len(frequencies), -1)
    axis = torch.arange(local_modes, device=frequencies.device)
    taps = torch.cartesian_prod(*[axis] * freqs.shape[1]).view(-1, freqs.shape[1])
    # The integer products are reduced mod G before the float multiply: exact phases at any k.
    turns = (freqs @ taps.T) % global_modes
    angle = turns.double() * (2 * math.pi / global_modes)
    return torch.cos(angle).to(dtype), torch.sin(angle).to(dtype)


def _gather_parts(spec: Tensor, rows: Tensor | None, h: int) -> Tensor:
    """The band-h frequencies of a spectrum ``[B, C, N, N // 2 + 1]`` (or 1D ``[B, C, Nc]``)
    -> ``[F, 2 B, C]`` real: frequency-major, the real parts of the batch then the imaginary
    parts (one copy). ``rows``: the grid rows of the compact layout's rows (2D)."""
    b, c = spec.shape[:2]
    parts = torch.view_as_real(spec)[..., : h + 1, :]
    if rows is None:
        return parts.permute(2, 3, 0, 1).reshape(-1, 2 * b, c)
    picked = parts.permute(2, 3, 4, 0, 1).index_select(0, rows)  # [K, Kc, 2, B, C]
    return picked.contiguous().view(-1, 2 * b, c)


def _scatter_parts(
    real: Tensor, imag: Tensor, shape: tuple[int, ...], rows: Tensor | None, h: int
) -> Tensor:
    """The inverse of ``_gather_parts`` for the real and imaginary parts ``[F, B, C]`` each:
    a spectrum of ``shape``, zero outside band h."""
    out = real.new_zeros(shape, dtype=real.dtype.to_complex())
    b, c = shape[:2]
    parts = torch.view_as_real(out)[..., : h + 1, :]
    if rows is None:
        target = parts.permute(2, 3, 0, 1)  # [Kc, 2, B, C]
        target[:, 0], target[:, 1] = real.view(-1, b, c), imag.view(-1, b, c)
        return out
    target = parts.permute(2, 3, 4, 0, 1)  # [N, Kc, 2, B, C]
    for part, values in enumerate((real, imag)):
        target[:, :, part].index_copy_(0, rows, values.view(len(rows), h + 1, b, c))
    return out


class _Contraction(torch.autograd.Function):
    """out[k] = x[k] (W[k] + residual^T) for every frequency k of band h, in real batched
    products on the spectrum's own layout (no crop, pad or complex product); the backward is
    four more products.

    spec ``[B, C_in, *grid]``, weights ``[2, F, C_in, C_out]`` (Re W, Im W), residual
    ``[C_out, C_in]`` or None -> ``[B, C_out, *grid]``.
    """

    @staticmethod
    def forward(ctx, spec, weights, residual, rows, h):
        real, imag = weights[0], weights[1]
        if residual is not None:
            real = real + residual.T
        stacked = _gather_parts(spec, rows, h)  # [F, 2B, C_in]: [Re x; Im x]
        b = spec.shape[0]
        by_real, by_imag = stacked @ real, stacked @ imag
        ctx.save_for_backward(stacked, real, imag, rows)
        ctx.h, ctx.shape, ctx.has_residual = h, spec.shape, residual is not None
        # Re out = Re x Re W - Im x Im W, Im out = Re x Im W + Im x Re W.
        shape = (b, real.shape[-1], *spec.shape[2:])
        return _scatter_parts(
            by_real[:, :b] - by_imag[:, b:], by_imag[:, :b] + by_real[:, b:], shape, rows, h
        )

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        stacked, real, imag, rows = ctx.saved_tensors
        h, b = ctx.h, ctx.shape[0]
        grads = _gather_parts(grad, rows, h)  # [F, 2B, C_out]: [g_re; g_im]
        grad_spec = grad_weights = grad_residual = None
        if ctx.needs_input_grad[0]:
            # d Re x = g_re Re W^T + g_im Im W^T, d Im x = g_im Re W^T - g_re Im W^T.
            by_real, by_imag = grads @ real.mT, grads @ imag.mT
            grad_spec = _scatter_parts(
                by_real[:, :b] + by_imag[:, b:],
                by_real[:, b:] - by_imag[:, :b],
                ctx.shape,
                rows,
                h,
            )
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            # d Re W = Re x^T g_re + Im x^T g_im, d Im W = Re x^T g_im - Im x^T g_re.
            grad_weights = stacked.new_empty(2, *real.shape)
            torch.bmm(stacked.mT, grads, out=grad_weights[0])
            swapped = torch.cat([grads[:, b:], -grads[:, :b]], 1)  # [g_im; -g_re]
            torch.bmm(stacked.mT, swapped, out=grad_weights[1])
            if ctx.has_residual:
                grad_residual = grad_weights[0].sum(0).T
        return grad_spec, grad_weights, grad_residual, None, None


def contract_real(
    spec: Tensor,
    weights: Tensor,
    h: int,
    rows: Tensor | None = None,
    residual: Tensor | None = None,
) -> Tensor:
    """Per-frequency channel mixing of band h in real arithmetic.

    spec ``[B, C_in, N, N // 2 + 1]`` (2D; ``rows``: the grid row of each compact row, i.e.
    ``signed_frequencies(2 h + 1) % N``) or ``[B, C_in, Nc]`` (1D) complex; weights
    ``[2, F, C_in, C_out]``: the real and imaginary parts of the multiplier at the compact
    layout's F frequencies (row-major); residual: ``[C_out, C_in]`` real added to the real part
    -> ``[B, C_out, *grid]``, zero outside band h. The real and imaginary parts of the input are
    stacked along the batch, so two real batched products give all four partial products.
    """
    return _Contraction.apply(spec, weights, residual, rows, h)


def _spectral_regulariser(local: Tensor, ndim: int) -> Tensor:
    """||L * P|| + ||spatial(L)|| with P = 30 exp(-10 |u - 1/2|^2) on [0, 1]^ndim and
    spatial(L) = ifft_n(L, norm="forward"), the authors' normalisation."""
    n = local.shape[-1]
    u = torch.linspace(0, 1, n, device=local.device, dtype=local.real.dtype)
    bump = (u - 0.5) ** 2
    if ndim == 2:
        bump = bump[:, None] + bump[None, :]
    penalty = 30 * torch.exp(-10 * bump)
    dims = tuple(range(-ndim, 0))
    spatial = torch.fft.ifftn(local, dim=dims, norm="forward")
    return torch.linalg.vector_norm(local * penalty) + torch.linalg.vector_norm(spatial)


class _SpectralConv(nn.Module):
    ndim: int

    def __init__(
        self, in_channels: int, out_channels: int, global_modes: int, local_modes: int
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if global_modes < 2 or global_modes % 2:
            raise ValueError(f"global_modes must be an even integer >= 2, got {global_modes}")
        if local_modes < 1:
            raise ValueError(f"local_modes must be >= 1, got {local_modes}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.global_modes = global_modes
        self.local_modes = local_modes
        shape = (in_channels, out_channels) + (local_modes,) * self.ndim
        # Var(w) = 1 / (C_in n^ndim) gives E|L[m]|^2 = E|W[k]|^2 = 1 / C_in at every frequency:
        # the scale of the authors' stored L (twice that of its Hermitian part, which is what
        # acts) and of our former complex L, so the output variance is what it was.
        scale = (1.0 / (in_channels * local_modes**self.ndim)) ** 0.5
        self.taps = nn.Parameter(torch.randn(*shape) * scale)
        self._tap_phases: dict[tuple, Tensor] = {}
        self._grid_rows: dict[tuple, Tensor] = {}

    @property
    def local(self) -> Tensor:
        """L = DFT_n(w) (unnormalised; the authors' scale): ``[C_in, C_out, n(, n)]`` complex."""
        return torch.fft.fftn(self.taps, dim=tuple(range(-self.ndim, 0)))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, global_modes={self.global_modes}, "
            f"local_modes={self.local_modes}"
        )

    def active_band(self, n: int) -> int:
        """Highest frequency the layer passes on an n-point grid: band(min(G - 1, n))."""
        return band(min(self.global_modes - 1, n))

    def regulariser(self) -> Tensor:
        """The training regulariser ||L * P|| + ||spatial(L)|| (a real scalar); the spatial term
        is n^ndim ||w||."""
        return _spectral_regulariser(self.local, self.ndim)

    def _check(self, spec: Tensor) -> None:
        if not spec.is_complex():
            raise ValueError(f"{type(self).__name__} takes a complex spectrum, got {spec.dtype}")
        if spec.dim() != self.ndim + 2 or spec.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects a spectrum [B, {self.in_channels}, ...] with "
                f"{self.ndim} frequency axes, got shape {tuple(spec.shape)}"
            )

    def _frequencies(self, h: int, device) -> Tensor:
        """The integer frequencies of the compact band-h layout, ``[F, ndim]`` (row-major)."""
        raise NotImplementedError  # each dimension defines its layout

    def frequency_weights(self, h: int) -> Tensor:
        """Re W and Im W on the compact band-h layout, frequency-major: ``[2, F, C_in, C_out]``
        real (F = the layout's frequencies, row-major).

        One real product of the taps with the phases of every frequency (cached per band):
        ``W[k] = sum_j w[j] exp(-2 pi i k.j / G)``, in the layout the contraction reads.
        """
        w = self.taps
        key = (h, w.dtype, str(w.device))
        if key not in self._tap_phases:
            freqs = self._frequencies(h, w.device)
            cos, sin = tap_phases(freqs, self.local_modes, self.global_modes, w.dtype)
            self._tap_phases[key] = torch.cat([cos, -sin])  # [2F, n^ndim]
        f = self._tap_phases[key].shape[0] // 2
        by_tap = w.flatten(2).permute(2, 0, 1).reshape(-1, self.in_channels * self.out_channels)
        return (self._tap_phases[key] @ by_tap).view(2, f, self.in_channels, self.out_channels)

    def _rows(self, n: int, h: int, device) -> Tensor | None:
        """The grid rows of the compact layout's rows (2D; cached), None in 1D."""
        raise NotImplementedError  # each dimension defines its layout

    def _contract(self, spec: Tensor, n: int, residual: Tensor | None) -> Tensor:
        h = self.active_band(n)
        weights = self.frequency_weights(h).to(spec.real.dtype)
        if residual is not None:
            residual = residual.to(spec.real.dtype)
        return contract_real(spec, weights, h, self._rows(n, h, spec.device), residual)


class SpectralConv1d(_SpectralConv):
    """Localised 1D spectral convolution.

    forward(spec, n): spec ``[B, C_in, n // 2 + 1]`` complex, the spectrum of an n-point signal
    -> ``[B, C_out, n // 2 + 1]``; frequencies above ``band(min(G - 1, n))`` are zero.
    """

    ndim = 1

    def _frequencies(self, h: int, device) -> Tensor:
        return torch.arange(h + 1, device=device)[:, None]

    def _rows(self, n: int, h: int, device) -> None:
        return None

    def weight(self, h: int) -> Tensor:
        """W at frequencies 0..h: ``[C_in, C_out, h + 1]`` complex."""
        real, imag = self.frequency_weights(h)
        return torch.complex(real, imag).permute(1, 2, 0)

    def forward(self, spec: Tensor, n: int, residual: Tensor | None = None) -> Tensor:
        """residual: a real 1x1 weight ``[C_out, C_in]`` added to the multiplier (the block's
        residual path, fused into the same product when the layer passes all of band(n))."""
        self._check(spec)
        return self._contract(spec, n, residual)


class SpectralConv2d(_SpectralConv):
    """Localised 2D spectral convolution.

    forward(spec): spec ``[B, C_in, N, N // 2 + 1]`` complex -> ``[B, C_out, N, N // 2 + 1]``;
    frequencies with ``max(|kx|, |ky|) > band(min(G - 1, N))`` are zero.
    """

    ndim = 2

    def _frequencies(self, h: int, device) -> Tensor:
        rows = signed_frequencies(2 * h + 1, device=device)
        return torch.cartesian_prod(rows, torch.arange(h + 1, device=device))

    def _rows(self, n: int, h: int, device) -> Tensor:
        key = (n, h, str(device))
        if key not in self._grid_rows:
            self._grid_rows[key] = signed_frequencies(2 * h + 1, device=device) % n
        return self._grid_rows[key]

    def weight(self, h: int) -> Tensor:
        """W on the compact grid of size 2h+1: ``[C_in, C_out, 2h + 1, h + 1]`` complex."""
        real, imag = self.frequency_weights(h)
        return torch.complex(real, imag).permute(1, 2, 0).unflatten(-1, (2 * h + 1, h + 1))

    def forward(self, spec: Tensor, residual: Tensor | None = None) -> Tensor:
        """residual: a real 1x1 weight ``[C_out, C_in]`` added to the multiplier (the block's
        residual path, fused into the same product when the layer passes all of band(N))."""
        self._check(spec)
        return self._contract(spec, spec.shape[-2], residual)
