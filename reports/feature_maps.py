"""One image across resolutions and the feature maps models make of it: the numbers behind the
picture of scale-equivariance (``reports.features`` draws them).

For an image x at the top resolution N and each resolution r <= N the input is D_r x (ideal
down-scaling, ``sefl.equivariance.downscale``; x itself at N) and a model's map is
``features(present(D_r x))`` at one block, the map ``sefl.equivariance`` compares: for a
"canvas" model, the footprint of the image on its canvas (``sefl.canvas.crop_footprint``). A
panel shows one channel of the map or the mean over channels; the error beside it is
e(x, r) of that block over all channels, from ``sefl.equivariance.per_image_errors``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from sefl.canvas import crop_footprint
from sefl.equivariance import downscale, per_image_errors, present

__all__ = ["Channel", "ChoiceError", "FeatureColumn", "FeatureMaps", "feature_maps"]

Channel = int | Literal["mean"]


class ChoiceError(ValueError):
    """A block or channel a model does not have; the message starts with "block" or
    "channel", the argument it names."""


@dataclass(frozen=True)
class FeatureColumn:
    """One model's maps at one block.

    block: 1-based, of ``n_blocks``; channel: the channel shown, or "mean";
    maps[r]: ``[s, s]`` (1D ``[s]``) the shown map at input resolution r;
    errors[r]: e(x, r) at the block, for every r below the top resolution at which the block
    was measured (``sefl.equivariance`` leaves out maps under 3 points per axis).
    """

    label: str
    block: int
    n_blocks: int
    channels: int
    channel: Channel
    maps: dict[int, Tensor]
    errors: dict[int, float]


@dataclass(frozen=True)
class FeatureMaps:
    """The image and every model's maps, for each resolution.

    resolutions: descending, the top resolution first; inputs[r]: the image at r (the mean over
    its channels when it has several), ``[r, r]`` (1D ``[r]``); ndim: 2 for images, 1 for
    sequences.
    """

    ndim: int
    resolutions: list[int]
    inputs: dict[int, Tensor]
    columns: list[FeatureColumn]

    @property
    def top(self) -> int:
        return self.resolutions[0]


def _check_image(image: Tensor) -> int:
    if image.dim() not in (2, 3) or (image.dim() == 3 and image.shape[-1] != image.shape[-2]):
        raise ValueError(f"image must be [C, N, N] or [C, N], got shape {tuple(image.shape)}")
    return image.dim() - 1


def _rows(resolutions: Sequence[int], top: int) -> list[int]:
    return sorted({int(r) for r in resolutions if int(r) <= top} | {top}, reverse=True)


def _pick(features: Tensor, channel: Channel) -> Tensor:
    """features: [C, *space] -> [*space]: the channel or the channel mean."""
    return features.mean(0) if channel == "mean" else features[channel]


def _chosen(label: str, blocks: list[Tensor], block: int, channel: Channel) -> Tensor:
    """The map at ``block`` (1-based) of one model's ``features`` output, checked."""
    if not 1 <= block <= len(blocks):
        raise ChoiceError(f"block {block}: model {label} has blocks 1..{len(blocks)}")
    f = blocks[block - 1]
    if channel != "mean" and not 0 <= channel < f.shape[1]:
        raise ChoiceError(f"channel {channel}: block {block} of model {label} has channels "
                         f"0..{f.shape[1] - 1} (or 'mean')")
    return f


@torch.no_grad()
def _column(label: str, model: nn.Module, inputs: Mapping[int, Tensor], top: int, block: int,
            channel: Channel) -> FeatureColumn:
    canvas = getattr(model, "input_mode", "native") == "canvas"
    maps: dict[int, Tensor] = {}
    for r, x in inputs.items():
        blocks = model.features(present(model, x, top))
        f = _chosen(label, blocks, block, channel)
        f = crop_footprint(f, r, top) if canvas else f
        maps[r] = _pick(f[0].float(), channel)
    per_res = per_image_errors(model, inputs[top], list(inputs))
    errors = {r: float(errs[block - 1][0]) for r, errs in per_res.items()
              if errs[block - 1] is not None}
    return FeatureColumn(label, block, len(blocks), f.shape[1], channel, maps, errors)


def feature_maps(models: Mapping[str, nn.Module], image: Tensor, resolutions: Sequence[int],
                 block: int = 1, channel: Channel = "mean") -> FeatureMaps:
    """The image at every resolution and each model's map at ``block`` (1-based).

    models: label -> model (call ``.eval()`` first: nothing here changes a mode);
    image: ``[C, N, N]`` (1D ``[C, N]``) at the top resolution N; resolutions: the test
    resolutions (those above N are ignored, N is always included). Raises ChoiceError for a
    block or channel a model does not have.
    """
    ndim = _check_image(image)
    top = image.shape[-1]
    rows = _rows(resolutions, top)
    if len(rows) < 2:
        raise ValueError(f"resolutions {list(resolutions)} has none below the top {top}")
    batch = image.unsqueeze(0)
    inputs = {r: batch if r == top else downscale(batch, r) for r in rows}
    columns = [_column(label, model, inputs, top, block, channel)
               for label, model in models.items()]
    shown = {r: x[0].mean(0) if x.shape[1] > 1 else x[0, 0] for r, x in inputs.items()}
    return FeatureMaps(ndim, rows, shown, columns)
