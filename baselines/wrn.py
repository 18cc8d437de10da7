"""WRN-16-8: the STL-10 backbone of the SESN zoo, generic over its convolutions.

Reference: Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016, in the variant that
ISosnovik/sesn (``models/stl_wrn.py``, from xternalz/WideResNet-pytorch) trains on STL-10,
restated in specs/baselines.md section 0.5:

    stem: 3x3 conv 3 -> 16 (no bias)
    3 groups of 2 pre-activation blocks, channels 128 / 256 / 512, strides 1 / 2 / 2:
        BN -> ReLU -> conv 3x3 (stride) -> BN -> ReLU -> dropout 0.3 -> conv 3x3, plus the
        input, or a 1x1 conv of the block's BN-ReLU output where the shape changes
    end: BN -> ReLU -> global average pool -> FC 512 -> 10
    init: conv weights N(0, 2 / (k k C_out)) (fan-out), BN gamma 1 and beta 0, FC bias 0

10,961,370 parameters. The reference pools with ``avg_pool2d(24)``, which is global on its
96x96 images (96 -> 48 -> 24); we pool globally, so the network also takes the 97x97 canvas
of the STL-10-scale task (97 -> 49 -> 25) and any size of at least ``MIN_SIZE``.

Plugging in other convolutions (the scale-equivariant WRNs). ``build_wide_resnet`` takes a
``WideResNetLayers``:

* ``conv(site, c_in, c_out)``: every convolution - the stem, the two 3x3 convs of each block
  and the 1x1 shortcuts - told where it sits by a ``ConvSite`` (role, group, block, stride,
  kernel size). It may keep an extra scale axis ``[B, C, S, H, W]`` (e.g. a lifting stem,
  group convs after it), resize the scale axis, or return a ``nn.Sequential`` (a
  projection over scales followed by a re-lift, a stride-1 conv followed by a pool, ...).
* ``norm(channels)``: every BN of the blocks (``nn.BatchNorm3d`` for a scale axis whose
  statistics are shared, ``nn.BatchNorm2d(channels * S)`` for per-column statistics).
* ``end(channels)``: the last block's output -> ``[B, channels]`` for the FC: normalise,
  ReLU, pool over space and, where there is one, over scales, in the family's order.

Channels are those of the reference per family (``channels``), multiplied by ``width``.
``features(x)`` returns every block's output, a scale axis folded into channels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from baselines.cnn import widen
from baselines.common import check_input, fold_scales, run_blocks

__all__ = [
    "MIN_SIZE",
    "STL_CANVAS",
    "WRN_CHANNELS",
    "ConvSite",
    "PreActBlock",
    "WideResNet",
    "WideResNetLayers",
    "build_wide_resnet",
    "fan_out_normal_",
    "plain_end",
    "wrn_16_8",
]

WRN_CHANNELS = (16, 128, 256, 512)  # stem, then groups 1-3 (16 x widen factor 8)
STRIDES = (1, 2, 2)
STL_CANVAS = 97  # the STL-10-scale task's top resolution: canvas models see images padded to it
# Two stride-2 groups leave n / 4 points; SI-ConvNet halves that map again, so n / 8 >= 1.
MIN_SIZE = 8


@dataclass(frozen=True)
class ConvSite:
    """Where a convolution sits: ``role`` "stem", "conv1", "conv2" (the block's 3x3 convs) or
    "shortcut" (1x1); ``group`` 0 for the stem, else 1..3; ``block`` within the group."""

    role: Literal["stem", "conv1", "conv2", "shortcut"]
    group: int
    block: int
    stride: int
    kernel_size: int


ConvFactory = Callable[[ConvSite, int, int], nn.Module]
NormFactory = Callable[[int], nn.Module]
EndFactory = Callable[[int], nn.Module]


def plain_end(channels: int) -> nn.Module:
    """BN -> ReLU -> global average pool: [B, C, H, W] -> [B, C]."""
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


@dataclass(frozen=True)
class WideResNetLayers:
    """The layers a WRN family plugs into the backbone (module docstring)."""

    conv: ConvFactory
    norm: NormFactory = nn.BatchNorm2d
    end: EndFactory = plain_end


class PreActBlock(nn.Module):
    """The pre-activation BasicBlock of xternalz' WRN.

    x -> o = ReLU(norm1(x)); y = conv2(dropout(ReLU(norm2(conv1(o))))); out = y + shortcut(o),
    or y + x when ``shortcut`` is None (same shape). Any layout the convs keep, e.g.
    [B, C, H, W] or [B, C, S, H, W].
    """

    def __init__(
        self,
        norm1: nn.Module,
        conv1: nn.Module,
        norm2: nn.Module,
        conv2: nn.Module,
        shortcut: nn.Module | None,
        dropout: float,
    ) -> None:
        super().__init__()
        self.norm1, self.conv1, self.norm2, self.conv2 = norm1, conv1, norm2, conv2
        self.shortcut = shortcut
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        o = self.act(self.norm1(x))
        # the reference shares the BN-ReLU with the shortcut conv, but adds the raw input
        residual = x if self.shortcut is None else self.shortcut(o)
        y = self.conv2(self.dropout(self.act(self.norm2(self.conv1(o)))))
        return y + residual


class WideResNet(nn.Module):
    """stem -> blocks -> end -> FC.

    x: [B, in_channels, n, n] with n >= ``min_size`` -> logits [B, num_classes].
    ``features(x)``: every block's output, [B, C, n', n'] or [B, C * S, n', n'].
    """

    input_mode = "canvas"

    def __init__(
        self,
        stem: nn.Module,
        blocks: Sequence[nn.Module],
        end: nn.Module,
        fc: nn.Linear,
        name: str,
        in_channels: int = 3,
        min_size: int = MIN_SIZE,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.end = end
        self.fc = fc
        self.name = name
        self.in_channels = in_channels
        self.min_size = min_size

    def forward_blocks(self, x: Tensor) -> list[Tensor]:
        """The raw output of every block (a scale axis, if any, kept)."""
        check_input(x, self.in_channels, self.min_size, self.name)
        x = self.stem(x)
        return run_blocks(self.blocks, x)

    def features(self, x: Tensor) -> list[Tensor]:
        return [fold_scales(f) if f.dim() == 5 else f for f in self.forward_blocks(x)]

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(self.end(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_blocks(x)[-1])


def fan_out_normal_(weight: Tensor) -> Tensor:
    """The reference's conv init in place: N(0, 2 / n), n = C_out times the kernel's taps
    (weight [C_out, C_in, *kernel])."""
    n = weight.shape[0] * math.prod(weight.shape[2:])
    return nn.init.normal_(weight, 0.0, math.sqrt(2.0 / n))


def _init_reference(model: nn.Module) -> None:
    """Fan-out init of every ``nn.Conv2d`` (also inside a family's layers), BN gamma 1 and
    beta 0, FC bias 0. Other parametrisations keep their own init."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out_normal_(m.weight)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


def build_wide_resnet(
    layers: WideResNetLayers,
    name: str,
    width: float = 1.0,
    channels: Sequence[int] = WRN_CHANNELS,
    blocks_per_group: int = 2,
    dropout: float = 0.3,
    num_classes: int = 10,
    in_channels: int = 3,
    min_size: int = MIN_SIZE,
) -> WideResNet:
    """A WRN with the family's ``layers``; ``channels`` (stem, groups 1-3) times ``width``.

    WRN-16-8 is ``blocks_per_group=2`` (depth 6 n + 4 = 16) with the default channels. A block
    gets a shortcut conv where its channels or stride change.
    """
    if len(channels) != len(STRIDES) + 1:
        raise ValueError(f"channels must have {len(STRIDES) + 1} entries, got {tuple(channels)}")
    if blocks_per_group < 1:
        raise ValueError(f"blocks_per_group must be >= 1, got {blocks_per_group}")
    channels = widen(channels, width)
    stem = layers.conv(ConvSite("stem", 0, 0, 1, 3), in_channels, channels[0])
    blocks = []
    c_in = channels[0]
    for group, (c_out, group_stride) in enumerate(zip(channels[1:], STRIDES), start=1):
        for block in range(blocks_per_group):
            stride = group_stride if block == 0 else 1
            shortcut = None
            if c_in != c_out or stride != 1:
                shortcut = layers.conv(ConvSite("shortcut", group, block, stride, 1), c_in, c_out)
            blocks.append(
                PreActBlock(
                    layers.norm(c_in),
                    layers.conv(ConvSite("conv1", group, block, stride, 3), c_in, c_out),
                    layers.norm(c_out),
                    layers.conv(ConvSite("conv2", group, block, 1, 3), c_out, c_out),
                    shortcut,
                    dropout,
                )
            )
            c_in = c_out
    model = WideResNet(
        stem,
        blocks,
        layers.end(c_in),
        nn.Linear(c_in, num_classes),
        name,
        in_channels,
        min_size,
    )
    _init_reference(model)
    return model


def _plain_conv(site: ConvSite, c_in: int, c_out: int) -> nn.Module:
    k = site.kernel_size
    return nn.Conv2d(c_in, c_out, k, site.stride, padding=k // 2, bias=False)


def wrn_16_8(width: float = 1.0, **kwargs) -> WideResNet:
    """WRN-16-8 on the STL-10-scale canvas (10,961,370 parameters at width 1); ``kwargs``:
    keyword arguments of ``build_wide_resnet`` (channels, dropout, ...)."""
    return build_wide_resnet(WideResNetLayers(_plain_conv), "wrn_16_8", width, **kwargs)
