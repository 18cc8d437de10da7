"""SiCNN's weight-shared scale columns and the fixed-canvas rescaling they use."""

import pytest
import torch
import torch.nn.functional as F

from baselines.rescale import center_fit, rescale4d
from baselines.sicnn import ColumnMax, ScaleColumnConv2d, kernel_canvas

SCALES = (0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33)


@pytest.mark.parametrize("n, size", [(5, 9), (6, 9), (5, 10), (9, 5), (10, 5), (9, 4)])
def test_center_fit_matches_slicing(n, size):
    x = torch.randn(2, 3, n, n)
    out = center_fit(x, (size, size))
    assert out.shape == (2, 3, size, size)
    if size >= n:  # padded: x sits at (size - n) // 2, zeros around it
        start = (size - n) // 2
        torch.testing.assert_close(out[..., start : start + n, start : start + n], x)
        outside = out.clone()
        outside[..., start : start + n, start : start + n] = 0
        assert (outside == 0).all()
    else:  # cropped from (n - size) // 2, as sefl.canvas.crop_footprint does
        start = (n - size) // 2
        torch.testing.assert_close(out, x[..., start : start + size, start : start + size])


@pytest.mark.parametrize("n", [7, 8])
def test_center_fit_pad_then_crop_is_identity(n):
    x = torch.randn(1, 2, n, n)
    torch.testing.assert_close(center_fit(center_fit(x, (n + 5, n + 5)), (n, n)), x)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_rescale4d_scale_one_is_identity_and_keeps_the_canvas(mode):
    x = torch.randn(2, 3, 11, 11)
    torch.testing.assert_close(rescale4d(x, 1.0, mode), x)
    assert rescale4d(x, 0.5, mode).shape == x.shape
    assert rescale4d(x, 2.0, mode).shape == x.shape


def test_rescale4d_downscale_is_interpolate_then_pad():
    x = torch.randn(1, 1, 20, 20)
    small = F.interpolate(x, size=(10, 10), mode="bilinear", align_corners=True)
    torch.testing.assert_close(rescale4d(x, 0.5)[..., 5:15, 5:15], small)


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_rescale4d_rejects_non_positive_scales(scale):
    with pytest.raises(ValueError, match="scale must be > 0"):
        rescale4d(torch.randn(1, 1, 8, 8), scale)


def test_kernel_canvas_sizes_of_the_reference():
    assert kernel_canvas(7, 3.33) == 23  # MNIST: padding 11
    assert kernel_canvas(3, 1.5) == 5  # STL: int(4.5) = 4, grown to 5 to keep the 3x3 centred


def test_columns_share_one_kernel():
    conv = ScaleColumnConv2d(2, 3, 7, SCALES, lift=True)
    params = dict(conv.named_parameters())
    assert list(params) == ["weight"] and params["weight"].shape == (3, 2, 7, 7)
    kernels = conv.kernels()
    assert kernels.shape == (7, 3, 2, 23, 23)
    # every column's kernel is the base kernel resized: same L1 norm per (out, in) pair
    l1 = conv.weight.abs().sum((-2, -1))
    torch.testing.assert_close(kernels.abs().sum((-2, -1)), l1.expand(7, 3, 2))
    # scale 1 is the base kernel itself, centred on the 23x23 canvas
    torch.testing.assert_close(kernels[3], center_fit(conv.weight, (23, 23)))


@pytest.mark.parametrize("size", [15, 16])
def test_lift_columns_are_convs_with_the_resized_kernels(size):
    torch.manual_seed(0)
    conv = ScaleColumnConv2d(2, 3, 7, SCALES, lift=True)
    x = torch.randn(2, 2, size, size)
    out = conv(x).view(2, 7, 3, size, size)
    kernels = conv.kernels()
    for s in range(7):
        torch.testing.assert_close(out[:, s], F.conv2d(x, kernels[s], padding=11))
    # the scale-1 column is the plain convolution with the 7x7 base kernel
    torch.testing.assert_close(out[:, 3], F.conv2d(x, conv.weight, padding=3))


@pytest.mark.parametrize("size", [9, 10])
def test_later_columns_only_see_their_own_column(size):
    torch.manual_seed(0)
    conv = ScaleColumnConv2d(2, 3, 3, (0.5, 1.0, 2.0), lift=False)
    x = torch.randn(1, 3 * 2, size, size)
    out = conv(x)
    x2 = x.clone()
    x2[:, :2] += 1.0  # change column 0 only
    out2 = conv(x2)
    assert not torch.allclose(out2[:, :3], out[:, :3])
    torch.testing.assert_close(out2[:, 3:], out[:, 3:])
    torch.testing.assert_close(
        out[:, 3:6], F.conv2d(x[:, 2:4], conv.kernels()[1], padding=conv.padding)
    )


def test_one_by_one_kernels_are_not_resized():
    conv = ScaleColumnConv2d(4, 5, 1, (0.5, 1.0, 2.0), bias=True)
    kernels = conv.kernels()
    assert kernels.shape == (3, 5, 4, 1, 1)
    torch.testing.assert_close(kernels, conv.weight.expand(3, 5, 4, 1, 1))
    assert conv.bias is not None and conv.padding == 0


def test_column_max_takes_the_max_over_columns():
    x = torch.randn(2, 3 * 4, 5, 5)
    expected = torch.stack([x[:, 4 * s : 4 * s + 4] for s in range(3)]).amax(0)
    torch.testing.assert_close(ColumnMax(3)(x), expected)


def test_bad_scales_raise():
    with pytest.raises(ValueError, match="scales"):
        ScaleColumnConv2d(1, 1, 3, (0.0, 1.0))
