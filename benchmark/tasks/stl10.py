"""STL-10-scale (Rahman & Yeh, NeurIPS 2023): the 5k train and 8k test labelled STL-10 images
pooled, split stratified into train 7,000 / val 1,000 / test 5,000 (when less is present, the
test split shrinks first: ``splits.plan_sizes``), every image given one resolution in 49..97 (configurable step) by ideal
resampling of the 96 x 96 image (97 is a band-limited up-sampling).

Training augmentation, before the resampling: RandomCrop(96, padding 12), horizontal flip and
Cutout(32) (the published pipeline's Cutout follows Normalize, so the hole is the mean).
"""

from __future__ import annotations

from pathlib import Path

from benchmark.tasks.augment import Augment, Cutout, RandomCrop, compose, horizontal_flip
from benchmark.tasks.building import assign_splits, plan_pool, split_record
from benchmark.tasks.dataset import base_payload
from benchmark.tasks.files import SplitFiles
from benchmark.tasks.options import scale_task_options
from benchmark.tasks.spec import TaskSpec, scale_layout
from benchmark.tasks.stl10_source import find_stl10, read_stl10
from benchmark.tasks.task import TaskLayout

__all__ = ["MEAN", "STD", "STL10_SCALE"]

PROTOCOL_SIZES = {"train": 7_000, "val": 1_000, "test": 5_000}
FULL_POOL = 13_000
MEAN = (0.4467, 0.4398, 0.4066)
STD = (0.2603, 0.2566, 0.2713)
CROP_PADDING = 12
CUTOUT_SIZE = 32

OPTIONS = scale_task_options(("fourier",), 49, 97, 8)


def _locate(data_dir: Path, options: dict) -> SplitFiles:
    return find_stl10(data_dir, options["download"])


def _build(files: SplitFiles, options: dict) -> tuple[dict, dict]:
    images, labels = read_stl10(files)
    sizes, metadata = plan_pool(options, PROTOCOL_SIZES, files, len(labels), FULL_POOL, "STL-10")
    grid = _layout(options)[0].resolutions
    tensors = {
        split: split_record(labels, index, resolutions, base_payload(images[index]))
        for split, (index, resolutions) in assign_splits(
            labels, sizes, grid, options["seed"]
        ).items()
    }
    return tensors, metadata


def _layout(options: dict) -> tuple[TaskLayout, Augment | None]:
    top = options["max_resolution"]
    layout = scale_layout(options, ndim=2, in_channels=3, top=top, mean=MEAN, std=STD)
    return layout, compose(RandomCrop(CROP_PADDING), horizontal_flip, Cutout(CUTOUT_SIZE, MEAN))


STL10_SCALE = TaskSpec("stl10_scale", OPTIONS, _locate, _build, _layout)
