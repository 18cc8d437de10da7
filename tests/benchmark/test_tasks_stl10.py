"""STL-10-scale from a tiny dataset written in the exact STL-10 binary format."""

import logging

import numpy as np
import pytest
import torch

from benchmark.tasks import get_task
from benchmark.tasks.stl10_source import write_stl10_split
from sefl.spectral import resample

MEAN = torch.tensor([0.4467, 0.4398, 0.4066]).view(3, 1, 1)
STD = torch.tensor([0.2603, 0.2566, 0.2713]).view(3, 1, 1)


@pytest.fixture(autouse=True)
def _cache_beside_the_data(monkeypatch):
    monkeypatch.delenv("SEFL_CACHE_DIR", raising=False)  # caches go to <data_dir>/cache


@pytest.fixture(scope="module")
def stl_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("stl")
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 60)):
        images = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        write_stl10_split(data_dir / "stl10" / "stl10_binary", split, images, np.arange(n) % 10 + 1)
    return data_dir


@pytest.fixture(scope="module")
def pool(stl_dir):
    folder = stl_dir / "stl10" / "stl10_binary"
    images = [
        np.fromfile(folder / f"{s}_X.bin", np.uint8).reshape(-1, 3, 96, 96)
        for s in ("train", "test")
    ]
    # Stored column-major: swap back to rows first.
    return torch.from_numpy(np.concatenate(images).transpose(0, 1, 3, 2).copy()).double() / 255.0


@pytest.fixture(scope="module")
def task(stl_dir):
    return get_task("stl10_scale", stl_dir)


def test_small_pool_gives_proportional_sizes_and_one_warning(stl_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks"):
        task = get_task("stl10_scale", stl_dir, cache_dir=tmp_path)
    # 100 of the protocol's 13,000 images: 7000 / 1000 / 5000 scaled by 100 / 13000.
    assert task.metadata["split_sizes"] == {"train": 53, "val": 7, "test": 38}
    assert [r.getMessage() for r in caplog.records] == [task.metadata["reduced_size_warning"]]


def test_layout(task):
    assert (task.ndim, task.in_channels, task.num_classes, task.canvas) == (2, 3, 10, 97)
    assert task.resolutions == [49, 57, 65, 73, 81, 89, 97]
    counts = task.metadata["per_resolution_counts"]["train"]
    assert sorted(counts) == task.resolutions and max(counts.values()) - min(counts.values()) <= 1
    assert task.metadata["splits_present"] == ["train", "test"]


@pytest.mark.parametrize("item", [0, 5, 37])
def test_items_are_ideal_resamplings_of_the_normalised_image(task, pool, item):
    data = task.splits["test"]
    x, y, r = data[item]
    expected = resample((pool[data.pool_index[item]] - MEAN) / STD, r)
    assert x.shape == (3, r, r) and y == int(data.pool_index[item]) % 10  # labels cycle 1..10
    torch.testing.assert_close(x, expected.float(), atol=1e-5, rtol=1e-5)


def test_equivariance_images_at_97(task, pool):
    images = task.equivariance_images(3, seed=4)
    assert images.shape == (3, 3, 97, 97)
    # 97 > 96: band-limited up-sampling, so down-scaling back to 96 recovers the image's band.
    candidates = resample((pool - MEAN) / STD, 96).float()
    for image in resample(images.double(), 96).float():
        assert (candidates - image).abs().flatten(1).amax(1).min() < 1e-4


def test_training_augmentation_is_seeded_and_active(task):
    loader = task.loader("train", 4, seed=1)
    ((x, y, r),) = list(task.loader("train", 4, seed=1, limit=1))
    ((again, _, _),) = list(task.loader("train", 4, seed=1, limit=1))
    # Same images in both epochs (no shuffling), so only the augmentation differs.
    first, other = (
        next(iter(task.loader("train", 4, shuffle=False, seed=1, epoch=e)))[0] for e in (0, 1)
    )
    indices = loader.sampler.batches()[0][1]
    plain = task.splits["train"].fetch(indices)
    assert x.shape == (4, 3, r, r) and torch.equal(y, task.splits["train"].labels[indices])
    torch.testing.assert_close(x, again)
    assert not torch.allclose(x, plain, atol=1e-3) and not torch.allclose(first, other, atol=1e-3)


def test_canvas_is_97(task):
    x, _, r = next(iter(task.loader("test", 2, input_mode="canvas")))
    assert x.shape == (2, 3, 97, 97) and r == 49


def test_flat_stl10_binary_folder_is_accepted(tmp_path):
    images = np.zeros((20, 3, 96, 96), np.uint8)
    write_stl10_split(tmp_path / "stl10_binary", "test", images, np.arange(20) % 10 + 1)
    task = get_task("stl10_scale", tmp_path, n_train=10, n_val=5, n_test=5, resolution_step=16)
    assert task.resolutions == [49, 65, 81, 97] and task.metadata["splits_present"] == ["test"]


def test_missing_stl10_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="stl10_binary.*train_X.bin.*download=True"):
        get_task("stl10_scale", tmp_path)


def test_bad_labels_name_the_file_and_leave_no_cache(tmp_path):
    write_stl10_split(
        tmp_path / "stl10_binary", "test", np.zeros((5, 3, 96, 96), np.uint8), [1, 2, 3, 4, 5]
    )
    (tmp_path / "stl10_binary" / "test_y.bin").write_bytes(bytes([1, 2, 3, 4, 12]))
    with pytest.raises(ValueError, match="test_y.bin holds label 12"):
        get_task("stl10_scale", tmp_path)
    assert not (tmp_path / "cache").exists()
