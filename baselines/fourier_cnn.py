"""Fourier CNN: the SEFL architectures with a plain pointwise nonlinearity at the input's own
resolution (the "Fourier CNN" rows of Rahman & Yeh, NeurIPS 2023).

Same spectral convolutions, channel mixing and multi-level head as the SEFL models, so it takes
any resolution; but a pointwise nonlinearity on the input's own grid creates frequencies that a
down-scaled input cannot, so it is not scale-equivariant. It isolates what the scale-equivariant
nonlinearity buys.
"""

from __future__ import annotations

from sefl.models import FourierSE1d, FourierSE2d, FourierSESTL

__all__ = ["fourier_cnn", "fourier_cnn1d", "fourier_cnn_stl"]


def fourier_cnn(width: float = 1.0, **overrides) -> FourierSE2d:
    """MNIST-scale Fourier CNN: [B, 1, n, n] (6 <= n <= 28) -> [B, 10]."""
    return FourierSE2d(width=width, equivariant=False, **overrides)


def fourier_cnn_stl(width: float = 1.0, **overrides) -> FourierSESTL:
    """STL-10-scale Fourier CNN: [B, 3, n, n] (40 <= n <= 97) -> [B, 10]."""
    return FourierSESTL(width=width, equivariant=False, **overrides)


def fourier_cnn1d(width: float = 1.0, **overrides) -> FourierSE1d:
    """1D Fourier CNN: [B, 1, n] (12 <= n <= 72) -> [B, 10]."""
    return FourierSE1d(width=width, equivariant=False, **overrides)
