"""SiCNN: scale-invariant CNN with weight-shared columns, one per scale.

Reference: Xu, Xiao, Zhang, Yang & Zhang, "Scale-Invariant Convolutional Neural Network for
Object Recognition", arXiv:1411.6369, 2014; as re-implemented in ISosnovik/sesn
(``XU_SIConv2d``, ``mnist_xu.py``), restated in specs/baselines.md section 2.

One base kernel W (k x k) is zero-padded to a canvas of ``int(k * max(scales))`` points
(rounded up to keep W centred) and, for every scale s, resized by s (nearest for s > 1,
bilinear with align_corners=True for s <= 1) and centre-cropped or zero-padded back to the
canvas (``rescale4d``: an odd crop surplus goes from the start, as in the reference); each
resized kernel is rescaled so that its L1 norm per (out, in) pair equals that of W. The first layer maps the input to S columns of C_out channels (scale-major); later layers
convolve column s with the kernel of scale s only (``groups = S``), so the columns share one
kernel. 1x1 kernels are not resized. BN runs over all C * S channels (not shared across
columns) and the max over the columns is taken once, before the head.

MNIST: k = 7, scales 0.3 .. 3.33 (7 scales), canvas 23, padding 11, no conv bias:
496,639 parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.cnn import CanvasNet, build_canvas_net, conv_blocks
from baselines.rescale import center_fit, check_scales, rescale4d

__all__ = ["ColumnMax", "ScaleColumnConv2d", "kernel_canvas", "mnist_sicnn"]

MNIST_SCALES = (0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33)
L1_EPS = 1e-12  # a resized kernel can vanish only if W does; the eps keeps that case finite


def kernel_canvas(kernel_size: int, max_scale: float) -> int:
    """Side of the canvas the base kernel is resized on: ``int(k * max_scale)``, grown by one
    when needed so that the k x k kernel sits centred (odd k, odd canvas)."""
    margin = max(0, int(kernel_size * max_scale) - kernel_size)
    return kernel_size + 2 * math.ceil(margin / 2)


class ScaleColumnConv2d(nn.Module):
    """One kernel, resized per scale, applied in S weight-shared columns.

    lift=True:  x [B, C_in, H, W]     -> [B, S * C_out, H', W']
    lift=False: x [B, S * C_in, H, W] -> [B, S * C_out, H', W'] (column s sees only column s)
    Channels are scale-major: channel ``s * C_out + c`` is channel c of column s.
    ``padding`` None means half the kernel canvas ("same" at stride 1). A bias, if any, is one
    per output channel, shared by the columns.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        scales: Sequence[float] = MNIST_SCALES,
        lift: bool = False,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.scales = check_scales(scales)
        self.lift = lift
        self.stride = stride
        self.canvas = 1 if kernel_size == 1 else kernel_canvas(kernel_size, max(self.scales))
        self.padding = self.canvas // 2 if padding is None else padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default

    def kernels(self) -> Tensor:
        """The resized kernels, one per scale: [S, C_out, C_in, K, K] (K: the kernel canvas)."""
        if self.canvas == 1:
            return self.weight.expand(len(self.scales), *self.weight.shape)
        padded = center_fit(self.weight, (self.canvas, self.canvas))
        reference = padded.abs().sum((-2, -1), keepdim=True)
        kernels = []
        for s in self.scales:
            resized = rescale4d(padded, s, "nearest" if s > 1 else "bilinear")
            norm = resized.abs().sum((-2, -1), keepdim=True).clamp_min(L1_EPS)
            kernels.append(resized * (reference / norm))
        return torch.stack(kernels)

    def forward(self, x: Tensor) -> Tensor:
        n_scales = len(self.scales)
        bank = self.kernels().flatten(0, 1)
        groups = 1 if self.lift else n_scales
        bias = None if self.bias is None else self.bias.repeat(n_scales)
        return F.conv2d(x, bank, bias, self.stride, self.padding, groups=groups)


class ColumnMax(nn.Module):
    """Max over the scale columns: x [B, S * C, H, W] (scale-major) -> [B, C, H, W]."""

    def __init__(self, n_scales: int) -> None:
        super().__init__()
        self.n_scales = n_scales

    def forward(self, x: Tensor) -> Tensor:
        b, channels, h, w = x.shape
        return x.view(b, self.n_scales, channels // self.n_scales, h, w).amax(1)


def _create_sicnn(width: float, scales: Sequence[float], kernel_size: int, **backbone) -> CanvasNet:
    """``backbone``: keyword arguments of ``build_canvas_net`` (channels, hidden, ...)."""

    def make_conv(i: int, c_in: int, c_out: int) -> nn.Module:
        return ScaleColumnConv2d(c_in, c_out, kernel_size, scales, lift=i == 0)

    n_scales = len(scales)
    blocks = conv_blocks(make_conv, norm_multiplier=n_scales)
    return build_canvas_net(blocks, "sicnn", width, project=ColumnMax(n_scales), **backbone)


def mnist_sicnn(width: float = 1.0, **kwargs) -> CanvasNet:
    """SiCNN on the 28x28 MNIST-scale canvas (496,639 parameters at width 1). ``features``
    are the columns, scale-major: [B, S * C, H, W]."""
    model_args = {"scales": MNIST_SCALES, "kernel_size": 7}
    return _create_sicnn(width, **{**model_args, **kwargs})
