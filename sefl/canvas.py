"""Placing a small image on a fixed canvas, the way the CNN baselines were published.

"Canvas" models (``input_mode = "canvas"``) take every image zero-padded, centred, to the task's
canvas size; their feature maps then cover the canvas, and the image occupies a centred
footprint of them.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["crop_footprint", "pad_to_canvas"]


def _offset(inner: int, outer: int) -> int:
    return (outer - inner) // 2


def pad_to_canvas(x: Tensor, canvas: int) -> Tensor:
    """Zero-pad the last axis (1D: x ``[B, C, n]``) or last two axes (2D: ``[B, C, n, n]``),
    centred, to ``canvas`` points. ``n == canvas`` returns x unchanged."""
    n = x.shape[-1]
    if n > canvas:
        raise ValueError(f"image size {n} exceeds the canvas size {canvas}")
    before = _offset(n, canvas)
    after = canvas - n - before
    pad = (before, after) if x.dim() == 3 else (before, after, before, after)
    return F.pad(x, pad)


def crop_footprint(features: Tensor, image: int, canvas: int) -> Tensor:
    """Crop from a canvas model's feature map the centred region that an ``image``-point input
    covered on a ``canvas``-point canvas.

    features: ``[B, C, m]`` or ``[B, C, m, m]`` -> the same with ``m`` replaced by
    ``max(1, round(m * image / canvas))``.
    """
    m = features.shape[-1]
    size = max(1, round(m * image / canvas))
    start = _offset(size, m)
    out = features.narrow(-1, start, size)
    if features.dim() == 4:
        out = out.narrow(-2, start, size)
    return out
