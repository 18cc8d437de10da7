"""SEVF: scale-equivariant vector fields.

Reference: Marcos, Kellenberger, Lobry & Tuia, "Scale equivariance in CNNs with vector fields",
ICML/FAIM workshop 2018, arXiv:1807.11783; as re-implemented in ISosnovik/sesn
(``se_vector_fields.py``, ``mnist_sevf.py``), restated in specs/baselines.md section 4.

Scales 1.26^l for l = -4..3 and one angle per scale, theta_l = l (2 pi / 3) / 7. A scale conv
resizes the whole map to round(H s) (bilinear, align_corners=False; not a fixed canvas),
convolves, and resizes the response back to the plain convolution's output size. The layer
keeps the max response over scales v and its argmax l*, and outputs the vector field
ReLU(v) (cos theta_l*, sin theta_l*). A vector layer convolves the two components with a pair
of kernels rotated by theta_l per scale. Vector max-pooling keeps the vector of largest
magnitude; vector batch norm divides by the standard deviation of the magnitude (no centring).

Vector fields are tensors [B, C, 2, H, W] (u, v on axis 2). Two deviations from the reference,
both without effect on the function: the FC layer before the head's BN has no bias (the BN
removes it; we reuse ``MnistHead``), and vector BN has no gamma (the reference creates one
and never uses it, so it could receive no gradient). Parameters: scalar 494,169 (reference
494,425), vector 475,151 (reference 475,475).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.cnn import MNIST_POOLS, CanvasNet, build_canvas_net, conv_blocks

__all__ = [
    "Magnitude",
    "ScaleConvScalar",
    "ScaleConvVector",
    "VectorBatchNorm",
    "VectorMaxPool",
    "conv_scale",
    "mnist_sevf_scalar",
    "mnist_sevf_vector",
    "sevf_scales",
]


def sevf_scales(
    n_scales: int = 8, ratio: float = 1.26, lowest: int = -4, angle_span: float = 2 * math.pi / 3
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(scales, angles): ratio^l and l * angle_span / (n_scales - 1) for l = lowest, lowest + 1,
    ... (n_scales values)."""
    if n_scales < 2:
        raise ValueError(f"n_scales must be >= 2, got {n_scales}")
    levels = [lowest + i for i in range(n_scales)]
    scales = tuple(ratio**level for level in levels)
    angles = tuple(level * angle_span / (n_scales - 1) for level in levels)
    return scales, angles


def conv_scale(
    x: Tensor, weight: Tensor, scale: float, stride: int = 1, padding: int = 0
) -> Tensor:
    """Convolve x at ``scale``: x [B, C_in, H, W] -> [B, C_out, H', W'] with
    H' = (H + 1 + 2 padding - k) // stride, the reference's output size."""
    h, w = x.shape[-2:]
    k = weight.shape[-1]
    resized = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = F.interpolate(x, size=resized, mode="bilinear", align_corners=False)
    y = F.conv2d(x, weight, None, stride, padding)
    out = ((h + 1 + 2 * padding - k) // stride, (w + 1 + 2 * padding - k) // stride)
    return F.interpolate(y, size=out, mode="bilinear", align_corners=False)


def _to_field(responses: Tensor, angles: Tensor) -> Tensor:
    """responses [L, B, C, H, W] -> field [B, C, 2, H, W]: ReLU(max) at the argmax's angle."""
    values, index = responses.max(0)
    magnitude = F.relu(values)
    theta = angles.to(values.dtype)[index]
    return torch.stack((magnitude * torch.cos(theta), magnitude * torch.sin(theta)), 2)


class _ScaleConv(nn.Module):
    """Shared parts of the scalar and vector scale convs: the scales, their angles and the
    max over scales. Subclasses give ``responses(x) -> [L, B, C_out, H', W']``.

    ``scales`` / ``angles`` None mean ``sevf_scales()``; ``padding`` None means
    ``kernel_size // 2``.
    """

    def __init__(
        self,
        kernel_size: int,
        scales: Sequence[float] | None,
        angles: Sequence[float] | None,
        stride: int,
        padding: int | None,
    ) -> None:
        super().__init__()
        default_scales, default_angles = sevf_scales()
        scales = default_scales if scales is None else scales
        angles = default_angles if angles is None else angles
        if len(scales) != len(angles) or not scales or min(scales) <= 0:
            raise ValueError(
                f"scales must be positive and match angles one to one, got {scales} and {angles}"
            )
        self.scales = tuple(float(s) for s in scales)
        self.register_buffer("angles", torch.tensor(angles, dtype=torch.float32), persistent=False)
        self.stride = stride
        self.padding = kernel_size // 2 if padding is None else padding

    def responses(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return _to_field(self.responses(x), self.angles)


def _kernel(out_channels: int, in_channels: int, kernel_size: int) -> nn.Parameter:
    weight = torch.empty(out_channels, in_channels, kernel_size, kernel_size)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))  # nn.Conv2d's default
    return nn.Parameter(weight)


class ScaleConvScalar(_ScaleConv):
    """Scale conv on a scalar map: x [B, C_in, H, W] -> field [B, C_out, 2, H', W'], or
    with ``output="max"`` the max response over scales [B, C_out, H', W'] (before ReLU)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        scales: Sequence[float] | None = None,
        angles: Sequence[float] | None = None,
        stride: int = 1,
        padding: int | None = None,
        output: Literal["field", "max"] = "field",
    ) -> None:
        super().__init__(kernel_size, scales, angles, stride, padding)
        if output not in ("field", "max"):
            raise ValueError(f"output must be 'field' or 'max', got {output!r}")
        self.output = output
        self.weight = _kernel(out_channels, in_channels, kernel_size)

    def responses(self, x: Tensor) -> Tensor:
        return torch.stack(
            [conv_scale(x, self.weight, s, self.stride, self.padding) for s in self.scales]
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.output == "max":
            return self.responses(x).amax(0)
        return super().forward(x)


class ScaleConvVector(_ScaleConv):
    """Scale conv on a vector field: field [B, C_in, 2, H, W] -> field [B, C_out, 2, H', W'].

    At scale l the kernel pair (W_u, W_v) is rotated by theta_l and the response is
    conv_scale(u, W_u') + conv_scale(v, W_v').
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        scales: Sequence[float] | None = None,
        angles: Sequence[float] | None = None,
        stride: int = 1,
        padding: int | None = None,
    ) -> None:
        super().__init__(kernel_size, scales, angles, stride, padding)
        self.weight_u = _kernel(out_channels, in_channels, kernel_size)
        self.weight_v = _kernel(out_channels, in_channels, kernel_size)

    def responses(self, field: Tensor) -> Tensor:
        # u and v side by side in channels: one conv computes conv(u, W_u') + conv(v, W_v').
        x = field.transpose(1, 2).flatten(1, 2)
        out = []
        for s, theta in zip(self.scales, self.angles.tolist()):
            c, si = math.cos(theta), math.sin(theta)
            w_u = self.weight_u * c + self.weight_v * si
            w_v = -self.weight_u * si + self.weight_v * c
            out.append(conv_scale(x, torch.cat((w_u, w_v), 1), s, self.stride, self.padding))
        return torch.stack(out)


class VectorMaxPool(nn.Module):
    """Max-pool by magnitude: field [B, C, 2, H, W] -> [B, C, 2, H', W'], keeping in every
    window the vector of largest magnitude."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, field: Tensor) -> Tensor:
        b, c = field.shape[:2]
        _, index = F.max_pool2d(
            field.pow(2).sum(2), self.kernel_size, self.stride, self.padding, return_indices=True
        )
        out_hw = index.shape[-2:]
        index = index.flatten(2).unsqueeze(2).expand(-1, -1, 2, -1)
        return field.flatten(3).gather(3, index).view(b, c, 2, *out_hw)


class Magnitude(nn.Module):
    """field [B, C, 2, H, W] -> [B, C, H, W]: the length of every vector (gradient 0 at 0)."""

    def forward(self, field: Tensor) -> Tensor:
        return torch.linalg.vector_norm(field, dim=2)


class VectorBatchNorm(nn.Module):
    """Divide a field [B, C, 2, H, W] per channel by sqrt(var(|field|) + eps), no centring.

    Training uses the batch variance (over batch and space) and updates the running variance
    with ``momentum`` and the unbiased correction n / (n - 1); eval uses the running variance.
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.5) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, field: Tensor) -> Tensor:
        if self.training:
            magnitude = torch.linalg.vector_norm(field, dim=2)
            var = magnitude.var(dim=(0, 2, 3), unbiased=False)
            n = magnitude.numel() // magnitude.shape[1]
            with torch.no_grad():
                unbiased = var * (n / max(n - 1, 1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
        else:
            var = self.running_var.to(field.dtype)
        return field / torch.sqrt(var + self.eps).view(1, -1, 1, 1, 1)


def _create_sevf_scalar(width: float, kernel_size: int, **backbone) -> CanvasNet:
    """``backbone``: keyword arguments of ``build_canvas_net`` (channels, hidden, ...)."""

    def make_conv(i: int, c_in: int, c_out: int) -> nn.Module:
        return ScaleConvScalar(c_in, c_out, kernel_size, output="max")

    blocks = conv_blocks(make_conv, last_norm=False)
    return build_canvas_net(blocks, "sevf_scalar", width, **backbone)


def _create_sevf_vector(width: float, kernel_size: int, **backbone) -> CanvasNet:
    """``backbone``: keyword arguments of ``build_canvas_net`` (channels, hidden, ...)."""

    def make_block(i: int, c_in: int, c_out: int) -> nn.Module:
        conv = (
            ScaleConvScalar(c_in, c_out, kernel_size)
            if i == 0
            else ScaleConvVector(c_in, c_out, kernel_size)
        )
        pool, pad = MNIST_POOLS[i]
        layers = [conv, VectorMaxPool(pool, padding=pad)]
        if i < len(MNIST_POOLS) - 1:
            layers.append(VectorBatchNorm(c_out))
        return nn.Sequential(*layers)

    return build_canvas_net(make_block, "sevf_vector", width, project=Magnitude(), **backbone)


def mnist_sevf_scalar(width: float = 1.0, **kwargs) -> CanvasNet:
    """SEVF, scalar variant, on the 28x28 canvas (494,169 parameters at width 1)."""
    return _create_sevf_scalar(width, **{"kernel_size": 7, **kwargs})


def mnist_sevf_vector(width: float = 1.0, **kwargs) -> CanvasNet:
    """SEVF, vector variant (channels 23/45/68), on the 28x28 canvas (475,151 parameters at
    width 1). ``features`` fold (u, v) into channels: [B, 2 C, H, W]."""
    return _create_sevf_vector(width, **{"kernel_size": 7, "channels": (23, 45, 68), **kwargs})
