"""Equivariance error and scale consistency: the one place they are computed.

Definitions (``specs/sefl-method.md`` section 2). For images x at the top resolution N and each
lower resolution r, with f a model's feature map after one block and s the spatial size of
f(D_r x), compare ``a = R_s f(x)`` with ``b = R_s f(D_r x)`` (R: ideal resampling, both sides):

    e(x, r) = sum_c ||a_c - b_c||^2 / (sum_c ||a_c||^2 + eps)      (norms over space)

the energy pooled over channels (an energy-weighted mean of the per-channel ratios, so channels
that are nearly zero after batch norm carry almost no weight), averaged over images and over
the lower resolutions (dividing by their number, not by the count including the identity).
``eps`` (``default_eps``: the smallest positive normal number of the dtype) only turns the
0 / 0 of a block that is zero on both sides into 0. Any energy that is not itself rounding
noise is orders of magnitude above it (the maps of a briefly trained canvas CNN hold over 1e3
per image, against 1.2e-38 in float32), so eps changes no reported value at any printed digit. ``mode="bicubic"`` makes D_r an
anti-aliased bicubic down-scaling instead of the ideal one (the comparison stays ideal).

Models follow the model protocol of DESIGN.md: ``features(x) -> list[Tensor]`` and
``input_mode``. A "canvas" model sees D_r x zero-padded to the top resolution N, and ``b`` is
the centred footprint of the image in its feature map (``sefl.canvas.crop_footprint``) - our
definition for models that keep a fixed canvas, documented as such. A block whose compared map
is under ``MIN_POINTS`` points per axis at r (a canvas model's exact footprint
``m * r / N``, a native model's map) cannot be compared and is left out at that r;
``EquivarianceError.measured`` says which resolutions each block was measured at.

Nothing here changes a model's mode: call ``model.eval()`` first for numbers that do not depend
on the batch (batch norm) or on chance (dropout).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sefl.canvas import crop_footprint, footprint, pad_to_canvas
from sefl.spectral import resample

__all__ = [
    "MIN_POINTS",
    "EquivarianceError",
    "default_eps",
    "downscale",
    "equivariance_error",
    "per_image_errors",
    "pooled_error",
    "present",
    "scale_consistency",
]

DownscaleMode = Literal["ideal", "bicubic"]
MIN_POINTS = 3  # a compared map needs at least this many points per axis


@dataclass(frozen=True)
class EquivarianceError:
    """Equivariance errors of one model on one set of images.

    per_block_resolution[i][r]: block i (0-based), lower resolution r (mean over images); a
    resolution at which block i was left out (map under ``MIN_POINTS``) has no entry.
    measured[i]: the resolutions block i was measured at (may be empty).
    per_block[i]: block i, mean over its measured resolutions (NaN when there are none).
    per_resolution / first_per_resolution: the last / first block at each resolution.
    error / first_error: the last block's mean (the headline) / the first block's.
    """

    per_block_resolution: list[dict[int, float]]
    mode: str

    @property
    def measured(self) -> list[list[int]]:
        return [sorted(d) for d in self.per_block_resolution]

    @property
    def per_block(self) -> list[float]:
        return [sum(d.values()) / len(d) if d else math.nan for d in self.per_block_resolution]

    @property
    def per_resolution(self) -> dict[int, float]:
        return dict(self.per_block_resolution[-1])

    @property
    def first_per_resolution(self) -> dict[int, float]:
        return dict(self.per_block_resolution[0])

    @property
    def error(self) -> float:
        return self.per_block[-1]

    @property
    def first_error(self) -> float:
        return self.per_block[0]


def _spatial_ndim(x: Tensor) -> int:
    if x.dim() not in (3, 4):
        raise ValueError(f"x must be [B, C, L] or [B, C, H, W], got shape {tuple(x.shape)}")
    return x.dim() - 2


def default_eps(dtype: torch.dtype) -> float:
    """The eps of e(x, r) for features of ``dtype``: its smallest positive normal number."""
    return torch.finfo(dtype).tiny


def downscale(x: Tensor, size: int, mode: DownscaleMode = "ideal") -> Tensor:
    """D_size of x: ``[B, C, n]`` or ``[B, C, n, n]`` -> the same with n replaced by size."""
    ndim = _spatial_ndim(x)
    if mode == "ideal":
        return resample(x, size, ndim)
    if mode == "bicubic":
        if ndim == 1:
            out = F.interpolate(x.unsqueeze(-2), size=(1, size), mode="bicubic", antialias=True)
            return out.squeeze(-2)
        return F.interpolate(x, size=(size, size), mode="bicubic", antialias=True)
    raise ValueError(f"mode must be 'ideal' or 'bicubic', got {mode!r}")


def present(model: nn.Module, x: Tensor, canvas: int) -> Tensor:
    """The input a model expects for x: itself ("native") or zero-padded to ``canvas``."""
    mode = getattr(model, "input_mode", "native")
    if mode == "native":
        return x
    if mode == "canvas":
        return pad_to_canvas(x, canvas)
    raise ValueError(f"model.input_mode must be 'native' or 'canvas', got {mode!r}")


def pooled_error(a: Tensor, b: Tensor, eps: float | None = None) -> Tensor:
    """a, b: [B, C, *space] -> [B]: sum_c ||a_c - b_c||^2 / (sum_c ||a_c||^2 + eps).

    eps None: ``default_eps(a.dtype)``.
    """
    eps = default_eps(a.dtype) if eps is None else eps
    dims = tuple(range(1, a.dim()))
    return (a - b).pow(2).sum(dims) / (a.pow(2).sum(dims) + eps)


def _lower(resolutions: Sequence[int], top: int) -> list[int]:
    lower = sorted({int(r) for r in resolutions if int(r) < top})
    if not lower:
        raise ValueError(f"resolutions {list(resolutions)} has none below the top resolution {top}")
    return lower


def _compared(model: nn.Module, f_small: Tensor, r: int, top: int) -> Tensor | None:
    """The part of f(D_r x) that is compared, or None when it is under MIN_POINTS per axis."""
    if getattr(model, "input_mode", "native") != "canvas":
        return f_small if f_small.shape[-1] >= MIN_POINTS else None
    if footprint(f_small.shape[-1], r, top) < MIN_POINTS:
        return None
    return crop_footprint(f_small, r, top)


@torch.no_grad()
def per_image_errors(
    model: nn.Module,
    x: Tensor,
    resolutions: Sequence[int],
    mode: DownscaleMode = "ideal",
    eps: float | None = None,
) -> dict[int, list[Tensor | None]]:
    """e(x, r) for every image, block and lower resolution r: ``{r: [per block [B] or None]}``
    (None: the block is left out at r, its map under ``MIN_POINTS`` points per axis).

    x: ``[B, C, N]`` or ``[B, C, N, N]`` at the top resolution N; eps None: the default of
    the dtype of x (``default_eps``).
    """
    ndim = _spatial_ndim(x)
    top = x.shape[-1]
    full = model.features(present(model, x, top))
    out: dict[int, list[Tensor | None]] = {}
    for r in _lower(resolutions, top):
        small = model.features(present(model, downscale(x, r, mode), top))
        if len(small) != len(full):
            raise ValueError("model.features returned a different number of blocks per input")
        errors: list[Tensor | None] = []
        for f_full, f_small in zip(full, small):
            compared = _compared(model, f_small, r, top)
            if compared is None:
                errors.append(None)
                continue
            s = compared.shape[-1]
            a = resample(f_full.to(x.dtype), s, ndim)
            b = resample(compared.to(x.dtype), s, ndim)
            errors.append(pooled_error(a, b, eps))
        out[r] = errors
    return out


def equivariance_error(
    model: nn.Module,
    x: Tensor,
    resolutions: Sequence[int],
    mode: DownscaleMode = "ideal",
    eps: float | None = None,
) -> EquivarianceError:
    """Mean equivariance error per block and lower resolution (see module docstring).

    x: ``[B, C, N]`` or ``[B, C, N, N]`` at the top resolution N; resolutions: the test
    resolutions (those >= N are ignored); eps: as in ``per_image_errors``.
    """
    per_res = per_image_errors(model, x, resolutions, mode, eps)
    n_blocks = len(next(iter(per_res.values())))
    table = [
        {r: float(errs[i].mean()) for r, errs in per_res.items() if errs[i] is not None}
        for i in range(n_blocks)
    ]
    return EquivarianceError(per_block_resolution=table, mode=mode)


@torch.no_grad()
def scale_consistency(
    model: nn.Module, x: Tensor, resolutions: Sequence[int], mode: DownscaleMode = "ideal"
) -> float:
    """Fraction of images whose predicted class is the same at every resolution in
    ``resolutions`` (x itself at its top resolution N, and D_r x for each r < N).

    x: ``[B, C, N]`` or ``[B, C, N, N]``.
    """
    top = x.shape[-1]
    inputs = [x] + [downscale(x, r, mode) for r in _lower(resolutions, top)]
    preds = torch.stack([model(present(model, xi, top)).argmax(-1) for xi in inputs])
    return float((preds == preds[0]).all(0).float().mean())
