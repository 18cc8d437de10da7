"""Real 1x1 channel mixing of spectra: the residual path beside each spectral convolution.

A per-channel linear map acts on every frequency alike, so it commutes with down-scaling. The
weights are real, as in the authors' model, where the complex 1x1 convolution's result is taken
to space and only its real part kept, so only the real part of their weight acts; a complex
weight on a half spectrum would add a non-local Hilbert-type transform.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["RealChannelMix"]


class RealChannelMix(nn.Module):
    """spec ``[B, C_in, *F]`` complex -> ``[B, C_out, *F]``: ``out = W spec`` with real W
    ``[C_out, C_in]`` (a real 1x1 convolution in space).

    Works on 1D and 2D spectra alike (any number of frequency axes).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        # U(-b, b) with b^2 = 2 / C_in: E|W|^2 = 2 / (3 C_in), the variance of our former complex
        # weight (U(-1/sqrt(C_in), 1/sqrt(C_in)) in each part) and twice that of the authors'
        # acting real part, as for the spectral convolution's filter.
        bound = (2.0 / in_channels) ** 0.5
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels).uniform_(-bound, bound))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"

    def forward(self, spec: Tensor) -> Tensor:
        if not spec.is_complex() or spec.dim() < 3 or spec.shape[1] != self.in_channels:
            raise ValueError(
                f"RealChannelMix expects a complex spectrum [B, {self.in_channels}, ...], got "
                f"{tuple(spec.shape)} {spec.dtype}"
            )
        # A real matrix acts on the real and imaginary parts alike: one real product.
        pairs = torch.view_as_real(spec).flatten(2)  # [B, C_in, prod(F) * 2]
        out = torch.matmul(self.weight.to(pairs.dtype), pairs)
        return torch.view_as_complex(out.view(spec.shape[0], self.out_channels, *spec.shape[2:], 2))
