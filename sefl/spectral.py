"""Ideal (Fourier) resampling of real 1D and 2D signals, and the spectra the layers consume.

Conventions (``specs/sefl-method.md`` section 1):

* A spectrum is the forward-normalised real FFT of a real signal (``norm="forward"``), so the
  zero-frequency coefficient is the signal's mean at every grid size. 1D: ``[..., n // 2 + 1]``;
  2D: ``[..., n, n // 2 + 1]`` (full FFT along rows, half along the last axis because the signal
  is real).
* Nyquist rule: an ``n``-point grid keeps the integer frequencies ``|k| <= band(n) = (n - 1) // 2``.
  For even ``n`` the Nyquist bin ``n / 2`` is dropped: a real signal's Nyquist coefficient is
  ambiguous between ``+n/2`` and ``-n/2``, and keeping it breaks exact equivariance.
* ``resample(x, r)`` is ideal down-scaling ``D_r`` for ``r < n`` (low-pass, then sample on the
  coarser grid) and band-limited interpolation for ``r > n``.

This is the only place in the project where ideal resampling is implemented.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "band",
    "fit_spectrum",
    "resample",
    "ring_mask",
    "signed_frequencies",
    "to_space",
    "to_spectrum",
]


def band(n: int) -> int:
    """Highest integer frequency an ``n``-point grid keeps (Nyquist bin dropped for even n)."""
    if n < 1:
        raise ValueError(f"grid size must be >= 1, got {n}")
    return (n - 1) // 2


def signed_frequencies(n: int, half: bool = False, device=None) -> Tensor:
    """Integer frequency of each index of an ``n``-point FFT axis (``half``: the rfft axis)."""
    if half:
        return torch.arange(n // 2 + 1, device=device)
    return torch.fft.fftfreq(n, 1.0 / n, device=device).round().long()


def _check_ndim(ndim: int) -> None:
    if ndim not in (1, 2):
        raise ValueError(f"ndim must be 1 or 2, got {ndim}")


def _fit_full_axis(spec: Tensor, dim: int, size: int) -> Tensor:
    """Crop or zero-pad a full FFT axis from its length to ``size``, keeping the common band."""
    n = spec.shape[dim]
    h = min(band(n), band(size))
    low = spec.narrow(dim, 0, h + 1)
    high = spec.narrow(dim, n - h, h)
    zeros_shape = list(spec.shape)
    zeros_shape[dim] = size - 2 * h - 1
    zeros = spec.new_zeros(zeros_shape)
    return torch.cat([low, zeros, high], dim=dim)


def _fit_half_axis(spec: Tensor, size: int, n: int) -> Tensor:
    """Crop or zero-pad the last (rfft) axis of an ``n``-point spectrum to a ``size`` grid."""
    h = min(band(n), band(size))
    kept = spec[..., : h + 1]
    zeros = spec.new_zeros(*spec.shape[:-1], size // 2 + 1 - (h + 1))
    return torch.cat([kept, zeros], dim=-1)


def fit_spectrum(spec: Tensor, size: int, ndim: int = 2, n: int | None = None) -> Tensor:
    """Move a spectrum from its grid to a ``size`` grid, keeping the frequencies both can hold.

    spec: 1D ``[..., n // 2 + 1]`` or 2D ``[..., n, n // 2 + 1]`` complex -> the same layout for
    ``size``. Every frequency outside ``band(min(n, size))`` is zero in the result, so the Nyquist
    bins of even grids are always zero. ``n`` is the source grid size; 2D reads it from
    ``spec.shape[-2]``, 1D needs it because ``n // 2 + 1`` does not determine ``n``.
    """
    _check_ndim(ndim)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not spec.is_complex():
        raise ValueError(f"spec must be a complex spectrum, got dtype {spec.dtype}")
    if ndim == 2:
        n = spec.shape[-2]
    elif n is None:
        raise ValueError("fit_spectrum with ndim=1 needs n, the source grid size")
    if size == n and n % 2 == 1:
        return spec  # an odd grid has no Nyquist bin: nothing to crop, nothing to pad
    if ndim == 2:
        spec = _fit_full_axis(spec, -2, size)
    return _fit_half_axis(spec, size, n)


def _check_real(x: Tensor, ndim: int, name: str = "x") -> None:
    _check_ndim(ndim)
    if x.is_complex():
        raise ValueError(f"{name} must be a real signal, got complex dtype {x.dtype}")
    if x.dim() < ndim:
        raise ValueError(f"{name} needs at least {ndim} dims, got shape {tuple(x.shape)}")
    if ndim == 2 and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must be square in its last two dims, got {tuple(x.shape)}")


def to_spectrum(x: Tensor, ndim: int = 2) -> Tensor:
    """Real signal -> forward-normalised spectrum with the Nyquist bins dropped.

    x: 1D ``[..., n]`` or 2D ``[..., n, n]`` real -> ``[..., n // 2 + 1]`` or
    ``[..., n, n // 2 + 1]`` complex.
    """
    _check_real(x, ndim)
    n = x.shape[-1]
    dims = (-2, -1) if ndim == 2 else (-1,)
    spec = torch.fft.rfftn(x, dim=dims, norm="forward")
    if n % 2 == 0:
        # The Nyquist bin of an even grid is ambiguous for real signals; it is not part of band(n).
        return fit_spectrum(spec, n, ndim, n)
    return spec


def to_space(spec: Tensor, size: int, ndim: int = 2) -> Tensor:
    """Spectrum -> real signal on a ``size`` grid (the inverse of ``to_spectrum``).

    spec: ``[..., size // 2 + 1]`` (1D) or ``[..., size, size // 2 + 1]`` (2D) complex ->
    ``[..., size]`` or ``[..., size, size]`` real.
    """
    _check_ndim(ndim)
    dims = (-2, -1) if ndim == 2 else (-1,)
    shape = (size, size) if ndim == 2 else (size,)
    return torch.fft.irfftn(spec, s=shape, dim=dims, norm="forward")


def resample(x: Tensor, size: int, ndim: int = 2) -> Tensor:
    """Ideal resampling of real signals to a ``size`` grid along their last ``ndim`` axes.

    x: ``[..., n]`` (1D) or ``[..., n, n]`` (2D) real, float32 or float64, any device ->
    ``[..., size]`` or ``[..., size, size]``. ``size < n`` is the ideal down-scaling ``D_size``;
    ``size == n`` drops the Nyquist bin of even grids (the identity on band-limited signals).
    """
    _check_real(x, ndim)
    n = x.shape[-1]
    return to_space(fit_spectrum(to_spectrum(x, ndim), size, ndim, n), size, ndim)


def ring_mask(inner: int, outer: int, size: int, ndim: int = 2, device=None) -> Tensor:
    """Boolean mask, in a ``size`` grid's spectrum layout, of the frequencies in the ring
    ``band(outer) minus band(inner)`` (``inner = 0`` gives the whole of ``band(outer)``).

    Returns ``[size // 2 + 1]`` (1D) or ``[size, size // 2 + 1]`` (2D) bool; in 2D the ring is
    ``band(inner) < max(|kx|, |ky|) <= band(outer)``.
    """
    _check_ndim(ndim)
    lo = band(inner) if inner > 0 else -1
    hi = band(outer)
    ky = signed_frequencies(size, half=True, device=device)
    if ndim == 1:
        radius = ky
    else:
        kx = signed_frequencies(size, device=device).abs()
        radius = torch.maximum(kx[:, None], ky[None, :])
    return (radius > lo) & (radius <= hi)
