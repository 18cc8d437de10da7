"""MNIST-1D-scale, generated locally from the mnist1d templates."""

import pickle
import random

import numpy as np
import pytest
import torch

from benchmark.tasks import get_task
from benchmark.tasks.mnist1d_scale import generate_mnist1d
from sefl.spectral import resample

SIZES = {"n_train": 140, "n_val": 35, "n_test": 70}


@pytest.fixture(autouse=True)
def _cache_beside_the_data(monkeypatch):
    monkeypatch.delenv("SEFL_CACHE_DIR", raising=False)  # caches go to <data_dir>/cache


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return get_task("mnist1d_scale", tmp_path_factory.mktemp("m1d"), **SIZES)


def test_layout(task):
    assert (task.ndim, task.in_channels, task.num_classes, task.canvas) == (1, 1, 10, 72)
    assert task.resolutions == [24, 32, 40, 48, 56, 64, 72]
    assert task.metadata["split_sizes"] == {"train": 140, "val": 35, "test": 70}
    assert task.metadata["per_resolution_counts"]["train"] == {r: 20 for r in task.resolutions}
    assert set(task.splits["test"].labels.tolist()) == set(range(10))


def test_generator_is_mnist1d_at_its_native_length():
    x, y = generate_mnist1d(30)
    assert x.shape == (30, 72) and sorted(torch.bincount(y).tolist()) == [3] * 10
    torch.testing.assert_close(x.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)


def test_generation_leaves_global_generators_alone():
    np.random.seed(7)
    random.seed(7)
    expected = np.random.rand(), random.random()
    np.random.seed(7)
    random.seed(7)
    generate_mnist1d(10)
    assert (np.random.rand(), random.random()) == expected


@pytest.mark.parametrize("item", [0, 13, 69])
def test_items_are_ideal_downscales_of_the_sequence(task, item):
    data = task.splits["test"]
    x, y, r = data[item]
    top = data.top_images(torch.tensor([item]))[0]
    expected = top if r == 72 else resample(top.double(), r, ndim=1)
    assert x.shape == (1, r) and 0 <= y < 10
    torch.testing.assert_close(x, expected.float(), atol=1e-5, rtol=1e-5)


def test_batches_are_1d_natively_and_on_the_canvas(task):
    x, y, r = next(iter(task.loader("train", 10)))
    assert x.shape == (10, 1, r) and y.shape == (10,)
    xc, _, rc = next(iter(task.loader("test", 10, input_mode="canvas")))
    assert xc.shape == (10, 1, 72) and rc == 24
    assert task.equivariance_images(5).shape == (5, 1, 72)


def test_other_base_length_is_an_ideal_resampling(tmp_path, task):
    shorter = get_task("mnist1d_scale", tmp_path, max_resolution=64, min_resolution=32, **SIZES)
    assert shorter.canvas == 64 and shorter.resolutions == [32, 40, 48, 56, 64]
    index = shorter.splits["test"].pool_index[:5]
    base, _ = generate_mnist1d(250)
    torch.testing.assert_close(
        shorter.splits["test"].top_images(torch.arange(5))[:, 0],
        resample(base[index].double(), 64, ndim=1).float(),
        atol=1e-5,
        rtol=1e-5,
    )


def test_seed_changes_splits_not_data(tmp_path, task):
    same = get_task("mnist1d_scale", tmp_path, **SIZES)
    other = get_task("mnist1d_scale", tmp_path, seed=3, **SIZES)
    assert torch.equal(same.splits["train"].pool_index, task.splits["train"].pool_index)
    assert torch.equal(same.splits["train"].resolutions, task.splits["train"].resolutions)
    assert not torch.equal(other.splits["train"].pool_index, task.splits["train"].pool_index)


def test_download_option_is_accepted_and_unknown_ones_are_not(tmp_path):
    with pytest.raises(ValueError, match="extra_scaling"):
        get_task("mnist1d_scale", tmp_path, extra_scaling=True)


def test_task_with_augmentation_survives_pickling(tmp_path):
    # Ray and DataLoader workers pickle what they are given.
    task = get_task("mnist1d_scale", tmp_path, circular_shift=True, **SIZES)
    copy = pickle.loads(pickle.dumps(task))
    (x, y, r), (xc, yc, rc) = (
        next(iter(task.loader("train", 10))),
        next(iter(copy.loader("train", 10))),
    )
    torch.testing.assert_close(x, xc)
    assert torch.equal(y, yc) and r == rc
    assert not torch.equal(
        x, task.splits["train"].fetch(task.loader("train", 10).sampler.batches()[0][1])
    )
