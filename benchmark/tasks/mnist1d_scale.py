"""MNIST-1D-scale: MNIST-1D (Greydanus 2020) generated locally from the ``mnist1d`` package's
digit templates, every sequence given one length in 24..72 (configurable) by 1D ideal
down-scaling (``sefl.spectral``); 10 classes; seeded stratified splits (default train 4,000 /
val 1,000 / test 1,000).

The generator's own grid is ``template_len + max padding = 72`` points before it linearly
subsamples to ``final_seq_length`` (40 by default); we ask for 72, so the base sequences carry
no interpolation loss, and resample ideally when another base length is asked for. The
dataset itself is fixed (mnist1d's seed 42, as many sequences as the splits need, rounded up to
a multiple of 10); ``seed`` chooses the splits and lengths. mnist1d standardises the data, so
the normalisation is mean 0, std 1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from benchmark.tasks.augment import Augment, CircularShift
from benchmark.tasks.building import assign_splits, requested_sizes, split_record
from benchmark.tasks.dataset import grouped_payload
from benchmark.tasks.options import Option, boolean, scale_task_options
from benchmark.tasks.resolutions import to_resolution
from benchmark.tasks.spec import TaskSpec, scale_layout
from benchmark.tasks.task import TaskLayout

__all__ = ["MNIST1D_SCALE", "generate_mnist1d"]

PROTOCOL_SIZES = {"train": 4_000, "val": 1_000, "test": 1_000}
DATASET_SEED = 42  # mnist1d's default: the published MNIST-1D is generated with it
SHIFT_FRACTION = 0.125

# ``download`` is accepted so one command line serves every task; there is nothing to download.
OPTIONS = {
    **scale_task_options(("fourier",), 24, 72, 8),
    "circular_shift": Option(False, boolean, build=False),
}


@dataclass(frozen=True)
class Mnist1dSource:
    """The local generator (no files): its version identifies the data."""

    def fingerprint(self) -> dict:
        return {"generator": "mnist1d", "version": version("mnist1d"), "dataset_seed": DATASET_SEED}


def generate_mnist1d(num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST-1D from its templates at the generator's native length: x float32 ``[n, 72]``
    (standardised), y int64 ``[n]``; ``num_samples`` a multiple of 10."""
    from mnist1d.data import get_dataset_args, make_dataset  # imports matplotlib: only here

    args = get_dataset_args()
    args.num_samples = num_samples
    args.train_split = 1.0
    args.seed = DATASET_SEED
    args.final_seq_length = args.template_len + args.padding[-1]
    # make_dataset seeds Python's and NumPy's global generators; leave them as they were.
    saved = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
    return torch.from_numpy(data["x"]).float(), torch.from_numpy(data["y"]).long()


def _locate(data_dir: Path, options: dict) -> Mnist1dSource:
    return Mnist1dSource()


def _build(source: Mnist1dSource, options: dict) -> tuple[dict, dict]:
    sizes = requested_sizes(options, PROTOCOL_SIZES)
    pool = -(-sum(sizes.values()) // 10) * 10
    sequences, labels = generate_mnist1d(pool)
    base = to_resolution(sequences, options["max_resolution"], 1).unsqueeze(1)
    grid = _layout(options)[0].resolutions
    tensors = {
        split: split_record(
            labels,
            index,
            resolutions,
            grouped_payload(base[index], resolutions, 1, split == "test"),
        )
        for split, (index, resolutions) in assign_splits(
            labels, sizes, grid, options["seed"]
        ).items()
    }
    metadata = {
        "sources": [f"mnist1d {version('mnist1d')} generator, {pool} sequences"],
        "pool_size": pool,
        "requested_sizes": sizes,
        "reduced_size_warning": None,
    }
    return tensors, metadata


def _layout(options: dict) -> tuple[TaskLayout, Augment | None]:
    top = options["max_resolution"]
    shift = CircularShift(SHIFT_FRACTION) if options["circular_shift"] else None
    layout = scale_layout(options, ndim=1, in_channels=1, top=top, mean=(0.0,), std=(1.0,))
    return layout, shift


MNIST1D_SCALE = TaskSpec("mnist1d_scale", OPTIONS, _locate, _build, _layout)
