"""Split sizes, stratified splits, balanced resolutions, seeding and option checking."""

import pytest
import torch

from benchmark.tasks.options import Option, choice, integer, resolve_options
from benchmark.tasks.resolutions import balanced_resolutions, downscale_groups, resolution_grid
from benchmark.tasks.seeding import seeded_generator
from benchmark.tasks.splits import plan_sizes, stratified_split
from sefl.spectral import resample


@pytest.fixture(autouse=True)
def _fixed_torch_seed():
    torch.manual_seed(0)  # test inputs are random but the same on every run


PROTOCOL = {"train": 10_000, "val": 2_000, "test": 50_000}


UNWRITTEN = {"train": None, "val": None, "test": None}


def test_plan_sizes_keeps_sizes_that_fit():
    assert plan_sizes(UNWRITTEN, PROTOCOL, 70_000, 70_000, "MNIST") == (PROTOCOL, None)
    small = {"train": 300, "val": 50, "test": 400}
    assert plan_sizes(small, PROTOCOL, 10_000, 70_000, "MNIST") == (small, None)


def test_plan_sizes_reduces_the_protocol_proportionally_when_data_is_missing():
    sizes, warning = plan_sizes(UNWRITTEN, PROTOCOL, 10_000, 70_000, "MNIST")
    assert sizes == {"train": 1428, "val": 285, "test": 7142}
    assert "1428" in warning and "7142" in warning and "10000 of the protocol's 70000" in warning


@pytest.mark.parametrize(
    "written, expected",
    [
        # The data-efficiency rows: n_train as written, the protocol's val, the rest for test.
        ({"train": 1000, "val": None, "test": None}, {"train": 1000, "val": 2000, "test": 7000}),
        ({"train": 2500, "val": None, "test": None}, {"train": 2500, "val": 2000, "test": 5500}),
        ({"train": 5000, "val": None, "test": None}, {"train": 5000, "val": 2000, "test": 3000}),
        # A written test size shrinks first; written train and val never change.
        ({"train": 5000, "val": 1000, "test": 8000}, {"train": 5000, "val": 1000, "test": 4000}),
        # Train and val do not fit with the protocol's val: val (not written) is scaled.
        ({"train": 9000, "val": None, "test": None}, {"train": 9000, "val": 285, "test": 715}),
        ({"train": None, "val": 500, "test": None}, {"train": 1428, "val": 500, "test": 7142}),
    ],
)
def test_plan_sizes_never_changes_a_written_train_or_val_size(written, expected):
    sizes, warning = plan_sizes(written, PROTOCOL, 10_000, 70_000, "MNIST")
    assert sizes == expected
    assert f"train {expected['train']} / val {expected['val']} / test {expected['test']}" in warning
    assert "10000 of the protocol's 70000" in warning


@pytest.mark.parametrize(
    "written, message",
    [
        ({"train": 9000, "val": 1000, "test": None}, (r"n_train \+ n_val <= 9999 \(you wrote "
         r"n_train=9000, n_val=1000\), or add the missing MNIST files")),
        ({"train": 10_000, "val": None, "test": None}, r"n_train \+ n_val <= 9999"),
    ],
)
def test_plan_sizes_refuses_when_train_and_val_alone_do_not_fit(written, message):
    with pytest.raises(ValueError, match=message):
        plan_sizes(written, PROTOCOL, 10_000, 70_000, "MNIST")


def test_plan_sizes_refuses_more_than_a_complete_pool():
    with pytest.raises(ValueError, match="exceeds the 70000 MNIST images available"):
        plan_sizes({"train": 60_000, "val": 6_000, "test": 6_000}, PROTOCOL, 70_000, 70_000,
                   "MNIST")


def _labels(counts):
    return torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])[
        torch.randperm(sum(counts))
    ]


@pytest.mark.parametrize("counts", [[100] * 10, [37, 50, 13, 99, 8], [27, 27, 27]])
@pytest.mark.parametrize("sizes", [[30, 5, 40], [21, 1, 3], [40, 0, 41]])
def test_stratified_split_is_disjoint_sized_and_stratified(counts, sizes):
    labels = _labels(counts)
    parts = stratified_split(labels, sizes, seeded_generator(0, "t"))
    assert [len(p) for p in parts] == sizes
    joined = torch.cat(parts)
    assert len(torch.unique(joined)) == len(joined)
    share = torch.tensor(counts, dtype=torch.float64) / sum(counts)
    for part, size in zip(parts, sizes):
        got = torch.bincount(labels[part], minlength=len(counts)).double()
        # Drawn one after another, each split is within one item per class of its share,
        # give or take the rounding of the splits before it.
        assert (got - size * share).abs().max() <= len(sizes)


def test_stratified_split_uses_every_item_when_sizes_sum_to_pool():
    labels = _labels([13, 29, 8])
    parts = stratified_split(labels, [25, 5, 20], seeded_generator(1, "t"))
    assert sorted(torch.cat(parts).tolist()) == list(range(50))


def test_stratified_split_follows_the_seed():
    labels = _labels([50] * 4)
    a = stratified_split(labels, [40, 20], seeded_generator(0, "split"))
    b = stratified_split(labels, [40, 20], seeded_generator(0, "split"))
    c = stratified_split(labels, [40, 20], seeded_generator(1, "split"))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize(
    "top, minimum, step, expected",
    [
        (28, 8, 1, list(range(8, 29))),
        (97, 49, 8, [49, 57, 65, 73, 81, 89, 97]),
        (72, 24, 10, [32, 42, 52, 62, 72]),
        (27, 27, 3, [27]),
    ],
)
def test_resolution_grid_ends_at_top(top, minimum, step, expected):
    assert resolution_grid(top, minimum, step) == expected


@pytest.mark.parametrize("n", [210, 211, 1000, 7])
def test_balanced_resolutions_overall_and_per_class(n):
    labels = torch.arange(n) % 10
    grid = list(range(8, 29))
    assigned = balanced_resolutions(labels, grid, seeded_generator(0, "r"))
    assert set(assigned.tolist()) <= set(grid)
    counts = torch.tensor([(assigned == r).sum() for r in grid])
    assert counts.max() - counts.min() <= 1
    for c in range(10):
        per_class = torch.tensor([((assigned == r) & (labels == c)).sum() for r in grid])
        assert per_class.max() - per_class.min() <= 1


def test_balanced_resolutions_follow_the_seed():
    labels = torch.arange(500) % 10
    a = balanced_resolutions(labels, [8, 12, 16], seeded_generator(0, "r"))
    assert torch.equal(a, balanced_resolutions(labels, [8, 12, 16], seeded_generator(0, "r")))
    assert not torch.equal(a, balanced_resolutions(labels, [8, 12, 16], seeded_generator(1, "r")))


@pytest.mark.parametrize("ndim, size", [(1, 72), (2, 28), (2, 27)])
def test_downscale_groups_match_per_image_ideal_downscaling(ndim, size):
    shape = (12, 2) + (size,) * ndim
    images = torch.randn(shape, dtype=torch.float64)
    resolutions = torch.tensor([7, size, 12, 7, 9, 12, 8, size, 7, 9, 8, 10])
    groups, position = downscale_groups(images, resolutions, ndim)
    for i, r in enumerate(resolutions.tolist()):
        expected = images[i] if r == size else resample(images[i], r, ndim)
        torch.testing.assert_close(groups[r][position[i]], expected)


def test_seeded_generator_separates_purposes():
    draw = lambda *key: torch.rand(3, generator=seeded_generator(*key))
    torch.testing.assert_close(draw(0, "a"), draw(0, "a"))
    assert not torch.equal(draw(0, "a"), draw(0, "b"))
    assert not torch.equal(draw(0, "a"), draw(1, "a"))


SCHEMA = {"mode": Option("x", choice("x", "y")), "n": Option(None, integer(1, 9, optional=True))}


def test_resolve_options_fills_defaults():
    assert resolve_options("t", SCHEMA, {"n": 3}) == {"mode": "x", "n": 3}


@pytest.mark.parametrize(
    "given, message",
    [
        ({"colour": 1}, "unknown option.*colour.*allowed: mode, n"),
        ({"mode": "z"}, "mode='z'.*'x', 'y'"),
        ({"n": 0}, "n=0 must be an int >= 1 and <= 9"),
        ({"n": True}, "n=True"),
        ({"n": 2.0}, "n=2.0"),
    ],
)
def test_resolve_options_names_the_bad_option(given, message):
    with pytest.raises(ValueError, match=message):
        resolve_options("t", SCHEMA, given)
