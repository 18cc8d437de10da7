"""Pieces every baseline shares: the input check of the model protocol and the MNIST head.

Model protocol (DESIGN.md): ``forward(x) -> [B, num_classes]``, ``features(x) -> list`` of
real feature maps ``[B, C, H, W]`` (2D) or ``[B, C, L]`` (1D), one per block (a scale axis is
folded into channels: ``[B, C, S, H, W] -> [B, C * S, H, W]``), and ``input_mode``
("native" or "canvas"). The MNIST canvas nets measure their last block before its final pool
to 2x2 (specs/sefl-method.md section 2; ``before_final_pool``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import Tensor, nn

__all__ = [
    "BlockNet",
    "MnistHead",
    "before_final_pool",
    "check_input",
    "fold_scales",
    "run_blocks",
]


def check_input(x: Tensor, in_channels: int, min_size: int, model: str, ndim: int = 2) -> None:
    """Raise ValueError unless x is ``[B, in_channels, n(, n)]`` with ``n >= min_size``."""
    if x.dim() != ndim + 2:
        layout = "[B, C, L]" if ndim == 1 else "[B, C, H, W]"
        raise ValueError(f"{model} expects x of shape {layout}, got {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ValueError(f"{model} expects {in_channels} input channels, got {x.shape[1]}")
    if min(x.shape[2:]) < min_size:
        raise ValueError(
            f"{model} needs inputs of at least {min_size} points per side, got {tuple(x.shape[2:])}"
        )


def fold_scales(x: Tensor) -> Tensor:
    """[B, C, S, *space] -> [B, C * S, *space]: a scale axis folded into channels."""
    return x.flatten(1, 2)


def run_blocks(blocks: Iterable[nn.Module], x: Tensor) -> list[Tensor]:
    """x through the blocks in turn -> the output of every block."""
    outputs = []
    for block in blocks:
        x = block(x)
        outputs.append(x)
    return outputs


def before_final_pool(block: nn.Sequential, x: Tensor) -> Tensor:
    """x through ``block``'s layers in turn -> its map before the layer that takes it to its
    final spatial size: ``[B, C, (S,) H, W]`` -> ``[B, C', (S',) H', W']``.

    The final size is the block's output's, so this is the map before its last pool (a pool
    followed only by size-keeping layers such as BN). Raises ValueError for a block that does
    not change the spatial size.
    """
    maps = []
    for layer in block:
        x = layer(x)
        maps.append(x)
    final = x.shape[-1]
    larger = [m for m in maps if m.shape[-1] != final]
    if not larger:
        raise ValueError(f"{type(block).__name__} keeps the spatial size: it has no final pool")
    return larger[-1]


class MnistHead(nn.Sequential):
    """The MNIST classifier head of the SESN zoo (specs/baselines.md section 0.4):
    Linear(in -> hidden, no bias), BN1d, ReLU, Dropout, Linear(hidden -> classes).

    x: [B, in_features] -> [B, num_classes].
    """

    def __init__(
        self, in_features: int, hidden: int = 256, num_classes: int = 10, dropout: float = 0.7
    ) -> None:
        super().__init__(
            nn.Linear(in_features, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )


class BlockNet(nn.Module):
    """blocks -> projection -> readout -> head, with the model protocol's ``forward`` and
    ``features`` (a scale axis folded into channels).

    Subclasses set ``ndim`` (spatial dims of the input) and define ``_check(x)`` (the input
    check) and ``readout(x)`` (the projected last block -> the head's input ``[B, F]``).
    ``project`` maps the last block's output before the readout (e.g. a max over scales);
    None is the identity.
    """

    ndim: int

    def __init__(
        self,
        blocks: Sequence[nn.Module],
        head: nn.Module,
        name: str,
        project: nn.Module | None = None,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.project = nn.Identity() if project is None else project
        self.head = head
        self.name = name
        self.in_channels = in_channels

    def _check(self, x: Tensor) -> None:
        raise NotImplementedError

    def readout(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_blocks(self, x: Tensor) -> list[Tensor]:
        """The raw output of every block (a scale axis, if any, kept)."""
        self._check(x)
        return run_blocks(self.blocks, x)

    def features(self, x: Tensor) -> list[Tensor]:
        scale_dims = self.ndim + 3  # [B, C, S, *space]
        return [fold_scales(f) if f.dim() == scale_dims else f for f in self.forward_blocks(x)]

    def forward_head(self, x: Tensor) -> Tensor:
        """The last block's output -> logits [B, classes]."""
        return self.head(self.readout(self.project(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_blocks(x)[-1])
