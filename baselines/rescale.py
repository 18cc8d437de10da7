"""Rescaling a map on a fixed canvas: the ``rescale4d`` of the SESN zoo (specs/baselines.md
sections 2 and 3), used by SiCNN (rescaled kernels) and SI-ConvNet (rescaled inputs).

A map is resized by a factor with ``F.interpolate(scale_factor=...)`` and then cropped or
zero-padded, centred, back to a fixed size. Both directions use the reference's one rule, the
``F.pad`` amount ``before = (size - n) // 2``: a smaller map starts at ``(size - n) // 2`` (an
odd surplus of zeros goes after it), and a larger one, whose amount is negative and floored,
loses ``ceil((n - size) / 2)`` points at the start (an odd surplus is cropped from the start).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor

__all__ = ["center_fit", "check_scales", "rescale4d"]

InterpolationMode = Literal["bilinear", "nearest"]


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    """The scale factors of a multi-scale layer as floats; ValueError unless non-empty and
    positive."""
    if not scales or min(scales) <= 0:
        raise ValueError(f"scales must be a non-empty list of positive factors, got {scales}")
    return tuple(float(s) for s in scales)


def _fit_offsets(n: int, size: int) -> tuple[int, int]:
    """F.pad amounts (before, after) taking an axis of n points to size; negative crops."""
    before = (size - n) // 2  # floored also when negative, so an odd crop takes the start's point
    return before, size - n - before


def center_fit(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Centre-crop or zero-pad the last two axes: x ``[..., h, w]`` -> ``[..., *size]``."""
    top, bottom = _fit_offsets(x.shape[-2], size[0])
    left, right = _fit_offsets(x.shape[-1], size[1])
    return F.pad(x, (left, right, top, bottom))


def rescale4d(
    x: Tensor,
    scale: float,
    mode: InterpolationMode = "bilinear",
    size: tuple[int, int] | None = None,
) -> Tensor:
    """Resize x ``[B, C, H, W]`` by ``scale`` and fit it, centred, on a canvas of ``size``
    (None: x's own ``(H, W)``) -> ``[B, C, *size]``.

    "bilinear" uses ``align_corners=True`` and no anti-aliasing, as the reference does; the
    resized map has ``floor(H * scale)`` rows, like ``F.interpolate(scale_factor=scale)``.
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    target = tuple(x.shape[-2:]) if size is None else size
    if scale == 1.0:
        return center_fit(x, target)
    if min(x.shape[-2:]) * scale < 1:
        raise ValueError(f"scale {scale} shrinks a {tuple(x.shape[-2:])} map below one point")
    align = True if mode == "bilinear" else None
    resized = F.interpolate(x, scale_factor=scale, mode=mode, align_corners=align)
    return center_fit(resized, target)
