"""SESN: scale-equivariant steerable convolutions and the MNIST-scale SESN models.

Reference: Sosnovik, Szmaja & Smeulders, "Scale-Equivariant Steerable Networks", ICLR 2020
(ISosnovik/sesn ``models/impl/ses_conv.py``, ``models/mnist_ses.py``), restated in
specs/baselines.md sections 1.2-1.3.

A steerable layer owns weights over the F functions of a fixed basis ``[F, S, k, k]``
(``baselines.hermite`` or ``baselines.disco``); its kernel at scale s is the weighted sum of
the basis at scale s. Features on the scale-translation group ("H") are ``[B, C, S, H, W]``.

* ``SESConvZ2H``: [B, C, H, W] -> [B, C', S, H', W'], one kernel per scale.
* ``SESConvHH``: [B, C, S, H, W] -> [B, C', S, H', W']; output scale s sums input scales
  s .. s + scale_size - 1 (zero beyond the last scale), always with the basis at scale s.
* ``SESConv1x1HH``: a 1x1 conv shared by every scale (no scale mixing).
* ``ScaleMaxProjection``: max over the scale axis.

MNIST models (28x28 canvas, channels 32/63/95, E = 7, basis B with max_order 4, the head of
specs section 0.4; 494,549 parameters in every configuration):

* scalar: 3 x [Z2->H -> max over scales -> ReLU -> MaxPool2d -> BN2d];
* vector: Z2->H and two H->H (scale_size 1), each -> ReLU -> MaxPool3d(1, 2, 2) -> BN3d, except
  the last, which takes the max over scales before ReLU -> MaxPool2d(4, pad 2) -> BN2d.

Configurations (``SESN_CONFIGS``; "28p" was tuned for the "+" setting): scales are
``round(sigma_min * q^i, 2)`` for i < N with ``q = factor^(1 / (N - 1))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.cnn import MNIST_POOLS, BlockFactory, CanvasNet, build_canvas_net, conv_blocks
from baselines.fft_conv import conv2d
from baselines.hermite import BasisKind, hermite_basis, normalize_by_min_scale

__all__ = [
    "SESN_CONFIGS",
    "HBlock",
    "SESConv1x1HH",
    "SESConvHH",
    "SESConvZ2H",
    "ScaleMaxProjection",
    "SesnConfig",
    "geometric_scales",
    "mnist_sesn_scalar",
    "mnist_sesn_scalar_p",
    "mnist_sesn_vector",
    "mnist_sesn_vector_p",
    "vector_blocks",
]

Layout = Literal["scalar", "vector"]
Config = Literal["28", "28p"]


def _check_basis(basis: Tensor) -> None:
    if basis.dim() != 4 or basis.shape[-1] != basis.shape[-2]:
        raise ValueError(f"basis must be [F, S, k, k], got shape {tuple(basis.shape)}")


class _SteerableConv(nn.Module):
    """Weights ``[*weight_shape, F]`` over the functions of a fixed basis [F, S, k, k]."""

    def __init__(
        self,
        basis: Tensor,
        weight_shape: tuple[int, ...],
        stride: int,
        padding: int | None,
        bias: bool,
    ) -> None:
        super().__init__()
        _check_basis(basis)
        self.register_buffer("basis", basis.detach().clone().float())
        self.num_funcs, self.num_scales, self.kernel_size = basis.shape[:3]
        self.stride = stride
        self.padding = self.kernel_size // 2 if padding is None else padding
        self.weight = nn.Parameter(torch.empty(*weight_shape, self.num_funcs))
        self.bias = nn.Parameter(torch.zeros(weight_shape[0])) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def _add_bias(self, y: Tensor) -> Tensor:
        """y [B, C_out, S, H, W] plus the bias of each output channel."""
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1, 1)


class SESConvZ2H(_SteerableConv):
    """Lifting steerable conv: x [B, C_in, H, W] -> [B, C_out, S, H', W'].

    weight [C_out, C_in, F]; kernel_s = sum_f weight[..., f] * basis[f, s]; all S kernels run
    as one conv2d. ``padding`` None is "same" (k // 2).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        basis: Tensor,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__(basis, (out_channels, in_channels), stride, padding, bias)

    def kernels(self) -> Tensor:
        """[C_out, S, C_in, k, k]: the kernel of every scale."""
        return torch.einsum("oif,fsuv->osiuv", self.weight, self.basis)

    def forward(self, x: Tensor) -> Tensor:
        y = F.conv2d(x, self.kernels().flatten(0, 1), stride=self.stride, padding=self.padding)
        return self._add_bias(y.unflatten(1, (-1, self.num_scales)))


def _per_scale_conv(x: Tensor, kernel: Tensor, stride: int, padding: int) -> Tensor:
    """x [B, C_in, S, H, W], kernel [S, C_out, C_in, k, k] -> [B, C_out, S, H', W']:
    scale s convolved with its own kernel (grouped conv, groups = S; through the FFT for large
    kernels, where a CPU's grouped direct convolution and its backward are slowest)."""
    num_scales, out_channels = kernel.shape[:2]
    y = conv2d(
        x.transpose(1, 2).flatten(1, 2),
        kernel.flatten(0, 1),
        stride=stride,
        padding=padding,
        groups=num_scales,
    )
    return y.unflatten(1, (num_scales, out_channels)).transpose(1, 2)


class SESConvHH(_SteerableConv):
    """Group steerable conv: x [B, C_in, S, H, W] -> [B, C_out, S, H', W'].

    weight [C_out, C_in, scale_size, F]. Output scale s sums, for i < scale_size, the input at
    scale s + i (zero past the last scale) convolved with the kernel of basis scale s.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        basis: Tensor,
        scale_size: int = 1,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
    ) -> None:
        if scale_size < 1:
            raise ValueError(f"scale_size must be >= 1, got {scale_size}")
        super().__init__(basis, (out_channels, in_channels, scale_size), stride, padding, bias)
        self.scale_size = scale_size

    def kernels(self) -> Tensor:
        """[scale_size, S, C_out, C_in, k, k]: the kernel applied to input scale s + i."""
        return torch.einsum("oijf,fsuv->jsoiuv", self.weight, self.basis)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or x.shape[2] != self.num_scales:
            raise ValueError(
                f"SESConvHH expects x [B, C, {self.num_scales}, H, W], got {tuple(x.shape)}"
            )
        kernels = self.kernels()
        # zero scales past the last one, so output scale s sees s .. s + scale_size - 1
        x = F.pad(x, (0, 0, 0, 0, 0, self.scale_size - 1))
        y = sum(
            _per_scale_conv(x[:, :, i : i + self.num_scales], kernels[i], self.stride, self.padding)
            for i in range(self.scale_size)
        )
        return self._add_bias(y)


class SESConv1x1HH(nn.Module):
    """1x1 conv shared by every scale: x [B, C_in, S, H, W] -> [B, C_out, S, H', W']."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, bias: bool = False
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, 1, stride=(1, stride, stride), bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class ScaleMaxProjection(nn.Module):
    """Max over the scale axis: x [B, C, S, H, W] -> [B, C, H, W]."""

    def forward(self, x: Tensor) -> Tensor:
        return x.amax(2)


class HBlock(nn.Sequential):
    """conv -> ReLU -> pool over space (1, 2, 2) -> BN3d, on H features.

    x: [B, C_in, (S,) H, W] -> [B, channels, S, H / 2, W / 2]; ``pool`` "max" (SESN) or
    "avg" (DISCO). BN3d shares its statistics over scales.
    """

    def __init__(self, conv: nn.Module, channels: int, pool: Literal["max", "avg"] = "max") -> None:
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        pool_cls = nn.MaxPool3d if pool == "max" else nn.AvgPool3d
        super().__init__(conv, nn.ReLU(), pool_cls((1, 2, 2)), nn.BatchNorm3d(channels))


@dataclass(frozen=True)
class SesnConfig:
    """One row of the spec's SESN table: N scales from sigma_min growing by ``factor`` in
    all, kernel size k and the basis-B width ratio ``mult``."""

    num_scales: int
    min_scale: float
    factor: float
    kernel_size: int
    mult: float


SESN_CONFIGS: dict[tuple[Layout, Config], SesnConfig] = {
    ("scalar", "28"): SesnConfig(4, 1.7, 3.0, 15, 1.5),
    ("vector", "28"): SesnConfig(3, 1.5, 3.0, 13, 1.5),
    ("scalar", "28p"): SesnConfig(4, 1.5, 3.0, 13, 1.4),
    ("vector", "28p"): SesnConfig(3, 1.5, 3.0, 15, 1.4),
}


def geometric_scales(num_scales: int, min_scale: float, factor: float) -> list[float]:
    """``round(min_scale * q^i, 2)`` for i < num_scales, q = factor^(1 / (num_scales - 1))."""
    if num_scales < 1:
        raise ValueError(f"num_scales must be >= 1, got {num_scales}")
    if num_scales == 1:
        return [round(min_scale, 2)]
    q = factor ** (1 / (num_scales - 1))
    return [round(min_scale * q**i, 2) for i in range(num_scales)]


def vector_blocks(
    basis: Tensor,
    pool: Literal["max", "avg"] = "max",
    stem: nn.Module | None = None,
    final_pool: nn.Module | None = None,
) -> BlockFactory:
    """The blocks of the vector SESN layout (also DISCO's), for ``build_canvas_net``:

        0: [stem ->] Z2->H -> ReLU -> pool(1, 2, 2) -> BN3d
        1: H->H -> ReLU -> pool(1, 2, 2) -> BN3d
        2: H->H -> max over scales -> ReLU -> final_pool -> BN2d

    ``final_pool`` None is MaxPool2d(4, padding 2) (28 -> 14 -> 7 -> 2); it must leave a 2x2 map.
    """
    if final_pool is None:
        pool_size, pool_padding = MNIST_POOLS[-1]
        final_pool = nn.MaxPool2d(pool_size, padding=pool_padding)

    def make_block(i: int, c_in: int, c_out: int) -> nn.Module:
        if i == 0:
            lift = SESConvZ2H(c_in, c_out, basis)
            return HBlock(lift if stem is None else nn.Sequential(stem, lift), c_out, pool)
        if i < len(MNIST_POOLS) - 1:
            return HBlock(SESConvHH(c_in, c_out, basis), c_out, pool)
        return nn.Sequential(
            SESConvHH(c_in, c_out, basis),
            ScaleMaxProjection(),
            nn.ReLU(),
            final_pool,
            nn.BatchNorm2d(c_out),
        )

    return make_block


def _create_sesn(
    width: float,
    layout: Layout,
    config: Config = "28",
    scales: Sequence[float] | None = None,
    kernel_size: int | None = None,
    mult: float | None = None,
    basis_kind: BasisKind = "B",
    effective_size: int = 7,
    max_order: int = 4,
    **backbone,
) -> CanvasNet:
    """SESN on the MNIST canvas. ``config`` picks a row of ``SESN_CONFIGS``; ``scales``,
    ``kernel_size`` and ``mult`` override it. ``backbone``: keyword arguments of
    ``build_canvas_net`` (channels, hidden, dropout, num_classes, in_channels)."""
    if layout not in ("scalar", "vector"):
        raise ValueError(f"layout must be 'scalar' or 'vector', got {layout!r}")
    if (layout, config) not in SESN_CONFIGS:
        raise ValueError(f"config must be '28' or '28p', got {config!r}")
    cfg = SESN_CONFIGS[(layout, config)]
    scales = (
        geometric_scales(cfg.num_scales, cfg.min_scale, cfg.factor) if scales is None else scales
    )
    kernel_size = cfg.kernel_size if kernel_size is None else kernel_size
    mult = cfg.mult if mult is None else mult
    raw = hermite_basis(basis_kind, kernel_size, scales, effective_size, mult, max_order)
    basis_tensor = normalize_by_min_scale(raw).float()
    if layout == "scalar":

        def make_conv(i: int, c_in: int, c_out: int) -> nn.Module:
            return nn.Sequential(SESConvZ2H(c_in, c_out, basis_tensor), ScaleMaxProjection())

        make_block = conv_blocks(make_conv)
    else:
        make_block = vector_blocks(basis_tensor)
    name = f"sesn_{layout}" + ("_p" if config == "28p" else "")
    return build_canvas_net(make_block, name, width, **backbone)


def mnist_sesn_scalar(width: float = 1.0, config: Config = "28", **kwargs) -> CanvasNet:
    """SESN scalar on the 28x28 canvas, configuration "28" or "28p" (494,549 parameters)."""
    return _create_sesn(width, "scalar", config, **kwargs)


def mnist_sesn_vector(width: float = 1.0, config: Config = "28", **kwargs) -> CanvasNet:
    """SESN vector on the 28x28 canvas, configuration "28" or "28p" (494,549 parameters)."""
    return _create_sesn(width, "vector", config, **kwargs)


def mnist_sesn_scalar_p(width: float = 1.0, **kwargs) -> CanvasNet:
    """SESN scalar, configuration "28p" (tuned for the "+" setting)."""
    return mnist_sesn_scalar(width, **{"config": "28p", **kwargs})


def mnist_sesn_vector_p(width: float = 1.0, **kwargs) -> CanvasNet:
    """SESN vector, configuration "28p" (tuned for the "+" setting)."""
    return mnist_sesn_vector(width, **{"config": "28p", **kwargs})
