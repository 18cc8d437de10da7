"""Equivariance error and scale consistency: the one place they are computed.

Definitions (``specs/sefl-method.md`` section 2). For images x at the top resolution N and each
lower resolution r, with f a model's feature map after one block and s the spatial size of
f(D_r x), compare ``a = R_s f(x)`` with ``b = R_s f(D_r x)`` (R: ideal resampling, both sides):

    e(x, r) = mean over channels of ||a - b||^2 / (||a||^2 + 1e-6)      (norms over space)

and average over images and over the lower resolutions (dividing by their number, not by the
count including the identity). ``mode="bicubic"`` makes D_r an anti-aliased bicubic
down-scaling instead of the ideal one (the comparison stays ideal).

Models follow the model protocol of DESIGN.md: ``features(x) -> list[Tensor]`` and
``input_mode``. A "canvas" model sees D_r x zero-padded to the top resolution N, and ``b`` is
the footprint of the image in its feature map (``sefl.canvas.crop_footprint``) - our definition
for models that keep a fixed canvas, documented as such.

Nothing here changes a model's mode: call ``model.eval()`` first for numbers that do not depend
on the batch (batch norm) or on chance (dropout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sefl.canvas import crop_footprint, pad_to_canvas
from sefl.spectral import resample

__all__ = [
    "EquivarianceError",
    "downscale",
    "equivariance_error",
    "per_image_errors",
    "present",
    "scale_consistency",
]

DownscaleMode = Literal["ideal", "bicubic"]
EPS = 1e-6


@dataclass(frozen=True)
class EquivarianceError:
    """Equivariance errors of one model on one set of images.

    per_block_resolution[i][r]: block i, lower resolution r (mean over images).
    per_block[i]: block i, mean over the lower resolutions.
    per_resolution[r]: the last block at resolution r.
    error: the headline number, the last block's mean.
    """

    per_block_resolution: list[dict[int, float]]
    mode: str

    @property
    def per_block(self) -> list[float]:
        return [sum(d.values()) / len(d) for d in self.per_block_resolution]

    @property
    def per_resolution(self) -> dict[int, float]:
        return dict(self.per_block_resolution[-1])

    @property
    def error(self) -> float:
        return self.per_block[-1]


def _spatial_ndim(x: Tensor) -> int:
    if x.dim() not in (3, 4):
        raise ValueError(f"x must be [B, C, L] or [B, C, H, W], got shape {tuple(x.shape)}")
    return x.dim() - 2


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


def _relative_sq_error(a: Tensor, b: Tensor) -> Tensor:
    """a, b: [B, C, *space] -> [B]: mean over channels of ||a - b||^2 / (||a||^2 + eps)."""
    dims = tuple(range(2, a.dim()))
    num = (a - b).pow(2).sum(dims)
    den = a.pow(2).sum(dims) + EPS
    return (num / den).mean(1)


def _lower(resolutions: Sequence[int], top: int) -> list[int]:
    lower = sorted({int(r) for r in resolutions if int(r) < top})
    if not lower:
        raise ValueError(f"resolutions {list(resolutions)} has none below the top resolution {top}")
    return lower


@torch.no_grad()
def per_image_errors(
    model: nn.Module, x: Tensor, resolutions: Sequence[int], mode: DownscaleMode = "ideal"
) -> dict[int, list[Tensor]]:
    """e(x, r) for every image, block and lower resolution r: ``{r: [per block [B]]}``.

    x: ``[B, C, N]`` or ``[B, C, N, N]`` at the top resolution N.
    """
    ndim = _spatial_ndim(x)
    top = x.shape[-1]
    full = model.features(present(model, x, top))
    out: dict[int, list[Tensor]] = {}
    for r in _lower(resolutions, top):
        small = model.features(present(model, downscale(x, r, mode), top))
        if len(small) != len(full):
            raise ValueError("model.features returned a different number of blocks per input")
        errors = []
        for f_full, f_small in zip(full, small):
            if getattr(model, "input_mode", "native") == "canvas":
                f_small = crop_footprint(f_small, r, top)
            s = f_small.shape[-1]
            a = resample(f_full.to(x.dtype), s, ndim)
            b = resample(f_small.to(x.dtype), s, ndim)
            errors.append(_relative_sq_error(a, b))
        out[r] = errors
    return out


def equivariance_error(
    model: nn.Module, x: Tensor, resolutions: Sequence[int], mode: DownscaleMode = "ideal"
) -> EquivarianceError:
    """Mean equivariance error per block and lower resolution (see module docstring).

    x: ``[B, C, N]`` or ``[B, C, N, N]`` at the top resolution N; resolutions: the test
    resolutions (those >= N are ignored).
    """
    per_res = per_image_errors(model, x, resolutions, mode)
    n_blocks = len(next(iter(per_res.values())))
    table = [{r: float(errs[i].mean()) for r, errs in per_res.items()} for i in range(n_blocks)]
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
