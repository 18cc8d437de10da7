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

from sefl.spectral import band, fit_spectrum, signed_frequencies

__all__ = [
    "SpectralConv1d",
    "SpectralConv2d",
    "contract_channels",
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
    """(cos, sin) of ``2 pi k_l j / G`` for taps j < n: two real ``[len(k), n]`` matrices.

    ``(cos - i sin) @ w`` is the G-point DFT of an n-tap filter w at the frequencies k_l, which
    equals ``dirichlet_matrix(k, n, G) @ DFT_n(w)``.
    """
    taps = torch.arange(local_modes, device=frequencies.device)
    # The integer product is reduced mod G before the float multiply: exact phases at any k.
    turns = (frequencies[:, None] * taps[None, :]) % global_modes
    angle = turns.double() * (2 * math.pi / global_modes)
    return torch.cos(angle).to(dtype), torch.sin(angle).to(dtype)


def contract_channels(x: Tensor, weight: Tensor) -> Tensor:
    """Per-frequency channel mixing: x ``[B, C_in, *F]``, weight ``[C_in, C_out, *F]`` ->
    ``[B, C_out, *F]`` (einsum "bi...,io...->bo...")."""
    if x.dim() == 3:
        return torch.einsum("bix,iox->box", x, weight)
    return torch.einsum("bixy,ioxy->boxy", x, weight)


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

    def _phases(self, freqs: Tensor) -> tuple[Tensor, Tensor]:
        w = self.taps
        return tap_phases(freqs.to(w.device), self.local_modes, self.global_modes, w.dtype)


class SpectralConv1d(_SpectralConv):
    """Localised 1D spectral convolution.

    forward(spec, n): spec ``[B, C_in, n // 2 + 1]`` complex, the spectrum of an n-point signal
    -> ``[B, C_out, n // 2 + 1]``; frequencies above ``band(min(G - 1, n))`` are zero.
    """

    ndim = 1

    def weight(self, h: int) -> Tensor:
        """W at frequencies 0..h: ``[C_in, C_out, h + 1]`` complex."""
        cos, sin = self._phases(torch.arange(h + 1))
        return torch.complex(self.taps @ cos.T, -(self.taps @ sin.T))

    def forward(self, spec: Tensor, n: int) -> Tensor:
        self._check(spec)
        h = self.active_band(n)
        active = fit_spectrum(spec, 2 * h + 1, ndim=1, n=n)
        out = contract_channels(active, self.weight(h).to(spec.dtype))
        return fit_spectrum(out, n, ndim=1, n=2 * h + 1)


class SpectralConv2d(_SpectralConv):
    """Localised 2D spectral convolution.

    forward(spec): spec ``[B, C_in, N, N // 2 + 1]`` complex -> ``[B, C_out, N, N // 2 + 1]``;
    frequencies with ``max(|kx|, |ky|) > band(min(G - 1, N))`` are zero.
    """

    ndim = 2

    def weight(self, h: int) -> Tensor:
        """W on the compact grid of size 2h+1: ``[C_in, C_out, 2h + 1, h + 1]`` complex."""
        row_cos, row_sin = self._phases(signed_frequencies(2 * h + 1))
        col_cos, col_sin = row_cos[: h + 1], row_sin[: h + 1]
        # Columns first, in real arithmetic (w is real): [C_in, C_out, n, h + 1] complex.
        along_cols = torch.complex(self.taps @ col_cos.T, -(self.taps @ col_sin.T))
        rows = torch.complex(row_cos, -row_sin)
        return rows @ along_cols

    def forward(self, spec: Tensor) -> Tensor:
        self._check(spec)
        n = spec.shape[-2]
        h = self.active_band(n)
        active = fit_spectrum(spec, 2 * h + 1)
        out = contract_channels(active, self.weight(h).to(spec.dtype))
        return fit_spectrum(out, n)
