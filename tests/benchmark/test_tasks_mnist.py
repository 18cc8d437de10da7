"""MNIST-scale in both protocols: from the real MNIST test split when SEFL_DATA_DIR has it,
and from small files in the real IDX format otherwise."""

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.tasks import get_task, list_tasks
from benchmark.tasks.idx import read_idx
from benchmark.tasks.mnist_source import write_mnist_split
from sefl.spectral import resample

MEAN, STD = 0.0607, 0.2161
SMALL = {"n_train": 420, "n_val": 105, "n_test": 630}  # multiples of 21 resolutions


@pytest.fixture(autouse=True)
def _cache_beside_the_data(monkeypatch):
    monkeypatch.delenv("SEFL_CACHE_DIR", raising=False)  # caches go to <data_dir>/cache


@pytest.fixture(scope="module")
def real_dir():
    data_dir = os.environ.get("SEFL_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "mnist").is_dir():
        pytest.skip(
            "real MNIST absent: set SEFL_DATA_DIR to the folder that holds mnist/ "
            "(on the project machines ../shared/data)"
        )
    return Path(data_dir)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def fourier(real_dir, cache_dir):
    return get_task("mnist_scale", real_dir, cache_dir=cache_dir, protocol="fourier", **SMALL)


@pytest.fixture(scope="module")
def sesn(real_dir, cache_dir):
    return get_task(
        "mnist_scale", real_dir, cache_dir=cache_dir, protocol="sesn", extra_scaling=True, **SMALL
    )


@pytest.fixture(scope="module")
def real_pool(real_dir):
    images = read_idx(real_dir / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(real_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")
    return torch.from_numpy(images).double() / 255.0, torch.from_numpy(labels.astype(np.int64))


def test_task_names():
    assert list_tasks() == ["mnist1d_scale", "mnist_scale", "stl10_scale"]


def test_fourier_layout(fourier):
    assert (fourier.name, fourier.protocol, fourier.ndim) == ("mnist_scale", "fourier", 2)
    assert (fourier.in_channels, fourier.num_classes, fourier.canvas) == (1, 10, 28)
    assert fourier.resolutions == list(range(8, 29))
    assert (fourier.mean, fourier.std) == ((MEAN,), (STD,))
    assert fourier.metadata["split_sizes"] == {"train": 420, "val": 105, "test": 630}
    assert fourier.metadata["reduced_size_warning"] is None
    assert fourier.metadata["splits_present"] == ["test"]


@pytest.mark.parametrize("split, per_resolution", [("train", 20), ("val", 5), ("test", 30)])
def test_fourier_resolutions_balanced(fourier, split, per_resolution):
    counts = fourier.metadata["per_resolution_counts"][split]
    assert counts == {r: per_resolution for r in range(8, 29)}
    data = fourier.splits[split]
    for c in range(10):
        of_class = data.resolutions[data.labels == c]
        per_r = torch.stack([(of_class == r).sum() for r in range(8, 29)])
        assert per_r.max() - per_r.min() <= 1


def test_splits_are_disjoint_and_stratified(fourier, real_pool):
    labels = real_pool[1]
    share = torch.bincount(labels, minlength=10).double() / len(labels)
    seen = torch.cat([fourier.splits[s].pool_index for s in ("train", "val", "test")])
    assert len(torch.unique(seen)) == len(seen)
    for split in ("train", "val", "test"):
        data = fourier.splits[split]
        assert torch.equal(data.labels, labels[data.pool_index])
        counts = torch.bincount(data.labels, minlength=10).double()
        assert (counts - len(data) * share).abs().max() <= 3


@pytest.mark.parametrize("split, item", [("train", 0), ("val", 7), ("test", 11), ("test", 629)])
def test_fourier_items_are_ideal_downscales_of_the_digit(fourier, real_pool, split, item):
    data = fourier.splits[split]
    x, y, r = data[item]
    digit = real_pool[0][data.pool_index[item]]
    expected = digit if r == 28 else resample(digit, r)
    assert x.shape == (1, r, r) and y == int(real_pool[1][data.pool_index[item]])
    torch.testing.assert_close(x[0], ((expected - MEAN) / STD).float(), atol=1e-5, rtol=1e-5)


def test_equivariance_images_are_full_size_test_digits(fourier, real_pool):
    images = fourier.equivariance_images(6, seed=2)
    assert images.shape == (6, 1, 28, 28)
    test_digits = ((real_pool[0][fourier.splits["test"].pool_index] - MEAN) / STD).float()
    for image in images:
        assert (test_digits - image[0]).abs().flatten(1).amax(1).min() < 1e-5


@pytest.mark.parametrize("canvas_mode", ["pad", "resize"])
def test_fourier_canvas_modes(real_dir, cache_dir, canvas_mode):
    task = get_task("mnist_scale", real_dir, cache_dir=cache_dir, canvas_mode=canvas_mode, **SMALL)
    assert task.metadata["loaded_from_cache"]  # loader-only options share the built tensors
    (xn, _, r), (xc, _, rc) = (
        next(iter(task.loader("val", 4))),
        next(iter(task.loader("val", 4, input_mode="canvas"))),
    )
    assert rc == r == 8 and xc.shape == (4, 1, 28, 28)
    if canvas_mode == "pad":
        torch.testing.assert_close(xc[..., 10:18, 10:18], xn)
        assert xc[..., :10, :].abs().max() == 0
    else:
        torch.testing.assert_close(resample(xc, 8), xn, atol=1e-5, rtol=1e-5)


def test_fourier_circular_shift_rolls_training_batches(real_dir, cache_dir):
    task = get_task("mnist_scale", real_dir, cache_dir=cache_dir, circular_shift=True, **SMALL)
    x, _, _ = next(iter(task.loader("train", 20, seed=5)))
    batch = task.loader("train", 20, seed=5).sampler.batches()[0][1]
    plain = task.splits["train"].fetch(batch)
    assert not torch.equal(x, plain)
    torch.testing.assert_close(x.sum(dim=(-2, -1)), plain.sum(dim=(-2, -1)))  # a permutation


def test_sesn_items_are_rescaled_digits_on_the_canvas(sesn, real_pool):
    assert sesn.protocol == "sesn" and sesn.resolutions == list(range(8, 29))
    assert sesn.metadata["per_resolution_counts"]["test"] == {28: 630}
    data = sesn.splits["test"]
    ink = (data.fetch(torch.arange(len(data))) * STD + MEAN).sum(dim=(1, 2, 3)).double()
    original = real_pool[0][data.pool_index].sum(dim=(1, 2))
    ratio = ink / original
    # Area scales with the square of a factor in [0.3, 1.0] (bicubic overshoot is clipped).
    assert ratio.min() > 0.3**2 * 0.8 and ratio.max() < 1.1
    assert ratio.min() < 0.2 and ratio.max() > 0.8
    assert sesn.equivariance_images(3).shape == (3, 1, 28, 28)


def test_sesn_extra_scaling_changes_training_batches_only(sesn):
    x, _, r = next(iter(sesn.loader("train", 32, seed=0)))
    batch = sesn.loader("train", 32, seed=0).sampler.batches()[0][1]
    assert r == 28 and not torch.allclose(x, sesn.splits["train"].fetch(batch))
    torch.testing.assert_close(x, next(iter(sesn.loader("train", 32, seed=0)))[0])
    xv, _, _ = next(iter(sesn.loader("val", 32)))
    torch.testing.assert_close(xv, sesn.splits["val"].fetch(torch.arange(32)))


def test_determinism_of_splits_resolutions_and_batches(real_dir, tmp_path, fourier):
    again = get_task("mnist_scale", real_dir, cache_dir=tmp_path, **SMALL)  # rebuilt
    other = get_task("mnist_scale", real_dir, cache_dir=tmp_path, seed=1, **SMALL)
    assert not again.metadata["loaded_from_cache"]
    for split in ("train", "test"):
        assert torch.equal(again.splits[split].pool_index, fourier.splits[split].pool_index)
        assert torch.equal(again.splits[split].resolutions, fourier.splits[split].resolutions)
        assert not torch.equal(other.splits[split].pool_index, fourier.splits[split].pool_index)
    order = lambda task: [i.tolist() for _, i in task.loader("train", 10).sampler.batches()]
    assert order(again) == order(fourier) and order(other) != order(fourier)


def test_default_sizes_are_reduced_with_one_warning(real_dir, cache_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks"):
        task = get_task("mnist_scale", real_dir, cache_dir=cache_dir)
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1
    assert task.metadata["split_sizes"] == {"train": 1428, "val": 285, "test": 7142}
    for text in ("1428", "285", "7142", "10000"):
        assert text in records[0].getMessage()
    assert task.metadata["reduced_size_warning"] == records[0].getMessage()


def test_a_written_n_train_is_kept_and_the_test_split_shrinks(real_dir, cache_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks"):
        task = get_task("mnist_scale", real_dir, cache_dir=cache_dir, n_train=1000)
    assert task.metadata["split_sizes"] == {"train": 1000, "val": 2000, "test": 7000}
    assert len(task.splits["train"]) == 1000
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "train 1000 / val 2000 / test 7000" in record.getMessage()
    # 1000 images over 21 resolutions (47 or 48 each) at the published batch 128: one batch
    # per resolution, every image used.
    loader = task.loader("train", 128)
    assert len(loader) == 21 and sum(len(y) for _, y, _ in loader) == 1000


def _fake_mnist(data_dir, splits=("train", "test"), n=60):
    rng = np.random.default_rng(0)
    for split in splits:
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        write_mnist_split(data_dir / "mnist", split, images, np.arange(n) % 10)


def test_both_splits_are_pooled(tmp_path):
    _fake_mnist(tmp_path)
    task = get_task("mnist_scale", tmp_path, n_train=42, n_val=21, n_test=42)
    assert task.metadata["pool_size"] == 120 and task.metadata["splits_present"] == [
        "train",
        "test",
    ]
    assert Path(task.metadata["cache_file"]).parent == tmp_path / "cache"
    pooled = torch.cat([s.pool_index for s in task.splits.values()])
    assert pooled.max() >= 60 and pooled.min() < 60  # drawn from both files


@pytest.mark.parametrize(
    "protocol, message",
    [
        ({"protocol": "sesn+"}, "protocol='sesn\\+'"),
        ({"protocol": "fourier", "extra_scaling": True}, "extra_scaling"),
        ({"resolution": 8}, "unknown option.*resolution"),
        ({"canvas_mode": "crop"}, "canvas_mode='crop'"),
        ({"n_train": -5}, "n_train=-5"),
        ({"min_resolution": 29}, "min_resolution=29"),
        ({"n_train": 100, "n_val": 20, "n_test": 100}, r"120 images present.*n_val <= 119"),
    ],
)
def test_bad_protocols_raise_and_leave_no_cache(tmp_path, protocol, message):
    _fake_mnist(tmp_path)
    with pytest.raises(ValueError, match=message):
        get_task("mnist_scale", tmp_path, **protocol)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="unknown task 'cifar'.*mnist_scale"):
        get_task("cifar")


def test_missing_data_names_folder(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path / 'mnist'}.*t10k-images-idx3-ubyte"):
        get_task("mnist_scale", tmp_path)


def test_malformed_file_raises_naming_it_and_leaves_no_cache(tmp_path):
    _fake_mnist(tmp_path, splits=("test",))
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:30])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        get_task("mnist_scale", tmp_path, n_train=10, n_val=10, n_test=10)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
