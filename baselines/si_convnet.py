"""SI-ConvNet: locally scale-invariant convolution by rescaling the input.

Reference: Kanazawa, Sharma & Jacobs, "Locally Scale-Invariant Convolutional Neural Networks",
NIPS Deep Learning Workshop 2014; as re-implemented in ISosnovik/sesn
(``Kanazawa_SIConv2d``, ``mnist_kanazawa.py``), restated in specs/baselines.md section 3.

For every scale s the layer rescales its input by s on the fixed canvas (bilinear,
align_corners=True, centred crop or zero-pad; ``rescale4d`` takes an odd crop surplus from
the start, as the reference does), applies one shared convolution, rescales the response
by 1/s back to the convolution's output canvas and takes the pointwise max over the scales. No scale axis is kept. The MNIST model is the CNN of section 0.4 with every conv
replaced (7x7, pad 3, bias, scales 0.3 .. 3.33): 494,549 parameters, the CNN's count.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from baselines.cnn import CanvasNet, build_canvas_net, conv_blocks
from baselines.rescale import check_scales, rescale4d

__all__ = ["SIConv2d", "mnist_si_convnet"]

MNIST_SCALES = (0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33)


class SIConv2d(nn.Module):
    """Kanazawa's scale-invariant convolution.

    x: [B, C_in, H, W] -> [B, C_out, H', W'] with H' the plain convolution's output size.
    ``padding`` None means ``kernel_size // 2`` ("same" at stride 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        scales: Sequence[float] = MNIST_SCALES,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self.scales = check_scales(scales)

    def forward(self, x: Tensor) -> Tensor:
        responses = []
        for s in self.scales:
            y = self.conv(rescale4d(x, s))
            responses.append(rescale4d(y, 1.0 / s))
        return torch.stack(responses).amax(0)


def _create_si_convnet(
    width: float, scales: Sequence[float], kernel_size: int, **backbone
) -> CanvasNet:
    """``backbone``: keyword arguments of ``build_canvas_net`` (channels, hidden, ...)."""

    def make_conv(i: int, c_in: int, c_out: int) -> nn.Module:
        return SIConv2d(c_in, c_out, kernel_size, scales)

    return build_canvas_net(conv_blocks(make_conv), "si_convnet", width, **backbone)


def mnist_si_convnet(width: float = 1.0, **kwargs) -> CanvasNet:
    """SI-ConvNet on the 28x28 MNIST-scale canvas (494,549 parameters at width 1)."""
    model_args = {"scales": MNIST_SCALES, "kernel_size": 7}
    return _create_si_convnet(width, **{**model_args, **kwargs})
