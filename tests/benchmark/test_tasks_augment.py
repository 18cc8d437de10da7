"""Training augmentations, each against a per-sample oracle."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from benchmark.tasks.augment import (
    CircularShift,
    Cutout,
    RandomCrop,
    RandomRescale,
    compose,
    horizontal_flip,
    rescale_about_centre,
)
from benchmark.tasks.seeding import seeded_generator


@pytest.fixture(autouse=True)
def _fixed_torch_seed():
    torch.manual_seed(0)  # test inputs are random but the same on every run


def _gen(seed=0):
    return seeded_generator(seed, "augment-test")


@pytest.mark.parametrize("shape", [(6, 2, 9, 9), (6, 2, 12, 12), (6, 1, 31), (6, 1, 24)])
def test_circular_shift_is_a_per_sample_roll(shape):
    x = torch.randn(shape)
    out = CircularShift(0.25)(x, _gen())
    assert out.shape == x.shape
    shifted = 0
    for a, b in zip(x, out):
        n = x.shape[-1]
        dims = tuple(range(1, a.dim()))
        rolls = [
            torch.roll(a, s, dims)
            for s in itertools.product(range(-n // 4 - 1, n // 4 + 2), repeat=len(dims))
        ]
        matches = [r for r in rolls if torch.equal(r, b)]
        assert matches, "output is not a circular shift of its input within the allowed range"
        shifted += not torch.equal(a, b)
    assert shifted > 0


def test_augmentations_follow_the_generator():
    x = torch.rand(8, 3, 20, 20)
    augment = compose(
        RandomCrop(4), horizontal_flip, Cutout(6, (0.5, 0.5, 0.5)), RandomRescale(0.5, 2.0)
    )
    torch.testing.assert_close(augment(x, _gen(0)), augment(x, _gen(0)))
    assert not torch.equal(augment(x, _gen(0)), augment(x, _gen(1)))
    assert compose(None, None) is None


@pytest.mark.parametrize("n", [15, 16])
def test_random_crop_is_a_window_of_the_zero_padded_image(n):
    x = torch.rand(5, 3, n, n) + 1.0  # no zeros in the image itself
    out = RandomCrop(3)(x, _gen())
    padded = F.pad(x, (3, 3, 3, 3))
    for a, b in zip(padded, out):
        windows = [a[:, i : i + n, j : j + n] for i in range(7) for j in range(7)]
        assert any(torch.equal(w, b) for w in windows)


def test_horizontal_flip_flips_some_and_keeps_others():
    x = torch.rand(32, 1, 5, 5)
    out = horizontal_flip(x, _gen())
    flipped = [torch.equal(b, a.flip(-1)) for a, b in zip(x, out)]
    kept = [torch.equal(b, a) for a, b in zip(x, out)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert any(flipped) and any(kept)


@pytest.mark.parametrize("n, size", [(96, 32), (17, 6)])
def test_cutout_fills_one_clipped_square_with_the_fill(n, size):
    x = torch.full((10, 3, n, n), 9.0)
    fill = (0.1, 0.2, 0.3)
    out = Cutout(size, fill)(x, _gen())
    for sample in out:
        hole = sample[0] != 9.0
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert 0 < len(rows) <= size and 0 < len(cols) <= size
        assert hole.sum() == len(rows) * len(cols)  # a rectangle
        assert len(rows) == size or rows[0] == 0 or rows[-1] == n - 1  # clipped only at borders
        for c, value in enumerate(fill):
            torch.testing.assert_close(sample[c][hole], torch.full((int(hole.sum()),), value))


def test_rescale_by_one_is_the_identity():
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    torch.testing.assert_close(rescale_about_centre(x, torch.ones(4, dtype=torch.float64)), x)


def test_rescale_shrinks_about_the_centre_with_black_fill():
    x = torch.ones(2, 1, 28, 28)
    out = rescale_about_centre(x, torch.tensor([0.5, 0.3]))
    assert out[0, 0, 0].abs().max() == 0 and out[0, 0, 14, 14] == 1.0
    # The footprint of the shrunk square is about factor * 28 pixels wide, centred.
    assert abs(int((out[0, 0, 14] > 0.5).sum()) - 14) <= 1
    assert abs(int((out[1, 0, 14] > 0.5).sum()) - 8) <= 1
    assert out.min() >= 0 and out.max() <= 1
