"""Placing a small image on a fixed canvas, the way the CNN baselines were published.

"Canvas" models (``input_mode = "canvas"``) take every image zero-padded, centred, to the task's
canvas size; their feature maps then cover the canvas, and the image occupies a centred
footprint of them.

The footprint of an ``image``-point input in an ``m``-point map of a ``canvas``-point canvas
is ``m * image / canvas`` points long, which is rarely a whole number, and a crop of whole
pixels can only be centred on the map's centre when its size has the parity of ``m``. So the
crop (``crop_footprint``) is the same-parity size nearest to the exact extent, a tie (the exact
extent has the other parity) going to the larger size, so that no part of the image is cut
off: it is symmetric about the map's centre and at most one pixel longer or shorter than the
exact extent. A 2x2 map with a 1x1 footprint thus gives the whole 2x2 centre, not the
top-left pixel. ``pad_to_canvas`` puts an image half a canvas point before the centre when
``canvas - image`` is odd; that is under one feature pixel and the crop ignores it.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

__all__ = ["crop_footprint", "footprint", "pad_to_canvas"]


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


def footprint(m: int, image: int, canvas: int) -> float:
    """The exact extent, in points of an ``m``-point map, of an ``image``-point input on a
    ``canvas``-point canvas: ``m * image / canvas``."""
    if not 0 < image <= canvas:
        raise ValueError(f"image size must be in 1..canvas={canvas}, got {image}")
    return m * image / canvas


def _crop_size(m: int, extent: float) -> int:
    """The size with the parity of m nearest to ``extent`` (ties to the larger), in 1..m."""
    below = math.floor(extent)
    if (m - below) % 2:
        below -= 1  # the same-parity sizes around extent are below and below + 2
    size = below if extent - below < 1 else below + 2
    return min(m, max(size, 2 - m % 2))


def crop_footprint(features: Tensor, image: int, canvas: int) -> Tensor:
    """Crop from a canvas model's feature map the centred footprint of an ``image``-point
    input on a ``canvas``-point canvas (the module docstring says how it is rounded).

    features: ``[B, C, m]`` or ``[B, C, m, m]`` -> the same with ``m`` replaced by the crop
    size, which has the parity of ``m`` and is nearest to ``m * image / canvas``.
    """
    m = features.shape[-1]
    size = _crop_size(m, footprint(m, image, canvas))
    start = _offset(size, m)
    out = features.narrow(-1, start, size)
    if features.dim() == 4:
        out = out.narrow(-2, start, size)
    return out
