"""Split sizes and stratified, seeded train / val / test splits of a pooled dataset."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["SPLITS", "plan_sizes", "stratified_split"]

SPLITS = ("train", "val", "test")


def plan_sizes(
    requested: dict[str, int], pool: int, full_pool: int, dataset: str
) -> tuple[dict[str, int], str | None]:
    """The split sizes to build from ``pool`` images, and a warning when they were reduced.

    Requested sizes that fit in the pool are used as they are. When they do not and the pool is
    smaller than the protocol's full pool (``full_pool``: e.g. 70,000 MNIST images when only
    the 10k test split is present), every size is scaled by ``pool / full_pool`` so the
    protocol keeps its proportions. Anything else raises ValueError.
    """
    total = sum(requested.values())
    if total <= pool:
        return dict(requested), None
    if pool < full_pool:
        sizes = {name: size * pool // full_pool for name, size in requested.items()}
        if min(sizes.values()) >= 1:
            shown = " / ".join(f"{name} {size}" for name, size in sizes.items())
            asked = " / ".join(f"{name} {size}" for name, size in requested.items())
            warning = (
                f"{dataset}: only {pool} of the protocol's {full_pool} images are present; "
                f"building at proportionally reduced sizes {shown} (protocol: {asked})"
            )
            return sizes, warning
    raise ValueError(
        f"n_train + n_val + n_test = {total} ({requested}) exceeds the {pool} {dataset} "
        f"images available; ask for fewer"
    )


def _allocate(size: int, remaining: Tensor) -> Tensor:
    """Per-class counts summing to ``size``, proportional to ``remaining`` (largest remainder,
    exact integer arithmetic, never more than a class has left)."""
    total = int(remaining.sum())
    numerators = size * remaining
    counts = numerators // total
    extra = size - int(counts.sum())
    # Classes with the largest remainders get one more; there are always enough of them.
    order = torch.argsort(numerators % total, descending=True, stable=True)
    counts[order[:extra]] += 1
    return counts


def stratified_split(labels: Tensor, sizes: list[int], generator: torch.Generator) -> list[Tensor]:
    """Disjoint index sets of the given sizes, each with the pool's class proportions.

    labels: ``[P]`` int -> one int64 index tensor per size, in a seeded random order. Splits are
    drawn one after another, each proportional to what is left, so every class count is within
    one of its share.
    """
    if sum(sizes) > len(labels):
        raise ValueError(f"split sizes {sizes} exceed the {len(labels)} items available")
    classes = torch.unique(labels)
    members = []
    for label in classes:
        indices = torch.nonzero(labels == label).flatten()
        members.append(indices[torch.randperm(len(indices), generator=generator)])
    remaining = torch.tensor([len(m) for m in members])
    taken = torch.zeros_like(remaining)
    parts = []
    for size in sizes:
        counts = _allocate(size, remaining)
        chosen = torch.cat(
            [m[start : start + n] for m, start, n in zip(members, taken.tolist(), counts.tolist())]
        )
        parts.append(chosen[torch.randperm(len(chosen), generator=generator)])
        taken += counts
        remaining -= counts
    return parts
