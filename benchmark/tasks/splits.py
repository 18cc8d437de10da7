"""Split sizes and stratified, seeded train / val / test splits of a pooled dataset."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["SPLITS", "plan_sizes", "stratified_split"]

SPLITS = ("train", "val", "test")


def _shown(sizes: dict[str, int]) -> str:
    return " / ".join(f"{name} {size}" for name, size in sizes.items())


def plan_sizes(
    written: dict[str, int | None],
    protocol: dict[str, int],
    pool: int,
    full_pool: int,
    dataset: str,
) -> tuple[dict[str, int], str | None]:
    """The split sizes to build from ``pool`` images, and a warning when they were reduced.

    written: per split the size the user asked for, None for the protocol's (``protocol``).
    Sizes that fit in the pool are used as they are. When they do not and the pool is smaller
    than the protocol's full pool (``full_pool``: e.g. 70,000 MNIST images when only the 10k
    test split is present), an n_train or n_val the user wrote is never changed: when train and
    val do not fit, the sizes left to the protocol are scaled by ``pool / full_pool`` (its
    proportions kept); then the test split shrinks to the images left. ValueError, with the
    fix, when train + val leave no test image, or when more than a complete pool is asked for.
    """
    sizes = {name: protocol[name] if size is None else size for name, size in written.items()}
    if sum(sizes.values()) <= pool:
        return sizes, None
    if pool >= full_pool:
        raise ValueError(
            f"n_train + n_val + n_test = {sum(sizes.values())} ({_shown(sizes)}) exceeds the "
            f"{pool} {dataset} images available; ask for fewer"
        )
    scaled = sizes["train"] + sizes["val"] >= pool
    if scaled:
        sizes = {
            name: protocol[name] * pool // full_pool if written[name] is None else size
            for name, size in sizes.items()
        }
    left = pool - sizes["train"] - sizes["val"]
    if left < 1 or min(sizes.values()) < 1:
        fixed = [f"n_{name}={written[name]}" for name in ("train", "val") if written[name]]
        raise ValueError(
            f"{dataset}: {_shown(sizes)} leave no test images of the {pool} images present "
            f"(the protocol pools {full_pool}); ask for n_train + n_val <= {pool - 1}"
            f"{' (you wrote ' + ', '.join(fixed) + ')' if fixed else ''}, or add the missing "
            f"{dataset} files"
        )
    sizes["test"] = min(sizes["test"], left)
    asked = " / ".join(
        f"{name} {protocol[name] if size is None else size}{'' if size is None else ' (written)'}"
        for name, size in written.items()
    )
    how = "the protocol's sizes reduced proportionally, " if scaled else ""
    warning = (
        f"{dataset}: only {pool} of the protocol's {full_pool} images are present; building "
        f"{_shown(sizes)} ({how}the test split shrunk to fit; asked: {asked})"
    )
    return sizes, warning


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
