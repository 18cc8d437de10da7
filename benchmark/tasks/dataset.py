"""A split of a scale task: items ``(x, y, resolution)`` with x at its own resolution.

Two ways to hold the images (the "stores"), both serialisable to plain tensors for the cache:

* ``GroupedStore``: every image already at its resolution, grouped by resolution; training
  augmentation acts at that resolution (MNIST-scale "fourier", MNIST-1D).
* ``BaseStore``: every image at the base resolution, brought to its own resolution when served;
  training augmentation acts before that, at the base resolution (STL-10: crop, flip and cutout
  precede the resampling; MNIST-scale "sesn": its items are all at 28 anyway).

Stores hold raw-scale images (uint8, or float in the [0, 1] scale of uint8 / 255, or already
standardised values for MNIST-1D); the split normalises what they serve.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor
from torch.utils.data import Dataset

from benchmark.tasks.augment import Augment
from benchmark.tasks.resolutions import downscale_groups, to_resolution

__all__ = [
    "BaseStore",
    "GroupedStore",
    "ImageStore",
    "ScaleSplit",
    "base_payload",
    "grouped_payload",
    "store_from_payload",
]


def _as_float(x: Tensor) -> Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


class ImageStore(Protocol):
    def fetch(self, indices: Tensor, resolution: int, generator: torch.Generator | None) -> Tensor:
        """Raw-scale images ``[B, C, r..]`` of ``indices`` (all at ``resolution``); a generator
        asks for training augmentation."""

    def top(self, indices: Tensor) -> Tensor:
        """Raw-scale images ``[B, C, N..]`` at the task's top resolution N."""


class GroupedStore:
    """Images at their own resolution: ``groups[r]`` ``[n_r, C, r..]``, ``position[i]`` the row
    of item i in its group, ``top`` ``[n, C, N..]`` the items at the top resolution (test
    split only: the equivariance images come from it)."""

    def __init__(
        self,
        groups: dict[int, Tensor],
        position: Tensor,
        top: Tensor | None = None,
        augment: Augment | None = None,
    ):
        self.groups, self.position, self.top_images, self.augment = groups, position, top, augment

    def fetch(self, indices: Tensor, resolution: int, generator: torch.Generator | None) -> Tensor:
        x = _as_float(self.groups[resolution][self.position[indices]])
        if generator is not None and self.augment is not None:
            x = self.augment(x, generator)
        return x

    def top(self, indices: Tensor) -> Tensor:
        if self.top_images is None:
            raise ValueError("top-resolution images are kept for the test split only")
        return _as_float(self.top_images[indices])


class BaseStore:
    """Images ``base`` ``[n, C, M..]`` at the base resolution M, resampled ideally to each
    item's resolution when served; ``top_size``: the task's top resolution N (may exceed M:
    STL-10's 96 -> 97)."""

    def __init__(self, base: Tensor, top_size: int, ndim: int, augment: Augment | None = None):
        self.base, self.top_size, self.ndim, self.augment = base, top_size, ndim, augment

    def fetch(self, indices: Tensor, resolution: int, generator: torch.Generator | None) -> Tensor:
        x = _as_float(self.base[indices])
        if generator is not None and self.augment is not None:
            x = self.augment(x, generator)
        return to_resolution(x, resolution, self.ndim)

    def top(self, indices: Tensor) -> Tensor:
        return to_resolution(_as_float(self.base[indices]), self.top_size, self.ndim)


def grouped_payload(images: Tensor, resolutions: Tensor, ndim: int, keep_top: bool) -> dict:
    """The tensors of a ``GroupedStore``, as the cache holds them: every image of ``images``
    ``[n, C, N..]`` (raw-scale) ideally down-scaled to its resolution; ``keep_top``: keep the
    images at N too (the test split: the equivariance images come from it).

    The groups are packed into one flat tensor (``packed``, with ``group_sizes`` rows
    ``[r, n_r]``): loading a file costs per tensor, and a task has dozens of groups.
    """
    groups, position = downscale_groups(_as_float(images), resolutions, ndim)
    order = sorted(groups)
    return {
        "kind": "grouped",
        "packed": torch.cat([groups[r].flatten() for r in order]),
        "group_sizes": torch.tensor([[r, len(groups[r])] for r in order]),
        "channels": torch.tensor(images.shape[1]),
        "position": position,
        "top": images if keep_top else None,
    }


def _unpack_groups(payload: dict, ndim: int) -> dict[int, Tensor]:
    """The groups of a ``grouped_payload`` as views of its packed tensor."""
    channels = int(payload["channels"])
    groups, start = {}, 0
    for r, count in payload["group_sizes"].tolist():
        shape = (count, channels) + (r,) * ndim
        size = count * channels * r**ndim
        groups[r] = payload["packed"][start : start + size].view(shape)
        start += size
    return groups


def base_payload(base: Tensor) -> dict:
    """The tensors of a ``BaseStore``, as the cache holds them."""
    return {"kind": "base", "base": base}


def store_from_payload(
    payload: dict, top_size: int, ndim: int, augment: Augment | None
) -> GroupedStore | BaseStore:
    """Rebuild a store from its cached tensors (``grouped_payload`` / ``base_payload``)."""
    if payload["kind"] == "grouped":
        groups = _unpack_groups(payload, ndim)
        return GroupedStore(groups, payload["position"], payload["top"], augment)
    return BaseStore(payload["base"], top_size, ndim, augment)


class ScaleSplit(Dataset):
    """One split. Item i: ``(x, y, r)``, x float32 normalised ``[C, r, r]`` (1D ``[C, r]``),
    never augmented (``fetch`` with a generator gives training batches).

    labels, resolutions, pool_index: ``[n]`` int64 (pool_index: the item's row in the pooled
    source dataset, which tells where each split came from).
    """

    def __init__(
        self,
        store: ImageStore,
        labels: Tensor,
        resolutions: Tensor,
        pool_index: Tensor,
        mean: tuple[float, ...],
        std: tuple[float, ...],
    ):
        self.store = store
        self.labels, self.resolutions, self.pool_index = labels, resolutions, pool_index
        self._mean = torch.tensor(mean)
        self._std = torch.tensor(std)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int, int]:
        indices = torch.tensor([index])
        return self.fetch(indices)[0], int(self.labels[index]), int(self.resolutions[index])

    def _normalise(self, x: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - self._mean.view(shape)) / self._std.view(shape)

    def fetch(self, indices: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Normalised images ``[B, C, r..]`` of items that share one resolution r; a generator
        applies the training augmentation with it."""
        resolution = int(self.resolutions[indices[0]])
        if not bool((self.resolutions[indices] == resolution).all()):
            found = sorted(set(self.resolutions[indices].tolist()))
            raise ValueError(f"indices must share one resolution, got resolutions {found}")
        return self._normalise(self.store.fetch(indices, resolution, generator))

    def top_images(self, indices: Tensor) -> Tensor:
        """Normalised images ``[B, C, N..]`` of items at the task's top resolution N."""
        return self._normalise(self.store.top(indices))
