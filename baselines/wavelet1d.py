"""Wavelet networks in 1D: scale-translation group convolutions with B-spline scale-spaces.

Reference: Romero, Bekkers, Tomczak & Hoogendoorn, "Wavelet Networks: Scale-Translation
Equivariant Learning From Raw Time-Series", TMLR 2024 (dwromero/wavelet_networks,
``eerie/nn/functional/gconv.py``), restated in specs/baselines.md section 10.

Group R x R+ with the dyadic scale grid h_s = b^s (b = 2; s < S). At output scale s a layer
blurs its input with the quadratic (order-2) B-spline at scale h_s and convolves it with one
kernel dilated by h_s, times 1/h_s:

* lifting: x [B, C_in, L] -> [B, C_out, S, L], every scale sees x;
* group conv: x [B, C_in, S, L] -> [B, C_out, S, L], output scale s sees the input scales
  s .. s + K_S - 1 (neighbouring scales mixed, fewer at the top), each through its own
  kernel slice.

Our implementation: the B-spline B2(x / h) sampled at the integers is normalised to sum 1,
which folds the reference's factor 1/h into the blur (the samples sum to h). The dilated
convolution is ``baselines.dss.DilatedScaleConv1d`` (the same per-scale dilation and scale
window as DSS) and the blur is applied after it rather than before: both are convolutions,
so the operator is the same away from the borders (tested), only the zero-padding differs.

Model (ours; the published wavelet networks are for raw audio): the backbone of
``baselines.cnn1d`` with a lifting layer and then group convs (kernel 7, S = 3 scales 1, 2, 4,
K_S = 2, no bias), each -> ReLU -> MaxPool 2 along the length (not after the last) -> BN
shared over the scales; max over the scales at the end, global average pool, the MNIST head.
Channels 25 / 46 / 93 / 148 (about ``cnn1d``'s divided by sqrt 2, for the doubled K_S):
296,628 parameters at width 1 (the 1D SEFL model: 295,482, +0.39%). Native input (any length
of at least 8).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.cnn1d import SequenceNet, build_sequence_net
from baselines.dss import DilatedScaleConv1d, ScaleMax

__all__ = ["ScaleBlur1d", "WaveletConv1d", "bspline_blur", "quadratic_bspline", "wavelet1d"]


def quadratic_bspline(u: Tensor) -> Tensor:
    """The centred cardinal B-spline of order 2 (support |u| < 3/2), elementwise."""
    a = u.abs()
    inner = 0.75 - a**2
    outer = 0.5 * (1.5 - a).clamp_min(0.0) ** 2
    return torch.where(a <= 0.5, inner, outer)


def bspline_blur(scale: float) -> Tensor:
    """B2(n / scale) at the integers |n| < 1.5 scale (its support), normalised to sum 1:
    [2 r + 1], entry n + r."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    radius = math.ceil(1.5 * scale) - 1
    taps = quadratic_bspline(torch.arange(-radius, radius + 1, dtype=torch.float64) / scale)
    return (taps / taps.sum()).float()


class ScaleBlur1d(nn.Module):
    """Blur scale s of x [B, C, S, L] with ``bspline_blur(base ** s)`` (zero padding)
    -> [B, C, S, L]."""

    def __init__(self, n_scales: int, base: float = 2.0) -> None:
        super().__init__()
        self.n_scales = n_scales
        for s in range(n_scales):
            self.register_buffer(f"kernel{s}", bspline_blur(base**s), persistent=False)

    def kernels(self) -> list[Tensor]:
        return [getattr(self, f"kernel{s}") for s in range(self.n_scales)]

    def forward(self, x: Tensor) -> Tensor:
        b, c, _, length = x.shape
        blurred = []
        for s, kernel in enumerate(self.kernels()):
            k = kernel.to(x.dtype).view(1, 1, -1)
            xs = x[:, :, s].reshape(b * c, 1, length)
            blurred.append(F.conv1d(xs, k, padding=k.shape[-1] // 2).view(b, c, length))
        return torch.stack(blurred, 2)


class WaveletConv1d(nn.Module):
    """A scale-translation group convolution (module docstring).

    lift=True:  x [B, C_in, L]    -> [B, C_out, S, L]
    lift=False: x [B, C_in, S, L] -> [B, C_out, S, L], output scale s mixing the input scales
    s .. s + scale_size - 1. Kernel ``conv.weight[C_out, C_in, K_S, k]``; no bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        n_scales: int,
        scale_size: int = 1,
        base: float = 2.0,
        lift: bool = False,
    ) -> None:
        super().__init__()
        if lift and scale_size != 1:
            raise ValueError(f"a lifting layer has scale_size 1, got {scale_size}")
        self.lift = lift
        self.n_scales = n_scales
        self.conv = DilatedScaleConv1d(
            in_channels, out_channels, kernel_size, n_scales, scale_size=scale_size, base=base
        )
        self.blur = ScaleBlur1d(n_scales, base)

    def forward(self, x: Tensor) -> Tensor:
        if self.lift:
            if x.dim() != 3:
                raise ValueError(
                    f"a lifting layer expects x of shape [B, C, L], got {tuple(x.shape)}"
                )
            x = x.unsqueeze(2).expand(-1, -1, self.n_scales, -1)
        return self.blur(self.conv(x))


def _create_wavelet1d(
    width: float,
    n_scales: int,
    base: float,
    scale_size: int,
    kernel_size: int,
    **backbone,
) -> SequenceNet:
    """``backbone``: keyword arguments of ``build_sequence_net`` (channels, hidden, ...)."""

    def make_conv(i: int, c_in: int, c_out: int) -> nn.Module:
        if i == 0:
            return WaveletConv1d(c_in, c_out, kernel_size, n_scales, base=base, lift=True)
        return WaveletConv1d(c_in, c_out, kernel_size, n_scales, scale_size, base)

    return build_sequence_net(
        make_conv, "wavelet1d", width, scale_axis=True, project=ScaleMax(), **backbone
    )


def wavelet1d(width: float = 1.0, **kwargs) -> SequenceNet:
    """Wavelet network on native-length sequences (296,628 parameters at width 1);
    ``features`` fold the scales into channels: [B, C * S, L']."""
    model_args = {
        "n_scales": 3,
        "base": 2.0,
        "scale_size": 2,
        "kernel_size": 7,
        "channels": (24, 45, 91, 144),
    }
    return _create_wavelet1d(width, **{**model_args, **kwargs})
