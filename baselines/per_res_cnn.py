"""Per-resolution CNN: the CNN baseline made fully convolutional, fed each image at its own size.

The paper this benchmark reproduces (Rahman & Yeh, "Truly Scale-Equivariant Deep Nets with
Fourier Layers", NeurIPS 2023) lists a "Per Res. CNN" row without a definition we could read.
Our definition: the MNIST CNN of specs/baselines.md section 0.4 with

* no canvas: each image enters at its native resolution (``input_mode = "native"``, 8..28 on
  MNIST-scale), so no zero padding to 28x28;
* the same layer order, conv 7x7 (pad 3, bias) -> ReLU -> MaxPool 2 -> BN twice, then
  conv 7x7 -> ReLU -> BN without a pool, so feature maps are n -> n // 2 -> n // 4 -> n // 4;
* a global average pool over space instead of the fixed 2x2 map, then the CNN's head
  (Linear 256 without bias -> BN1d -> ReLU -> Dropout 0.7 -> Linear 10);
* channels 35 / 68 / 103 instead of 32 / 63 / 95 so that, with its smaller head (103 instead
  of 380 features into the FC layer), it has about the CNN's parameter count: 491,599 against
  494,549 (-0.6%).

It accepts any input of at least 4x4 (both pools then see a full 2x2 window).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from baselines.cnn import HIDDEN, ConvBlock, widen
from baselines.common import MnistHead, check_input

__all__ = ["PerResolutionCNN", "mnist_per_res_cnn"]

MIN_SIZE = 4
POOLS = (2, 2, 1)  # no pool after the last conv: global pooling follows


class PerResolutionCNN(nn.Module):
    """Fully convolutional CNN with a global average pool.

    x: [B, in_channels, n, n], any n >= 4 -> logits [B, num_classes].
    ``features(x)``: [B, C1, n // 2, n // 2], [B, C2, n // 4, n // 4], [B, C3, n // 4, n // 4].
    """

    input_mode = "native"

    def __init__(
        self,
        channels: Sequence[int],
        kernel_size: int = 7,
        hidden: int = HIDDEN,
        dropout: float = 0.7,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if len(channels) != len(POOLS):
            raise ValueError(f"channels must have {len(POOLS)} entries, got {tuple(channels)}")
        c_ins = (in_channels, *channels[:-1])
        self.blocks = nn.ModuleList(
            ConvBlock(nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2), c_out, pool)
            for c_in, c_out, pool in zip(c_ins, channels, POOLS)
        )
        self.head = MnistHead(channels[-1], hidden, num_classes, dropout)
        self.in_channels = in_channels

    def features(self, x: Tensor) -> list[Tensor]:
        check_input(x, self.in_channels, MIN_SIZE, "per_res_cnn")
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)[-1].mean((-2, -1)))


def _create_per_res_cnn(
    width: float, channels: Sequence[int], hidden: int = HIDDEN, **kwargs
) -> PerResolutionCNN:
    """``kwargs``: the other arguments of ``PerResolutionCNN`` (kernel_size, dropout, ...)."""
    (hidden,) = widen((hidden,), width)
    return PerResolutionCNN(widen(channels, width), hidden=hidden, **kwargs)


def mnist_per_res_cnn(width: float = 1.0, **kwargs) -> PerResolutionCNN:
    """The per-resolution CNN for MNIST-scale (491,599 parameters at width 1)."""
    return _create_per_res_cnn(width, **{"channels": (35, 68, 103), **kwargs})
