"""The batch samplers (single- and mixed-resolution) and the loader on a small in-memory task."""

import pytest
import torch
from torch.utils.data import DataLoader

from benchmark.tasks.dataset import GroupedStore, ScaleSplit
from benchmark.tasks.resolutions import downscale_groups
from benchmark.tasks.sampler import MixedBatchSampler, ResolutionBatchSampler, batch_sizes
from benchmark.tasks.task import Task
from sefl.spectral import resample

RESOLUTIONS = torch.tensor([8, 9, 8, 10, 9, 8, 8, 10, 9, 8, 10, 10, 9, 8, 9, 10, 8])


def _batches(**kwargs):
    return ResolutionBatchSampler(RESOLUTIONS, **kwargs).batches()


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 5, 6, 7, 128])
def test_training_batches_use_every_item_once_with_one_resolution_and_no_batch_of_one(
    batch_size,
):
    sampler = ResolutionBatchSampler(RESOLUTIONS, batch_size, shuffle=True, merge_single=True)
    batches = sampler.batches()
    assert len(batches) == len(sampler)
    used = torch.cat([i for _, i in batches])
    assert sorted(used.tolist()) == list(range(len(RESOLUTIONS)))  # each item exactly once
    for r, indices in batches:
        assert bool((RESOLUTIONS[indices] == r).all())
        assert len(indices) <= batch_size + 1
        assert len(indices) >= 2 or batch_size == 1
    # 7 eights, 5 nines, 5 tens, e.g. at 3: [3, 4], [3, 2], [3, 2].
    assert len(batches) == {1: 17, 2: 7, 3: 6, 4: 4, 5: 4, 6: 3, 7: 3, 128: 3}[batch_size]


@pytest.mark.parametrize(
    "count, batch_size, merge, sizes",
    [
        (47, 128, True, [47]),
        (129, 128, True, [129]),
        (129, 128, False, [128, 1]),
        (257, 128, True, [128, 129]),
        (300, 128, True, [128, 128, 44]),
        (1, 128, True, [1]),
        (0, 4, True, []),
        (5, 1, True, [1] * 5),
    ],
)
def test_batch_sizes_keep_the_remainder_and_merge_a_single_one(count, batch_size, merge, sizes):
    assert batch_sizes(count, batch_size, merge) == sizes
    assert sum(sizes) == count


@pytest.mark.parametrize("batch_size", [2, 4, 100])
def test_eval_batches_keep_every_item_in_order(batch_size):
    sampler = ResolutionBatchSampler(RESOLUTIONS, batch_size, shuffle=False, merge_single=False)
    batches = sampler.batches()
    assert len(batches) == len(sampler)
    assert [r for r, _ in batches] == sorted(r for r, _ in batches)
    order = torch.cat([i for _, i in batches])
    assert sorted(order.tolist()) == list(range(len(RESOLUTIONS)))
    for r, indices in batches:
        assert bool((RESOLUTIONS[indices] == r).all())
        assert indices.tolist() == sorted(indices.tolist())


def test_batch_order_follows_seed_and_epoch():
    base = _batches(batch_size=2, shuffle=True, merge_single=True, seed=0, epoch=0)
    same = _batches(batch_size=2, shuffle=True, merge_single=True, seed=0, epoch=0)
    flat = lambda bs: [i.tolist() for _, i in bs]
    assert flat(base) == flat(same)
    assert flat(base) != flat(_batches(batch_size=2, shuffle=True, merge_single=True, seed=1, epoch=0))
    assert flat(base) != flat(_batches(batch_size=2, shuffle=True, merge_single=True, seed=0, epoch=1))


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True])
def test_bad_batch_size_is_named(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        ResolutionBatchSampler(RESOLUTIONS, batch_size, shuffle=False, merge_single=False)


def _task(canvas_mode="pad", augment=None):
    labels = torch.arange(len(RESOLUTIONS)) % 3
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(len(RESOLUTIONS), 2, 12, 12, dtype=torch.float64, generator=generator)
    groups, position = downscale_groups(images, RESOLUTIONS, 2)
    splits = {
        name: ScaleSplit(
            GroupedStore(groups, position, images, augment if name == "train" else None),
            labels,
            RESOLUTIONS,
            torch.arange(len(labels)),
            (0.5, 0.25),
            (2.0, 4.0),
        )
        for name in ("train", "val", "test")
    }
    task = Task(
        protocol="fourier",
        ndim=2,
        in_channels=2,
        num_classes=3,
        canvas=12,
        resolutions=[8, 9, 10, 12],
        mean=(0.5, 0.25),
        std=(2.0, 4.0),
        name="toy",
        splits=splits,
        canvas_mode=canvas_mode,
    )
    return task, images


def _normalised(x):
    return (x - torch.tensor([0.5, 0.25]).view(2, 1, 1)) / torch.tensor([2.0, 4.0]).view(2, 1, 1)


def test_items_are_normalised_ideal_downscales():
    task, images = _task()
    for i in (0, 3, 16):
        x, y, r = task.splits["test"][i]
        assert r == int(RESOLUTIONS[i]) and y == i % 3 and x.dtype == torch.float32
        torch.testing.assert_close(x, _normalised(resample(images[i], r)).float())


@pytest.mark.parametrize("canvas_mode", ["pad", "resize"])
def test_canvas_modes(canvas_mode):
    task, _ = _task(canvas_mode)
    native = list(task.loader("test", 3))
    on_canvas = list(task.loader("test", 3, input_mode="canvas"))
    for (xn, yn, rn), (xc, yc, rc) in zip(native, on_canvas):
        assert xc.shape[-2:] == (12, 12) and rn == rc and torch.equal(yn, yc)
        if canvas_mode == "pad":
            start = (12 - rn) // 2
            torch.testing.assert_close(xc[..., start : start + rn, start : start + rn], xn)
            torch.testing.assert_close(xc.abs().sum(), xn.abs().sum())  # zeros around it
        else:
            # Ideal up-sampling loses nothing: down-scaling it again gives the native image.
            torch.testing.assert_close(resample(xc, rn), xn, atol=1e-5, rtol=1e-5)


def test_loader_serves_labels_limit_and_len():
    task, _ = _task()
    loader = task.loader("train", 2, seed=3)
    batches = list(loader)
    assert len(batches) == len(loader) == 7  # 7 eights, 5 nines, 5 tens -> 3 + 2 + 2
    assert len(list(task.loader("train", 2, limit=4))) == len(task.loader("train", 2, limit=4)) == 4
    for x, y, r in batches:
        assert x.shape == (len(y), 2, r, r) and len(y) in (2, 3) and y.dtype == torch.long


def test_loader_applies_training_augmentation_only_to_train():
    calls = []

    def mark(x, generator):
        calls.append(len(x))
        return x + 100.0

    task, _ = _task(augment=mark)
    train = next(iter(task.loader("train", 2)))[0]
    test = next(iter(task.loader("test", 2)))[0]
    assert calls == [len(train)] and train.min() > 10 and test.max() < 10


def test_loader_serves_every_training_item_at_a_batch_larger_than_a_resolution():
    task, _ = _task()
    batches = list(task.loader("train", 6, seed=1))
    # 7 eights -> 6 + 1 merged into 7, 5 nines, 5 tens: one batch each.
    assert sorted(len(y) for _, y, _ in batches) == [5, 5, 7]
    assert sum(len(y) for _, y, _ in batches) == len(RESOLUTIONS)
    assert len(task.loader("test", 6)) == 4  # 7 eights -> 6 + 1 (no merging), nines, tens


def test_loader_refuses_a_resolution_with_one_training_item_and_bad_arguments():
    task, _ = _task()
    single = task.splits["train"]
    single.resolutions = torch.where(torch.arange(len(RESOLUTIONS)) == 3, 11, RESOLUTIONS)
    with pytest.raises(ValueError, match=r"single item at resolution\(s\) \[11\].*n_train >= 8"):
        task.loader("train", 2)
    assert len(task.loader("train", 1)) == len(RESOLUTIONS)  # batches of one were asked for
    with pytest.raises(ValueError, match="split='dev'"):
        task.loader("dev", 2)
    with pytest.raises(ValueError, match="input_mode='padded'"):
        task.loader("test", 2, input_mode="padded")
    with pytest.raises(ValueError, match="limit=0"):
        task.loader("test", 2, limit=0)


def test_sampler_works_with_torch_dataloader():
    task, _ = _task()
    sampler = ResolutionBatchSampler(RESOLUTIONS, 2, shuffle=False, merge_single=False)
    ours = list(task.loader("test", 2))
    for (x, y, r), (xo, yo, ro) in zip(
        DataLoader(task.splits["test"], batch_sampler=sampler), ours
    ):
        torch.testing.assert_close(x, xo)
        assert torch.equal(y, yo) and bool((r == ro).all())


def test_equivariance_images_are_seeded_top_resolution_test_images():
    task, images = _task()
    chosen = task.equivariance_images(4, seed=1)
    assert chosen.shape == (4, 2, 12, 12)
    torch.testing.assert_close(chosen, task.equivariance_images(4, seed=1))
    rows = [
        i
        for c in chosen
        for i in range(len(images))
        if torch.allclose(_normalised(images[i]).float(), c, atol=1e-6)
    ]
    assert len(set(rows)) == 4
    with pytest.raises(ValueError, match="n=18"):
        task.equivariance_images(18)


def test_fetch_refuses_mixed_resolutions():
    task, _ = _task()
    with pytest.raises(ValueError, match=r"one resolution, got resolutions \[8, 9\]"):
        task.splits["test"].fetch(torch.tensor([0, 1]))


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 16, 128])
def test_mixed_batches_use_every_item_once_across_resolutions(batch_size):
    sampler = MixedBatchSampler(RESOLUTIONS, batch_size, shuffle=True, merge_single=True, seed=2)
    batches = sampler.batches()
    assert len(batches) == len(sampler) == len(batch_sizes(17, batch_size, True))
    assert all(r is None for r, _ in batches)
    used = torch.cat([i for _, i in batches])
    assert sorted(used.tolist()) == list(range(len(RESOLUTIONS)))
    assert [len(i) for _, i in batches] == batch_sizes(17, batch_size, True)
    if batch_size >= 4:  # a shuffle of 17 items over 3 resolutions mixes them
        assert any(len(set(RESOLUTIONS[i].tolist())) > 1 for _, i in batches)
    same = MixedBatchSampler(RESOLUTIONS, batch_size, shuffle=True, merge_single=True, seed=2)
    assert [i.tolist() for _, i in same.batches()] == [i.tolist() for _, i in batches]
    other_epoch = MixedBatchSampler(RESOLUTIONS, batch_size, shuffle=True, merge_single=True,
                                    seed=2, epoch=1)
    assert torch.cat([i for _, i in other_epoch.batches()]).tolist() != used.tolist()
    ordered = MixedBatchSampler(RESOLUTIONS, batch_size, shuffle=False, merge_single=False)
    assert torch.cat([i for _, i in ordered.batches()]).tolist() == list(range(17))


@pytest.mark.parametrize("canvas_mode", ["pad", "resize"])
def test_mixed_loader_puts_each_item_on_the_canvas_as_alone(canvas_mode):
    task, _ = _task(canvas_mode)
    batches = list(task.loader("val", 5, input_mode="canvas", shuffle=True, seed=4, mixed=True))
    assert len(batches) == 4 and all(r is None for _, _, r in batches)
    order = torch.cat([i for _, i in MixedBatchSampler(RESOLUTIONS, 5, True, False, seed=4)
                       .batches()])
    x = torch.cat([b[0] for b in batches])
    assert x.shape == (17, 2, 12, 12)
    for row, item in enumerate(order.tolist()):
        single = task.splits["val"].fetch(torch.tensor([item]))
        if canvas_mode == "pad":
            r = int(RESOLUTIONS[item])
            start = (12 - r) // 2
            torch.testing.assert_close(x[row, :, start:start + r, start:start + r], single[0])
            torch.testing.assert_close(x[row].abs().sum(), single.abs().sum())
        else:
            torch.testing.assert_close(resample(x[row], int(RESOLUTIONS[item])), single[0],
                                       atol=1e-5, rtol=1e-5)
    assert torch.equal(torch.cat([b[1] for b in batches]), task.splits["val"].labels[order])


def test_mixed_training_batches_are_augmented_and_need_a_canvas():
    calls = []

    def mark(x, generator):
        calls.append(x.shape[-1])
        return x + 100.0

    task, _ = _task(augment=mark)
    x, y, r = next(iter(task.loader("train", 17, input_mode="canvas", mixed=True)))
    # one call per resolution, at that resolution, and every image marked
    assert r is None and len(y) == 17 and sorted(calls) == [8, 9, 10]
    assert bool((x.flatten(1).amax(1) > 10).all())
    # a single item at one resolution is no batch of one when batches mix resolutions
    task.splits["train"].resolutions = torch.where(torch.arange(17) == 3, 11, RESOLUTIONS)
    assert len(task.loader("train", 2, input_mode="canvas", mixed=True)) == 8  # 2 * 7 + 3
    with pytest.raises(ValueError, match="mixed=True needs input_mode='canvas'"):
        task.loader("train", 2, mixed=True)
