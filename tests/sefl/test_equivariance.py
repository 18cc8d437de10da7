"""The equivariance error and scale consistency (sefl.equivariance)."""

import pytest
import torch
from torch import nn

from sefl.equivariance import downscale, equivariance_error, scale_consistency
from sefl.models import FourierSE2d
from sefl.spectral import resample


class PlainCNN(nn.Module):
    """Two 3x3 convs with ReLU at the input's own resolution: not scale-equivariant."""

    input_mode = "native"

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.convs = nn.ModuleList([nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)])

    def features(self, x):
        out = []
        for conv in self.convs:
            x = torch.relu(conv(x))
            out.append(x)
        return out

    def forward(self, x):
        return self.features(x)[-1].mean((-1, -2))


class Identity(nn.Module):
    input_mode = "native"

    def features(self, x):
        return [x]


class Squares(nn.Module):
    """f(x) = x^2 pointwise: the error has a closed form on a tiny case."""

    input_mode = "native"

    def features(self, x):
        return [x * x]


def test_sefl_error_is_zero_to_rounding():
    torch.manual_seed(0)
    model = FourierSE2d(width=0.125).double().eval()
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    err = equivariance_error(model, x, range(8, 29))
    assert err.error <= 1e-10
    assert len(err.per_block) == 4 and max(err.per_block) <= 1e-10
    assert sorted(err.per_resolution) == list(range(8, 28))


def test_plain_cnn_error_is_clearly_nonzero():
    x = torch.randn(4, 1, 28, 28)
    err = equivariance_error(PlainCNN().eval(), x, [8, 14, 20, 28])
    assert err.error > 1e-3
    assert set(err.per_resolution) == {8, 14, 20}


def test_identity_has_zero_error_with_ideal_and_nonzero_with_bicubic():
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    assert equivariance_error(Identity(), x, [8, 12], mode="ideal").error <= 1e-20
    assert equivariance_error(Identity(), x, [8, 12], mode="bicubic").error > 1e-3


def test_error_matches_a_hand_computed_value():
    # One image of 4 points, one channel: x = [1, 0, 0, 0] (1D), f(x) = x^2, r = 3.
    x = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]], dtype=torch.float64)
    fx = x * x
    a = resample(fx, 3, 1)
    b = resample(resample(x, 3, 1) ** 2, 3, 1)
    expected = float(((a - b) ** 2).sum() / ((a**2).sum() + 1e-6))
    # D_3 keeps k in {-1, 0, 1}: x_3 = [1/4 + 1/2, 1/4 - 1/4, 1/4 - 1/4] = [3/4, 0, 0].
    torch.testing.assert_close(
        resample(x, 3, 1), torch.tensor([[[0.75, 0.0, 0.0]]], dtype=torch.float64)
    )
    got = equivariance_error(Squares(), x, [3]).error
    assert got == pytest.approx(expected, rel=1e-12)
    # a = D_3 of [1,0,0,0] = [3/4, 0, 0]; b = [9/16, 0, 0]; e = (3/16)^2 / ((3/4)^2 + 1e-6).
    assert got == pytest.approx((3 / 16) ** 2 / ((3 / 4) ** 2 + 1e-6), rel=1e-9)


def test_error_averages_over_lower_resolutions_only():
    x = torch.randn(2, 1, 28, 28)
    per = equivariance_error(PlainCNN(), x, [10, 20, 28]).per_resolution
    both = equivariance_error(PlainCNN(), x, [10, 20, 28]).error
    assert both == pytest.approx((per[10] + per[20]) / 2)


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
