"""A plain 1D CNN for MNIST-1D-scale, and the sequence backbone the 1D baselines share.

No published 1D scale-CNN baseline exists for this task (the SEFL authors' 1D code is a sketch,
specs/baselines.md section 9.3), so this is our definition: the MNIST CNN recipe of section 0.4
in 1D, made fully convolutional like ``per_res_cnn``, so it takes every sequence at its own
length (``input_mode = "native"``, 24..72 on the task):

    4 x [conv (kernel 7, "same", bias) -> ReLU -> MaxPool 2 (not after the last) -> BN]
    channels 32 / 63 / 127 / 193, lengths L -> L/2 -> L/4 -> L/8 -> L/8
    global average pool over the length, then the MNIST head
    (Linear 256 without bias -> BN1d -> ReLU -> Dropout 0.7 -> Linear 10)

295,655 parameters, about the 1D SEFL model's 295,482 real numbers at width 1 (+0.06%). It takes any length
of at least 8 (every pool then sees a full window).

``SequenceNet`` / ``build_sequence_net`` are the backbone: ``dss1d`` and ``wavelet1d`` plug
convolutions with a scale axis ``[B, C, S, L]`` into the same blocks, with pooling along the
length only and BN statistics shared over the scales.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from baselines.cnn import HIDDEN, widen
from baselines.common import BlockNet, MnistHead, check_input

__all__ = [
    "CHANNELS_1D",
    "MIN_LENGTH",
    "POOLS_1D",
    "SequenceBlock",
    "SequenceNet",
    "build_sequence_net",
    "cnn1d",
]

CHANNELS_1D = (32, 63, 127, 193)
POOLS_1D = (2, 2, 2, 1)  # no pool after the last conv: global pooling follows
MIN_LENGTH = 8  # 2 ** 3: every pool sees a full window

# make_conv(layer index, in channels, out channels) -> [B, C_in(, S), L] -> [B, C_out, (S,) L]
ConvFactory1d = Callable[[int, int, int], nn.Module]


class SequenceBlock(nn.Sequential):
    """conv -> ReLU -> MaxPool over the length -> BN (the order of the zoo's layers).

    x: [B, C_in, L] -> [B, channels, L // pool]; with ``scale_axis`` the conv outputs
    [B, channels, S, L] and pooling and BN act per scale with statistics shared over S.
    """

    def __init__(self, conv: nn.Module, channels: int, pool: int, scale_axis: bool) -> None:
        layers = [conv, nn.ReLU()]
        if pool > 1:
            layers.append(nn.MaxPool2d((1, pool)) if scale_axis else nn.MaxPool1d(pool))
        layers.append(nn.BatchNorm2d(channels) if scale_axis else nn.BatchNorm1d(channels))
        super().__init__(*layers)


class SequenceNet(BlockNet):
    """blocks -> projection -> global average pool over the length -> head.

    x: [B, in_channels, L], L >= ``min_length`` -> logits [B, num_classes].
    ``features(x)``: every block's output, [B, C, L'] (a scale axis folded: [B, C * S, L']).
    ``project`` maps the last block's output to [B, C, L'] (e.g. a max over scales); None is
    the identity.
    """

    input_mode = "native"
    ndim = 1

    def __init__(
        self,
        blocks: Sequence[nn.Module],
        head: nn.Module,
        name: str,
        project: nn.Module | None = None,
        in_channels: int = 1,
        min_length: int = MIN_LENGTH,
    ) -> None:
        super().__init__(blocks, head, name, project, in_channels)
        self.min_length = min_length

    def _check(self, x: Tensor) -> None:
        check_input(x, self.in_channels, self.min_length, self.name, ndim=1)

    def readout(self, x: Tensor) -> Tensor:
        return x.mean(-1)


def build_sequence_net(
    make_conv: ConvFactory1d,
    name: str,
    width: float = 1.0,
    channels: Sequence[int] = CHANNELS_1D,
    scale_axis: bool = False,
    project: nn.Module | None = None,
    hidden: int = HIDDEN,
    dropout: float = 0.7,
    num_classes: int = 10,
    in_channels: int = 1,
) -> SequenceNet:
    """The 1D backbone with ``make_conv(i, c_in, c_out)`` as the conv of block i (pools
    ``POOLS_1D``); ``channels`` and ``hidden`` are multiplied by ``width`` first."""
    if len(channels) != len(POOLS_1D):
        raise ValueError(f"channels must have {len(POOLS_1D)} entries, got {tuple(channels)}")
    channels = widen(channels, width)
    (hidden,) = widen((hidden,), width)
    c_ins = (in_channels,) + channels[:-1]
    blocks = [
        SequenceBlock(make_conv(i, c_in, c_out), c_out, pool, scale_axis)
        for i, (c_in, c_out, pool) in enumerate(zip(c_ins, channels, POOLS_1D))
    ]
    head = MnistHead(channels[-1], hidden, num_classes, dropout)
    return SequenceNet(blocks, head, name, project, in_channels)


def _create_cnn1d(width: float, kernel_size: int, **backbone) -> SequenceNet:
    """``backbone``: keyword arguments of ``build_sequence_net`` (channels, hidden, ...)."""

    def make_conv(i: int, c_in: int, c_out: int) -> nn.Module:
        return nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2)

    return build_sequence_net(make_conv, "cnn1d", width, **backbone)


def cnn1d(width: float = 1.0, **kwargs) -> SequenceNet:
    """The plain 1D CNN on native-length sequences (295,655 parameters at width 1)."""
    model_args = {"kernel_size": 7}
    return _create_cnn1d(width, **{**model_args, **kwargs})
