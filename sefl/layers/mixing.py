"""Complex 1x1 channel mixing of spectra: the residual path beside each spectral convolution.

A per-channel linear map acts on every frequency alike, so it commutes with down-scaling.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ComplexChannelMix"]


class ComplexChannelMix(nn.Module):
    """spec ``[B, C_in, *F]`` complex -> ``[B, C_out, *F]``: ``out = W spec`` with complex W.

    Works on 1D and 2D spectra alike (any number of frequency axes).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        # Real [..., 2] storage: .double() / .float() then convert it with the other parameters.
        bound = (1.0 / in_channels) ** 0.5
        self.weight_ri = nn.Parameter(
            torch.empty(out_channels, in_channels, 2).uniform_(-bound, bound)
        )

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"

    @property
    def weight(self) -> Tensor:
        """``[C_out, C_in]`` complex."""
        return torch.view_as_complex(self.weight_ri)

    def forward(self, spec: Tensor) -> Tensor:
        if not spec.is_complex() or spec.dim() < 3 or spec.shape[1] != self.in_channels:
            raise ValueError(
                f"ComplexChannelMix expects a complex spectrum [B, {self.in_channels}, ...], got "
                f"{tuple(spec.shape)} {spec.dtype}"
            )
        flat = spec.flatten(2)
        out = torch.matmul(self.weight.to(spec.dtype), flat)
        return out.view(spec.shape[0], self.out_channels, *spec.shape[2:])
