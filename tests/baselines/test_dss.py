"""DSS: the discrete Gaussian scale-space lift and the dilated scale convolution."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import iv

from baselines.dss import (
    DilatedScaleConv2d,
    GaussianScaleLift,
    ScaleMax,
    discrete_gaussian,
    scale_space_times,
)

TIMES = [0.1875, 0.75, 3.75, 15.75]  # MNIST t_1 and the STL times


def test_scale_space_times_of_the_reference():
    assert scale_space_times(2, 2.0, 0.25) == pytest.approx([0.1875])
    assert scale_space_times(4, 2.0, 0.5) == pytest.approx([0.75, 3.75, 15.75])


@pytest.mark.parametrize("t", TIMES)
def test_discrete_gaussian_sums_to_one_and_is_lindebergs_kernel(t):
    kernel = discrete_gaussian(t).double()
    radius = 4 * math.ceil(math.sqrt(t))
    assert kernel.numel() == 2 * radius + 1
    torch.testing.assert_close(kernel.sum(), torch.tensor(1.0, dtype=torch.float64))
    n = np.arange(-radius, radius + 1)
    oracle = math.exp(-t) * iv(n, t)  # e^{-t} I_n(t), unscaled Bessel as the oracle
    torch.testing.assert_close(
        kernel, torch.from_numpy(oracle / oracle.sum()), rtol=1e-5, atol=1e-9
    )
    torch.testing.assert_close(kernel, kernel.flip(0))
    variance = (kernel * torch.from_numpy(n).double() ** 2).sum()
    # a discrete Gaussian's variance is t; the truncation at 4 ceil(sqrt t) loses up to 0.3%
    assert variance == pytest.approx(t, rel=5e-3)


@pytest.mark.parametrize("size", [15, 16])
def test_lift_is_a_gaussian_scale_space(size):
    lift = GaussianScaleLift(n_scales=3, base=2.0, zero_scale=0.5)
    x = torch.randn(2, 3, size, size)
    out = lift(x)
    assert out.shape == (2, 3, 3, size, size)
    torch.testing.assert_close(out[:, :, 0], x)
    for j, t in enumerate(lift.times, start=1):
        k = discrete_gaussian(t)
        kernel2d = torch.outer(k, k).expand(3, 1, -1, -1)  # separable = outer product
        oracle = F.conv2d(x, kernel2d, padding=k.numel() // 2, groups=3)
        torch.testing.assert_close(out[:, :, j], oracle)


def test_lift_preserves_a_constant_away_from_the_border():
    out = GaussianScaleLift(n_scales=2)(torch.ones(1, 1, 20, 20))
    torch.testing.assert_close(out[..., 5:15, 5:15], torch.ones(1, 1, 2, 10, 10))


@pytest.mark.parametrize("size", [13, 14])
@pytest.mark.parametrize("stride", [1, 2])
def test_scale_conv_is_a_dilated_conv_per_scale(size, stride):
    torch.manual_seed(0)
    conv = DilatedScaleConv2d(3, 4, 3, n_scales_in=2, stride=stride)
    x = torch.randn(2, 3, 2, size, size)
    out = conv(x)
    w = conv.weight[:, :, 0]
    # scale 0 (dilation 1) is the plain convolution
    torch.testing.assert_close(out[:, :, 0], F.conv2d(x[:, :, 0], w, stride=stride, padding=1))
    torch.testing.assert_close(
        out[:, :, 1], F.conv2d(x[:, :, 1], w, stride=stride, padding=2, dilation=2)
    )


def test_scale_conv_mixes_neighbouring_scales_truncated_at_the_top():
    torch.manual_seed(0)
    conv = DilatedScaleConv2d(2, 3, 3, n_scales_in=3, scale_size=2, bias=True)
    x = torch.randn(1, 2, 3, 12, 12)
    out = conv(x)
    w, b = conv.weight, conv.bias
    for s, d in enumerate([1, 2, 4]):
        oracle = F.conv2d(x[:, :, s], w[:, :, 0], b, padding=d, dilation=d)
        if s + 1 < 3:
            oracle = oracle + F.conv2d(x[:, :, s + 1], w[:, :, 1], padding=d, dilation=d)
        torch.testing.assert_close(out[:, :, s], oracle)


def test_scale_conv_fewer_output_scales():
    conv = DilatedScaleConv2d(2, 3, 3, n_scales_in=4, n_scales_out=3)
    assert conv(torch.randn(1, 2, 4, 10, 10)).shape == (1, 3, 3, 10, 10)
    assert conv.dilations == [1, 2, 4]


def test_scale_conv_he_init():
    torch.manual_seed(0)
    conv = DilatedScaleConv2d(64, 64, 3, n_scales_in=2)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.05)


def test_scale_max():
    x = torch.randn(2, 3, 4, 5, 5)
    torch.testing.assert_close(ScaleMax()(x), x.max(2).values)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n_scales_out"):
        DilatedScaleConv2d(1, 1, 3, n_scales_in=2, n_scales_out=3)
    with pytest.raises(ValueError, match=r"\[B, C, 2, H, W\]"):
        DilatedScaleConv2d(1, 1, 3, n_scales_in=2)(torch.randn(1, 1, 3, 8, 8))
    with pytest.raises(ValueError, match="t must be > 0"):
        discrete_gaussian(0.0)
