"""DSS: Deep Scale-Spaces, a lift to a discrete Gaussian scale-space and dilated scale convs.

Reference: Worrall & Welling, "Deep Scale-spaces: Equivariance Over Scale", NeurIPS 2019
(deworrall92/deep-scale-spaces ``Dconv.py``; ISosnovik/sesn ``deep_scale_space.py``,
``mnist_dss.py``), restated in specs/baselines.md section 5.

Lift: Lindeberg's discrete Gaussian T(n; t) = e^{-t} I_n(t) (``scipy.special.ive``), truncated
at |n| <= 4 ceil(sqrt(t)), normalised to sum 1 and applied separably with zero padding, at
t_j = sigma_0^2 (b^{2j} - 1) for j = 1..S-1; the stack [x, T_{t_1} x, ...] is a new scale axis
(no subsampling). Scale conv: output scale s convolves the input scales s .. s + K_S - 1
(truncated at the last output scale) with one kernel dilated by int(b^s). Both work on images
and, for the 1D baselines, on sequences (``GaussianScaleLift(ndim=1)``, ``DilatedScaleConv1d``).

MNIST: sigma_0 = 0.25, b = 2, S = 2 (t_1 = 0.1875, dilations 1 and 2), K_S = 1, channels
32/63/95, no conv bias; "vector" lifts once and keeps the scale axis to the end (BN3d, max over
scales before the head), "scalar" lifts, convolves and takes the max over scales in every
layer. Both have 494,359 parameters.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import ive
from torch import Tensor, nn

from baselines.cnn import MNIST_POOLS, CanvasNet, build_canvas_net, conv_blocks

__all__ = [
    "DilatedScaleConv1d",
    "DilatedScaleConv2d",
    "GaussianScaleLift",
    "ScaleMax",
    "discrete_gaussian",
    "mnist_dss_scalar",
    "mnist_dss_vector",
    "scale_space_times",
]


def discrete_gaussian(t: float) -> Tensor:
    """Lindeberg's discrete Gaussian of variance t, normalised to sum 1: [2r + 1] with
    r = 4 ceil(sqrt(t)), entry n + r holding e^{-t} I_n(t) / sum."""
    if t <= 0:
        raise ValueError(f"scale-space time t must be > 0, got {t}")
    radius = 4 * math.ceil(math.sqrt(t))
    taps = ive(np.arange(-radius, radius + 1), t)  # ive(n, t) = e^{-t} I_n(t) for t > 0
    return torch.from_numpy(taps / taps.sum()).float()


def scale_space_times(n_scales: int, base: float = 2.0, zero_scale: float = 0.25) -> list[float]:
    """t_j = zero_scale^2 (base^(2j) - 1) for j = 1 .. n_scales - 1."""
    if n_scales < 1:
        raise ValueError(f"n_scales must be >= 1, got {n_scales}")
    return [zero_scale**2 * (base ** (2 * j) - 1) for j in range(1, n_scales)]


class GaussianScaleLift(nn.Module):
    """Lift to a discrete Gaussian scale-space (the reference's ``BesselConv2d``), any channels.

    x: [B, C, H, W] -> [B, C, S, H, W] (``ndim=1``: [B, C, L] -> [B, C, S, L]); scale 0 is x
    itself, scale j is x blurred by the discrete Gaussian of time t_j (``scale_space_times``),
    separably along every spatial axis with zero padding.
    """

    def __init__(
        self,
        n_scales: int = 2,
        base: float = 2.0,
        zero_scale: float = 0.25,
        ndim: Literal[1, 2] = 2,
    ) -> None:
        super().__init__()
        if ndim not in (1, 2):
            raise ValueError(f"ndim must be 1 or 2, got {ndim}")
        self.ndim = ndim
        self.times = scale_space_times(n_scales, base, zero_scale)
        for j, t in enumerate(self.times):
            self.register_buffer(f"kernel{j}", discrete_gaussian(t), persistent=False)

    def kernels(self) -> list[Tensor]:
        return [getattr(self, f"kernel{j}") for j in range(len(self.times))]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != self.ndim + 2:
            raise ValueError(f"expected x with {self.ndim} spatial axes, got {tuple(x.shape)}")
        space = x.shape[2:]
        flat = x.reshape(-1, 1, *space)
        stack = [x]
        for kernel in self.kernels():
            k = kernel.to(x.dtype)
            r = k.numel() // 2
            if self.ndim == 1:
                blurred = F.conv1d(flat, k.view(1, 1, -1), padding=r)
            else:
                blurred = F.conv2d(flat, k.view(1, 1, 1, -1), padding=(0, r))
                blurred = F.conv2d(blurred, k.view(1, 1, -1, 1), padding=(r, 0))
            stack.append(blurred.view(x.shape))
        return torch.stack(stack, 2)


class _DilatedScaleConv(nn.Module):
    """Scale convolution of DSS (the reference's ``Dconv2d``) on ``ndim`` spatial axes.

    x: [B, C_in, S_in, *space] -> [B, C_out, S_out, *space']. Output scale s sees input scales
    s .. s + K_S - 1 (fewer where s + i reaches S_out) through one kernel
    ``weight[C_out, C_in, K_S, k(, k)]`` dilated by int(base^s). ``padding`` is in taps at
    dilation 1 and is multiplied by each scale's dilation; None means ``kernel_size // 2``
    ("same" at stride 1). ``n_scales_out`` None means S_in.
    ``init``: "he" draws N(0, 2 / (k^ndim K_S C_in)); "delta" (the sesn STL models) draws
    U(+-0.01) and sets the centre tap of input scale s, for the channel pairs that
    Yu & Koltun's identity initialisation matches, to gcd(C_in, C_out) / C_out.
    """

    ndim: int  # spatial axes, fixed by the subclasses

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        n_scales_in: int,
        n_scales_out: int | None = None,
        scale_size: int = 1,
        base: float = 2.0,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = False,
        init: Literal["he", "delta"] = "he",
    ) -> None:
        super().__init__()
        n_scales_out = n_scales_in if n_scales_out is None else n_scales_out
        if not 1 <= n_scales_out <= n_scales_in:
            raise ValueError(f"n_scales_out must be in 1..{n_scales_in}, got {n_scales_out}")
        if scale_size < 1:
            raise ValueError(f"scale_size must be >= 1, got {scale_size}")
        if init not in ("he", "delta"):
            raise ValueError(f"init must be 'he' or 'delta', got {init!r}")
        self.n_scales_in = n_scales_in
        self.n_scales_out = n_scales_out
        self.dilations = [int(base**s) for s in range(n_scales_out)]
        self.stride = stride
        self.padding = kernel_size // 2 if padding is None else padding
        shape = (out_channels, in_channels, scale_size) + (kernel_size,) * self.ndim
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        if init == "he":
            fan_in = kernel_size**self.ndim * scale_size * in_channels
            nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / fan_in))
        else:
            self._init_delta()

    @torch.no_grad()
    def _init_delta(self) -> None:
        c_out, c_in = self.weight.shape[:2]
        self.weight.uniform_(-0.01, 0.01)
        common = math.gcd(c_in, c_out)
        # Yu & Koltun: output o and input i match when they fall in the same of `common` groups
        match = (torch.arange(c_out)[:, None] * common // c_out) == (
            torch.arange(c_in)[None, :] * common // c_in
        )
        centre = (0,) + (self.weight.shape[-1] // 2,) * self.ndim
        taps = self.weight[(slice(None), slice(None)) + centre]
        taps[match] = common / c_out

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != self.ndim + 3 or x.shape[2] != self.n_scales_in:
            space = "H, W" if self.ndim == 2 else "L"
            raise ValueError(
                f"expected x of shape [B, C, {self.n_scales_in}, {space}], got {tuple(x.shape)}"
            )
        conv = F.conv2d if self.ndim == 2 else F.conv1d
        outputs = []
        for s, dilation in enumerate(self.dilations):
            taps = min(self.weight.shape[2], self.n_scales_out - s)
            inputs = x[:, :, s : s + taps].flatten(1, 2)
            weight = self.weight[:, :, :taps].flatten(1, 2)
            outputs.append(
                conv(inputs, weight, self.bias, self.stride, dilation * self.padding, dilation)
            )
        return torch.stack(outputs, 2)


class DilatedScaleConv2d(_DilatedScaleConv):
    """DSS scale conv on images: x [B, C_in, S_in, H, W] -> [B, C_out, S_out, H', W']
    (arguments: ``_DilatedScaleConv``)."""

    ndim = 2


class DilatedScaleConv1d(_DilatedScaleConv):
    """DSS scale conv on sequences: x [B, C_in, S_in, L] -> [B, C_out, S_out, L']
    (arguments: ``_DilatedScaleConv``)."""

    ndim = 1


class ScaleMax(nn.Module):
    """Max over the scale axis: x [B, C, S, *space] -> [B, C, *space]."""

    def forward(self, x: Tensor) -> Tensor:
        return x.amax(2)


class _VectorBlock(nn.Sequential):
    """[lift ->] scale conv -> ReLU -> MaxPool3d(1, p, p) -> BN3d: [B, C, S, H, W] in and out
    ([B, C, H, W] in when it lifts)."""

    def __init__(self, conv: nn.Module, channels: int, layer: int, lift: nn.Module | None) -> None:
        pool, pad = MNIST_POOLS[layer]
        layers = [] if lift is None else [lift]
        layers += [
            conv,
            nn.ReLU(),
            nn.MaxPool3d((1, pool, pool), padding=(0, pad, pad)),
            nn.BatchNorm3d(channels),
        ]
        super().__init__(*layers)


def _create_dss(
    width: float,
    vector: bool,
    n_scales: int,
    base: float,
    zero_scale: float,
    kernel_size: int,
    **backbone,
) -> CanvasNet:
    """``backbone``: keyword arguments of ``build_canvas_net`` (channels, hidden, ...)."""

    def make_conv(i: int, c_in: int, c_out: int) -> nn.Module:
        return DilatedScaleConv2d(c_in, c_out, kernel_size, n_scales, base=base)

    def lift() -> GaussianScaleLift:
        return GaussianScaleLift(n_scales, base, zero_scale)

    if vector:

        def make_block(i: int, c_in: int, c_out: int) -> nn.Module:
            return _VectorBlock(make_conv(i, c_in, c_out), c_out, i, lift() if i == 0 else None)

        return build_canvas_net(make_block, "dss_vector", width, project=ScaleMax(), **backbone)

    def make_scalar_conv(i: int, c_in: int, c_out: int) -> nn.Module:
        return nn.Sequential(lift(), make_conv(i, c_in, c_out), ScaleMax())

    return build_canvas_net(conv_blocks(make_scalar_conv), "dss_scalar", width, **backbone)


_MNIST_ARGS = {"n_scales": 2, "base": 2.0, "zero_scale": 0.25, "kernel_size": 7}


def mnist_dss_vector(width: float = 1.0, **kwargs) -> CanvasNet:
    """DSS keeping the scale axis through the network (494,359 parameters at width 1);
    ``features`` fold the scales into channels: [B, C * S, H, W]."""
    return _create_dss(width, vector=True, **{**_MNIST_ARGS, **kwargs})


def mnist_dss_scalar(width: float = 1.0, **kwargs) -> CanvasNet:
    """DSS with a lift and a max over scales in every layer (494,359 parameters at width 1)."""
    return _create_dss(width, vector=False, **{**_MNIST_ARGS, **kwargs})
