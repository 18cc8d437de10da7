"""MNIST-scale, in the two published protocols.

"fourier" (Rahman & Yeh, NeurIPS 2023): every image gets one resolution r in 8..28, balanced
and seeded, made by ideal down-scaling (``sefl.spectral``) of the 28 x 28 digit; "native" models
take it at r x r, "canvas" models zero-padded (or ideally up-sampled) to 28 x 28.

"sesn" (Sosnovik et al., ICLR 2020): every image rescaled once by a factor drawn uniformly from
[0.3, 1.0] about the centre, bicubic, on the 28 x 28 canvas with zero fill (realisations: seeds
0..5); ``extra_scaling`` adds the "+" setting's training-only random rescale in [0.5, 2.0].
Every item is at 28; ``resolutions`` are those of the equivariance measurement.

Both: the MNIST splits present are pooled (70k with train and test) and split stratified into
train 10,000 / val 2,000 / test 50,000. When only part of MNIST is there, a written n_train or
n_val is kept and the test split shrinks to the images left (``splits.plan_sizes``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from benchmark.tasks.augment import (
    Augment,
    CircularShift,
    RandomRescale,
    compose,
    rescale_about_centre,
)
from benchmark.tasks.building import assign_splits, plan_pool, split_record
from benchmark.tasks.dataset import base_payload, grouped_payload
from benchmark.tasks.files import SplitFiles
from benchmark.tasks.mnist_source import find_mnist, read_mnist
from benchmark.tasks.options import Option, boolean, scale_task_options
from benchmark.tasks.seeding import seeded_generator
from benchmark.tasks.spec import TaskSpec, scale_layout
from benchmark.tasks.task import TaskLayout

__all__ = ["CANVAS", "EXTRA_SCALES", "MEAN", "MNIST_SCALE", "SESN_SCALES", "STD"]

PROTOCOL_SIZES = {"train": 10_000, "val": 2_000, "test": 50_000}
FULL_POOL = 70_000
MEAN, STD = (0.0607,), (0.2161,)
CANVAS = 28
SESN_SCALES = (0.3, 1.0)
EXTRA_SCALES = (0.5, 2.0)
# Circular shifts of up to an eighth of the image per axis; the paper gives no magnitude.
SHIFT_FRACTION = 0.125
# Rescaling 50k images at once would need a 300 MB sampling grid.
RESCALE_CHUNK = 4096

OPTIONS = {
    **scale_task_options(("fourier", "sesn"), 8, CANVAS, 1, fixed_top=True),
    "circular_shift": Option(False, boolean, build=False),
    "extra_scaling": Option(False, boolean, build=False),
}


def _check(options: dict) -> None:
    if options["extra_scaling"] and options["protocol"] != "sesn":
        raise ValueError(
            f"option extra_scaling=True belongs to protocol 'sesn', not {options['protocol']!r}"
        )


def _locate(data_dir: Path, options: dict) -> SplitFiles:
    return find_mnist(data_dir, options["download"])


def _sesn_rescaled(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 ``[n, 1, 28, 28]`` -> each rescaled once by U[0.3, 1.0], back to uint8 like the
    published PNGs."""
    low, high = SESN_SCALES
    factors = low + (high - low) * torch.rand(len(images), generator=generator)
    chunks = [
        rescale_about_centre(
            images[i : i + RESCALE_CHUNK].float() / 255.0, factors[i : i + RESCALE_CHUNK]
        )
        for i in range(0, len(images), RESCALE_CHUNK)
    ]
    return (torch.cat(chunks) * 255.0).round().to(torch.uint8)


def _build(files: SplitFiles, options: dict) -> tuple[dict, dict]:
    images, labels = read_mnist(files)
    sizes, metadata = plan_pool(options, PROTOCOL_SIZES, files, len(labels), FULL_POOL, "MNIST")
    fourier = options["protocol"] == "fourier"
    grid = _layout(options)[0].resolutions if fourier else [CANVAS]
    tensors = {}
    for split, (index, resolutions) in assign_splits(labels, sizes, grid, options["seed"]).items():
        if fourier:
            store = grouped_payload(images[index], resolutions, 2, keep_top=split == "test")
        else:
            generator = seeded_generator(options["seed"], "sesn-rescale", split)
            store = base_payload(_sesn_rescaled(images[index], generator))
        tensors[split] = split_record(labels, index, resolutions, store)
    return tensors, metadata


def _layout(options: dict) -> tuple[TaskLayout, Augment | None]:
    shift = CircularShift(SHIFT_FRACTION) if options["circular_shift"] else None
    extra = RandomRescale(*EXTRA_SCALES) if options["extra_scaling"] else None
    layout = scale_layout(options, ndim=2, in_channels=1, top=CANVAS, mean=MEAN, std=STD)
    return layout, compose(extra, shift)


MNIST_SCALE = TaskSpec("mnist_scale", OPTIONS, _locate, _build, _layout, _check)
