"""The plain CNN of the MNIST-scale zoo and the canvas backbone every MNIST baseline shares.

Reference: the "CNN" baseline of Sosnovik, Szmaja & Smeulders, "Scale-Equivariant Steerable
Networks", ICLR 2020 (ISosnovik/sesn ``models/mnist_cnn.py``), restated in
specs/baselines.md section 0.4:

    3 x [7x7 conv (32 / 63 / 95 channels, pad 3, bias) -> ReLU -> MaxPool -> BN]
    pools 2, 2 and (4, padding 2) take the 28x28 canvas to 14, 7 and 2
    head: flatten 95 * 2 * 2 = 380 -> Linear 256 (no bias) -> BN1d -> ReLU -> Dropout 0.7 -> 10

494,549 parameters. The scale-equivariant baselines (SiCNN, SI-ConvNet, SEVF, DSS) are this
network with every convolution replaced, so the backbone (``ConvBlock``, ``CanvasNet``,
``build_canvas_net``) lives here and the families plug their layers into it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from baselines.common import (
    BlockNet,
    MnistHead,
    before_final_pool,
    check_input,
    fold_scales,
    run_blocks,
)

__all__ = [
    "HIDDEN",
    "MNIST_CHANNELS",
    "MNIST_POOLS",
    "CanvasNet",
    "ConvBlock",
    "build_canvas_net",
    "conv_blocks",
    "mnist_cnn",
    "widen",
]

MNIST_CHANNELS = (32, 63, 95)
# (kernel, padding) of the max-pool of each layer on the 28x28 canvas: 28 -> 14 -> 7 -> 2.
MNIST_POOLS = ((2, 0), (2, 0), (4, 2))
MNIST_CANVAS = 28
FINAL_MAP = 2  # side of the last feature map, so the head sees channels[-1] * 2 * 2 features
HIDDEN = 256

# make_conv(layer index, in channels, out channels) -> a module [B, C_in, H, W] -> [B, C_out', H, W]
ConvFactory = Callable[[int, int, int], nn.Module]
# make_block(layer index, in channels, out channels) -> one block of the backbone
BlockFactory = Callable[[int, int, int], nn.Module]


def widen(channels: Sequence[int], width: float) -> tuple[int, ...]:
    """Channel counts times the width multiplier, rounded, at least 1 each."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    return tuple(max(1, round(c * width)) for c in channels)


class ConvBlock(nn.Sequential):
    """conv -> ReLU -> MaxPool -> BN (the order of every layer of the SESN zoo).

    x: [B, C_in, H, W] -> [B, channels, H', W'] where H' is H after ``conv`` and the pool.
    ``channels`` is what ``conv`` outputs (C_out, or C_out * S for scale columns).
    """

    def __init__(
        self,
        conv: nn.Module,
        channels: int,
        pool: int = 2,
        pool_padding: int = 0,
        norm: bool = True,
    ) -> None:
        layers = [conv, nn.ReLU(), nn.MaxPool2d(pool, padding=pool_padding)]
        if norm:
            layers.append(nn.BatchNorm2d(channels))
        super().__init__(*layers)


class CanvasNet(BlockNet):
    """A classifier on a fixed canvas: blocks -> projection -> flatten -> head.

    x: [B, in_channels, canvas, canvas] -> logits [B, num_classes].
    ``features(x)``: the output of every block but the last, and the last block's map before
    its final pool to 2x2 (7x7 on the 28 canvas: the 2x2 map leaves no footprint to compare,
    specs/sefl-method.md section 2); a scale or vector axis ``[B, C, S, H, W]`` folded into
    channels ``[B, C * S, H, W]``. ``project`` maps the last block's output to
    ``[B, C, 2, 2]`` (e.g. a max over scales) before the head; None is the identity.
    """

    input_mode = "canvas"
    ndim = 2

    def __init__(
        self,
        blocks: Sequence[nn.Module],
        head: nn.Module,
        name: str,
        project: nn.Module | None = None,
        in_channels: int = 1,
        canvas: int = MNIST_CANVAS,
    ) -> None:
        super().__init__(blocks, head, name, project, in_channels)
        self.canvas = canvas

    def _check(self, x: Tensor) -> None:
        check_input(x, self.in_channels, self.canvas, self.name)
        if tuple(x.shape[-2:]) != (self.canvas, self.canvas):
            raise ValueError(
                f"{self.name} takes images zero-padded to its {self.canvas}x{self.canvas} canvas, "
                f"got spatial size {tuple(x.shape[-2:])}"
            )

    def readout(self, x: Tensor) -> Tensor:
        return x.flatten(1)

    def features(self, x: Tensor) -> list[Tensor]:
        self._check(x)
        outputs = run_blocks(self.blocks[:-1], x)
        outputs.append(before_final_pool(self.blocks[-1], outputs[-1] if outputs else x))
        return [fold_scales(f) if f.dim() == self.ndim + 3 else f for f in outputs]


def conv_blocks(
    make_conv: ConvFactory, norm_multiplier: int = 1, last_norm: bool = True
) -> BlockFactory:
    """Blocks conv -> ReLU -> pool -> BN with ``make_conv(i, c_in, c_out)`` as the conv of
    layer i and the pools of ``MNIST_POOLS``.

    ``norm_multiplier``: channels the conv outputs per requested channel (S for SiCNN's scale
    columns, whose BN is not shared across columns); ``last_norm=False`` drops the BN after the
    last pool (SEVF).
    """

    def make_block(i: int, c_in: int, c_out: int) -> nn.Module:
        pool, pad = MNIST_POOLS[i]
        norm = last_norm or i < len(MNIST_POOLS) - 1
        return ConvBlock(make_conv(i, c_in, c_out), c_out * norm_multiplier, pool, pad, norm)

    return make_block


def build_canvas_net(
    make_block: BlockFactory,
    name: str,
    width: float = 1.0,
    channels: Sequence[int] = MNIST_CHANNELS,
    project: nn.Module | None = None,
    hidden: int = HIDDEN,
    dropout: float = 0.7,
    num_classes: int = 10,
    in_channels: int = 1,
) -> CanvasNet:
    """The MNIST backbone with ``make_block(i, c_in, c_out)`` as block i, whose pool must be
    ``MNIST_POOLS[i]``; ``channels`` and ``hidden`` are multiplied by ``width`` first."""
    if len(channels) != len(MNIST_POOLS):
        raise ValueError(f"channels must have {len(MNIST_POOLS)} entries, got {tuple(channels)}")
    channels = widen(channels, width)
    (hidden,) = widen((hidden,), width)
    c_ins = (in_channels,) + channels[:-1]
    blocks = [make_block(i, c_in, c_out) for i, (c_in, c_out) in enumerate(zip(c_ins, channels))]
    head = MnistHead(channels[-1] * FINAL_MAP**2, hidden, num_classes, dropout)
    return CanvasNet(blocks, head, name, project, in_channels)


def _create_cnn(width: float, kernel_size: int, **backbone) -> CanvasNet:
    """``backbone``: keyword arguments of ``build_canvas_net`` (channels, hidden, ...)."""

    def make_conv(i: int, c_in: int, c_out: int) -> nn.Module:
        return nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2)

    return build_canvas_net(conv_blocks(make_conv), "cnn", width, **backbone)


def mnist_cnn(width: float = 1.0, **kwargs) -> CanvasNet:
    """The plain CNN on the 28x28 MNIST-scale canvas (494,549 parameters at width 1)."""
    model_args = {"kernel_size": 7}
    return _create_cnn(width, **{**model_args, **kwargs})
