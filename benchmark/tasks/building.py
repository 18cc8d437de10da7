"""Steps shared by the task builders: split sizes, stratified splits with resolutions, and the
record each split leaves in the cache."""

from __future__ import annotations

from torch import Tensor

from benchmark.tasks.files import SplitFiles
from benchmark.tasks.resolutions import balanced_resolutions
from benchmark.tasks.seeding import seeded_generator
from benchmark.tasks.splits import SPLITS, plan_sizes, stratified_split

__all__ = ["assign_splits", "plan_pool", "requested_sizes", "split_record"]


def requested_sizes(options: dict, protocol_sizes: dict[str, int]) -> dict[str, int]:
    """n_train / n_val / n_test from the options, the protocol's sizes where they are None."""
    return {
        split: protocol_sizes[split] if options[f"n_{split}"] is None else options[f"n_{split}"]
        for split in SPLITS
    }


def plan_pool(
    options: dict,
    protocol_sizes: dict[str, int],
    files: SplitFiles,
    pool: int,
    full_pool: int,
    dataset: str,
) -> tuple[dict[str, int], dict]:
    """(split sizes, metadata) for a pool of ``pool`` images read from ``files``: the sizes
    asked for, the test split (and sizes left to the protocol) reduced when part of the
    protocol's ``full_pool`` is missing (``splits.plan_sizes``)."""
    written = {split: options[f"n_{split}"] for split in SPLITS}
    sizes, warning = plan_sizes(written, protocol_sizes, pool, full_pool, dataset)
    metadata = {
        **files.describe(),
        "pool_size": pool,
        "requested_sizes": requested_sizes(options, protocol_sizes),
        "reduced_size_warning": warning,
    }
    return sizes, metadata


def assign_splits(
    labels: Tensor, sizes: dict[str, int], grid: list[int], seed: int
) -> dict[str, tuple[Tensor, Tensor]]:
    """Per split: (pool indices ``[n]``, resolutions ``[n]``), stratified by class and balanced
    over ``grid``, all seeded by ``seed``."""
    parts = stratified_split(labels, [sizes[s] for s in SPLITS], seeded_generator(seed, "split"))
    assigned = {}
    for split, index in zip(SPLITS, parts):
        generator = seeded_generator(seed, "resolutions", split)
        assigned[split] = (index, balanced_resolutions(labels[index], grid, generator))
    return assigned


def split_record(labels: Tensor, index: Tensor, resolutions: Tensor, store: dict) -> dict:
    """What the cache keeps of one split (see ``spec.assemble``)."""
    return {
        "labels": labels[index].contiguous(),
        "resolutions": resolutions,
        "pool_index": index,
        "store": store,
    }
