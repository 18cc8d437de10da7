"""Outside models for the harness tests, used as ``--model harness_models:<factory>``.

``TinyNet`` follows the model protocol (forward, features, input_mode) on 1D and 2D inputs of
any size; the factories add one behaviour each: raising, NaN logits, slow steps, its own loss
and parameter groups, recording the shapes of its training batches.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn

__all__ = ["RecordingNet", "TinyNet", "failing", "nan_logits", "own_loss", "recording", "slow", "tiny"]

_CONV = {"mnist1d_scale": nn.Conv1d, "mnist_scale": nn.Conv2d, "stl10_scale": nn.Conv2d}
_CHANNELS = {"mnist1d_scale": 1, "mnist_scale": 1, "stl10_scale": 3}


class TinyNet(nn.Module):
    """x: [B, C, *space] -> logits [B, 10]; one conv block, global mean pooling."""

    input_mode = "native"

    def __init__(self, task: str, width: float = 1.0, delay: float = 0.0):
        super().__init__()
        hidden = max(1, round(4 * width))
        self.conv = _CONV[task](_CHANNELS[task], hidden, 3, padding=1)
        self.head = nn.Linear(hidden, 10)
        self.delay = delay

    def features(self, x: Tensor) -> list[Tensor]:
        return [torch.relu(self.conv(x))]

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.delay:
            time.sleep(self.delay)  # a slow trial, so a test can stop it in the middle
        return self.head(self.features(x)[-1].flatten(2).mean(-1))


def tiny(task: str, width: float = 1.0) -> TinyNet:
    return TinyNet(task, width)


def failing(task: str, width: float = 1.0) -> TinyNet:
    raise RuntimeError("deliberate failure of a test model")


class _NanNet(TinyNet):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) * float("nan")


def nan_logits(task: str, width: float = 1.0) -> TinyNet:
    return _NanNet(task, width)


def slow(task: str, width: float = 1.0, delay: float = 0.2) -> TinyNet:
    return TinyNet(task, width, delay)


class _OwnLossNet(TinyNet):
    """A SEFL-like interface: per-level logits, its own loss, its own parameter groups."""

    def forward_levels(self, x: Tensor) -> Tensor:
        logits = super().forward(x)
        return torch.stack([logits, 2 * logits], dim=1)  # [B, 2 levels, 10]

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_levels(x)[:, -1]

    def loss(self, x: Tensor, target: Tensor, weight_decay: float) -> Tensor:
        levels = self.forward_levels(x)
        return sum(nn.functional.cross_entropy(levels[:, j], target) for j in range(2))

    def param_groups(self, weight_decay: float) -> list[dict]:
        return [{"params": list(self.conv.parameters()), "weight_decay": 0.0},
                {"params": list(self.head.parameters()), "weight_decay": weight_decay}]


def own_loss(task: str, width: float = 1.0) -> TinyNet:
    return _OwnLossNet(task, width)


class RecordingNet(TinyNet):
    """``input_mode`` as asked; ``training_shapes`` lists the shape of every batch it trained on."""

    def __init__(self, task: str, width: float = 1.0, input_mode: str = "native"):
        super().__init__(task, width)
        self.input_mode = input_mode
        self.training_shapes: list[tuple[int, ...]] = []

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            self.training_shapes.append(tuple(x.shape))
        return super().forward(x)


def recording(task: str, width: float = 1.0, input_mode: str = "native") -> RecordingNet:
    return RecordingNet(task, width, input_mode)
