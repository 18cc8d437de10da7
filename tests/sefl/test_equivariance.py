"""The equivariance error and scale consistency (sefl.equivariance), and the centred canvas
footprint it compares (sefl.canvas)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sefl.canvas import crop_footprint, pad_to_canvas
from sefl.equivariance import (
    MIN_POINTS,
    default_eps,
    downscale,
    equivariance_error,
    pooled_error,
    scale_consistency,
)
from sefl.models import FourierSE2d
from sefl.spectral import resample

DTYPES = st.sampled_from([torch.float64, torch.float32])


class PlainCNN(nn.Module):
    """Two 3x3 convs with ReLU at the input's own resolution: not scale-equivariant.

    ``scale`` multiplies every feature map; ``input_mode`` may be set to "canvas"."""

    input_mode = "native"

    def __init__(self, scale: float = 1.0):
        super().__init__()
        torch.manual_seed(0)
        self.convs = nn.ModuleList([nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)])
        self.scale = scale

    def features(self, x):
        out = []
        for conv in self.convs:
            x = torch.relu(conv(x))
            out.append(self.scale * x)
        return out

    def forward(self, x):
        return self.features(x)[-1].mean((-1, -2))


class CanvasCNN(nn.Module):
    """conv -> ReLU -> MaxPool -> BN twice on a 28 canvas (pools 2 and 4: maps 14 and 7, as the
    MNIST baselines' blocks), then a linear head."""

    input_mode = "canvas"

    def __init__(self, classes: int = 2):
        super().__init__()
        torch.manual_seed(0)
        self.blocks = nn.ModuleList([
            nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.BatchNorm2d(8)),
            nn.Sequential(nn.Conv2d(8, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.BatchNorm2d(8)),
        ])
        self.head = nn.Linear(8 * 7 * 7, classes)

    def features(self, x):
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def forward(self, x):
        return self.head(self.features(x)[-1].flatten(1))


class Pooled(nn.Module):
    """A canvas model whose maps are the input average-pooled by each of ``factors``."""

    input_mode = "canvas"

    def __init__(self, factors):
        super().__init__()
        self.factors = factors

    def features(self, x):
        return [nn.functional.avg_pool2d(x, k) for k in self.factors]


class Identity(nn.Module):
    input_mode = "native"

    def features(self, x):
        return [x]


class Squares(nn.Module):
    """f(x) = x^2 pointwise: the error has a closed form on a tiny case."""

    input_mode = "native"

    def features(self, x):
        return [x * x]


@pytest.mark.parametrize(("dtype", "bound"), [(torch.float64, 1e-10), (torch.float32, 1e-8)])
def test_sefl_error_is_zero_to_rounding(dtype, bound):
    torch.manual_seed(0)
    model = FourierSE2d(width=0.125).to(dtype).eval()
    x = torch.randn(3, 1, 28, 28, dtype=dtype)
    err = equivariance_error(model, x, range(8, 29))
    assert err.error <= bound and err.first_error <= bound
    assert len(err.per_block) == 4 and max(err.per_block) <= bound
    assert sorted(err.per_resolution) == list(range(8, 28))
    assert err.measured == [list(range(8, 28))] * 4


def test_plain_cnn_error_is_clearly_nonzero():
    x = torch.randn(4, 1, 28, 28)
    err = equivariance_error(PlainCNN().eval(), x, [8, 14, 20, 28])
    assert err.error > 1e-3 and err.first_error > 1e-3
    assert err.first_error == err.per_block[0] and err.error == err.per_block[-1]
    assert set(err.per_resolution) == {8, 14, 20} == set(err.first_per_resolution)


def test_identity_has_zero_error_with_ideal_and_nonzero_with_bicubic():
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    assert equivariance_error(Identity(), x, [8, 12], mode="ideal").error <= 1e-20
    assert equivariance_error(Identity(), x, [8, 12], mode="bicubic").error > 1e-3


def test_error_matches_a_hand_computed_value():
    # One image of 4 points, one channel: x = [1, 0, 0, 0] (1D), f(x) = x^2, r = 3.
    x = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]], dtype=torch.float64)
    # D_3 keeps k in {-1, 0, 1}: x_3 = [1/4 + 1/2, 1/4 - 1/4, 1/4 - 1/4] = [3/4, 0, 0].
    torch.testing.assert_close(
        resample(x, 3, 1), torch.tensor([[[0.75, 0.0, 0.0]]], dtype=torch.float64)
    )
    got = equivariance_error(Squares(), x, [3]).error
    # a = D_3 of [1,0,0,0] = [3/4, 0, 0]; b = [9/16, 0, 0]; e = (3/16)^2 / (3/4)^2 = 1/16.
    assert got == pytest.approx(1 / 16, rel=1e-12)


def test_two_channels_pool_their_energy():
    # Channel 0: a = [2, 0, 0], b = [1, 0, 0]; channel 1: a = [0, 1, 0], b = [0, 1, 1].
    a = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    b = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]], dtype=torch.float64)
    # (1 + 1) / (4 + 1), where the per-channel mean would be (1/4 + 1) / 2.
    assert float(pooled_error(a, b)) == pytest.approx(2 / 5, rel=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 6),
    size=st.integers(1, 9),
    ndim=st.sampled_from([1, 2]),
    dtype=DTYPES,
    seed=st.integers(0, 10_000),
)
def test_pooled_error_is_the_energy_weighted_mean_of_the_channel_ratios(
    batch, channels, size, ndim, dtype, seed
):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, channels, *([size] * ndim))
    # Channel energies spread over 12 orders of magnitude, as batch norm leaves them.
    gains = 10.0 ** (12 * torch.rand(1, channels, *([1] * ndim), generator=g) - 6)
    a = (gains * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
    b = a + (gains * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
    space = tuple(range(2, a.dim()))
    energy = a.double().pow(2).sum(space)
    ratios = (a - b).double().pow(2).sum(space) / energy
    weighted = (energy * ratios).sum(1) / energy.sum(1)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(pooled_error(a, b).double(), weighted, rtol=tol, atol=0)


@settings(max_examples=15, deadline=None)
@given(
    scale=st.floats(1e-3, 1e3),
    dtype=DTYPES,
    canvas=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_scaling_the_features_does_not_change_the_error(scale, dtype, canvas, seed):
    x = torch.randn(2, 1, 20, 20, generator=torch.Generator().manual_seed(seed)).to(dtype)
    base, scaled = PlainCNN().to(dtype).eval(), PlainCNN(scale).to(dtype).eval()
    for model in (base, scaled):
        model.input_mode = "canvas" if canvas else "native"
    resolutions = [9, 14, 20]
    want = equivariance_error(base, x, resolutions).per_block_resolution
    got = equivariance_error(scaled, x, resolutions).per_block_resolution
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    for w, g in zip(want, got):
        assert w.keys() == g.keys()
        for r in w:
            assert g[r] == pytest.approx(w[r], rel=tol)


def _trained_canvas_cnn(dtype: torch.dtype) -> tuple[nn.Module, torch.Tensor]:
    """CanvasCNN trained 40 Adam steps on a synthetic scale task (is the blob's mass in the top
    half?) with images at 8..28 on the canvas; returns it in eval mode and 16 test images."""
    g = torch.Generator().manual_seed(0)

    def images(n):
        x = resample(torch.rand(n, 1, 6, 6, generator=g, dtype=torch.float64), 28)
        return x.to(dtype), (x[..., :14, :].sum((1, 2, 3)) > x[..., 14:, :].sum((1, 2, 3)))

    model = CanvasCNN().to(dtype)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(40):
        x, y = images(16)
        x = pad_to_canvas(downscale(x, 8 + step % 21), 28)
        loss = nn.functional.cross_entropy(model(x), y.long())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval(), images(16)[0]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_eps_changes_a_trained_canvas_cnn_by_under_one_percent(dtype):
    model, x = _trained_canvas_cnn(dtype)
    resolutions = list(range(8, 29))
    with_eps = equivariance_error(model, x, resolutions)
    without = equivariance_error(model, x, resolutions, eps=0.0)
    for w, n in zip(with_eps.per_block_resolution, without.per_block_resolution):
        assert w.keys() == n.keys() and w
        for r in w:
            assert math.isfinite(n[r]) and abs(w[r] - n[r]) <= 0.01 * n[r]
    assert 1e-3 < with_eps.error < 10 and 1e-3 < with_eps.first_error < 10


def test_default_eps_is_the_dtypes_smallest_normal():
    assert default_eps(torch.float32) == pytest.approx(1.1754943508222875e-38)
    assert default_eps(torch.float64) == pytest.approx(2.2250738585072014e-308)
    zero = torch.zeros(2, 3, 4, 4)
    assert torch.equal(pooled_error(zero, zero), torch.zeros(2))  # 0 / 0 is no NaN


def test_error_averages_over_lower_resolutions_only():
    x = torch.randn(2, 1, 28, 28)
    per = equivariance_error(PlainCNN(), x, [10, 20, 28]).per_resolution
    both = equivariance_error(PlainCNN(), x, [10, 20, 28]).error
    assert both == pytest.approx((per[10] + per[20]) / 2)


def test_crop_of_a_2x2_map_with_a_1x1_footprint_is_the_centre():
    f = torch.arange(4.0).reshape(1, 1, 2, 2)
    # 14 of 28 canvas points on a 2x2 map: a 1x1 footprint straddling all four pixels.
    assert torch.equal(crop_footprint(f, 14, 28), f)


@pytest.mark.parametrize(
    ("m", "image", "canvas", "start", "size"),
    [
        (7, 12, 28, 2, 3),  # extent 3: exact
        (7, 8, 28, 2, 3),  # extent 2, other parity: the larger of 1 and 3
        (7, 16, 28, 1, 5),  # extent 4: 3 or 5, the larger
        (14, 9, 28, 5, 4),  # extent 4.5: 4 is nearer than 6
        (14, 10, 28, 4, 6),  # extent 5: 4 or 6, the larger
        (28, 13, 28, 7, 14),  # odd image on an even map: one pixel of padding
        (13, 7, 13, 3, 7),
        (5, 1, 28, 2, 1),
    ],
)
def test_crop_sizes_and_offsets(m, image, canvas, start, size):
    f = torch.arange(float(m * m)).reshape(1, 1, m, m)
    torch.testing.assert_close(crop_footprint(f, image, canvas),
                               f[..., start:start + size, start:start + size])
    line = torch.arange(float(m)).reshape(1, 1, m)
    torch.testing.assert_close(crop_footprint(line, image, canvas),
                               line[..., start:start + size])


@given(m=st.integers(1, 40), canvas=st.integers(1, 64), data=st.data())
def test_crop_is_centred_and_within_a_pixel_of_the_footprint(m, canvas, data):
    image = data.draw(st.integers(1, canvas))
    f = torch.arange(float(m)).reshape(1, 1, m)
    crop = crop_footprint(f, image, canvas)[0, 0]
    size, start = len(crop), int(crop[0])
    assert 1 <= size <= m and start + size + start == m  # as many pixels left out each side
    assert abs(size - m * image / canvas) <= 1 or size == 2 - m % 2
    assert torch.equal(crop, f[0, 0, start:start + size])


def test_crop_footprint_rejects_an_image_larger_than_the_canvas():
    with pytest.raises(ValueError, match="image size"):
        crop_footprint(torch.zeros(1, 1, 7, 7), 29, 28)


def test_canvas_blocks_under_three_points_are_left_out():
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    # Maps 14, 7 and 2 on the 28 canvas: footprints 14 r / 28, 7 r / 28 and 2 r / 28.
    err = equivariance_error(Pooled([2, 4, 14]), x, list(range(8, 29)))
    assert err.measured[0] == list(range(8, 28))  # 14 * 8 / 28 = 4 points
    assert err.measured[1] == list(range(12, 28))  # 7 * 12 / 28 = 3 points, 7 * 11 / 28 < 3
    assert err.measured[2] == []  # 2 * 27 / 28 < 3: never compared
    assert set(err.per_block_resolution[1]) == set(range(12, 28))
    assert err.per_block_resolution[2] == {} and math.isnan(err.per_block[2])
    assert math.isnan(err.error) and math.isfinite(err.first_error)
    assert MIN_POINTS == 3


def test_native_maps_under_three_points_are_left_out():
    class Quarter(nn.Module):
        input_mode = "native"

        def features(self, x):
            return [x, nn.functional.avg_pool2d(x, 4)]

    err = equivariance_error(Quarter(), torch.rand(1, 1, 28, 28), [8, 11, 12, 20, 28])
    assert err.measured == [[8, 11, 12, 20], [12, 20]]  # 11 // 4 = 2 < 3 <= 12 // 4


def test_scale_consistency_is_one_for_sefl_levels_and_counts_disagreements():
    torch.manual_seed(0)
    model = FourierSE2d(width=0.125).double().eval()
    x = torch.randn(6, 1, 28, 28, dtype=torch.float64)
    value = scale_consistency(model, x, [20, 24, 28])
    assert 0.0 <= value <= 1.0
    preds = [model(downscale(x, r) if r < 28 else x).argmax(-1) for r in (20, 24, 28)]
    expected = float(((preds[0] == preds[1]) & (preds[1] == preds[2])).float().mean())
    assert value == pytest.approx(expected)


def test_bad_inputs():
    with pytest.raises(ValueError, match="below the top"):
        equivariance_error(PlainCNN(), torch.randn(1, 1, 8, 8), [8, 12])
    with pytest.raises(ValueError, match="mode"):
        downscale(torch.randn(1, 1, 8, 8), 4, mode="nearest")
