"""GPU shares: what a trial asks Ray for, from the cluster's GPUs, its task and the flag
(no GPU needed), and the flag's parsing."""

from __future__ import annotations

import pytest

from benchmark.cluster import DEFAULT_GPU_SHARE, gpu_share
from benchmark.run import build_parser
from benchmark.zoo import TASKS


@pytest.mark.parametrize("task", TASKS)
def test_every_task_has_a_default_share_that_packs_whole_gpus(task):
    share = DEFAULT_GPU_SHARE[task]
    assert 0 < share <= 1 and (1 / share).is_integer()  # n trials fill a GPU exactly


@pytest.mark.parametrize("task, gpus, asked, expected", [
    ("mnist1d_scale", 0.0, None, 0.0),  # no GPU in the cluster: the CPU
    ("stl10_scale", 0.0, None, 0.0),
    ("mnist1d_scale", 8.0, None, 0.25),  # small trials share a GPU
    ("mnist_scale", 1.0, None, 0.5),
    ("stl10_scale", 2.0, None, 1.0),  # STL-10 gets a whole one
    ("stl10_scale", 0.5, None, 0.5),  # never more than the cluster has
    ("outside_task", 4.0, None, 1.0),  # a task without a default: a whole GPU
    ("stl10_scale", 4.0, 0.0, 0.0),  # --gpus-per-trial 0 forces the CPU
    ("mnist1d_scale", 4.0, 2.0, 2.0),  # the flag wins
    ("mnist_scale", 0.0, 0.5, 0.5),  # even where the cluster check will refuse it
])
def test_share_follows_cluster_task_and_flag(task, gpus, asked, expected):
    assert gpu_share(task, gpus, asked) == expected


def test_the_flag_is_unset_by_default_and_zero_is_kept():
    parser = build_parser()
    assert parser.parse_args(["--suite", "quick"]).gpus_per_trial is None
    assert parser.parse_args(["--suite", "quick", "--gpus-per-trial", "0"]).gpus_per_trial == 0
