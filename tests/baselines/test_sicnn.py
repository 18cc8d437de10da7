"""SiCNN's weight-shared scale columns and the fixed-canvas rescaling they use."""

import math

import pytest
import torch
import torch.nn.functional as F

from baselines.rescale import center_fit, rescale4d
from baselines.sicnn import ColumnMax, ScaleColumnConv2d, kernel_canvas

SCALES = (0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33)
STL_SCALES = (0.67, 1.0, 1.5)


def centre_of_mass(k: torch.Tensor) -> torch.Tensor:
    """k: [..., H, W] -> [..., 2], the (row, column) centre of mass of each map."""
    coords = [torch.arange(n, dtype=k.dtype) for n in k.shape[-2:]]
    mass = k.sum((-2, -1))
    rows = (k.sum(-1) * coords[0]).sum(-1) / mass
    cols = (k.sum(-2) * coords[1]).sum(-1) / mass
    return torch.stack([rows, cols], -1)


def centred_bump(k: int) -> torch.Tensor:
    """A k x k Gaussian centred on the grid, narrow enough that the largest resized copy fits
    the kernel canvas (its edge taps are under 1e-2 of the peak)."""
    t = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    g = torch.exp(-(t**2) / (2 * (k / 8) ** 2))
    return g[:, None] * g[None, :]


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
    else:  # the reference's floored negative pad: an odd surplus is cropped from the start
        start = -((size - n) // 2)
        torch.testing.assert_close(out, x[..., start : start + size, start : start + size])


@pytest.mark.parametrize("n", [7, 8])
@pytest.mark.parametrize("surplus", [4, 5])
def test_center_fit_pad_then_crop_undoes_an_even_surplus(n, surplus):
    x = torch.randn(1, 2, n, n)
    back = center_fit(center_fit(x, (n + surplus, n + surplus)), (n, n))
    if surplus % 2 == 0:
        torch.testing.assert_close(back, x)
    else:  # the pad puts the odd zero after x, the crop takes the odd point from the start
        torch.testing.assert_close(back[..., :-1, :-1], x[..., 1:, 1:])
        assert (back[..., -1, :] == 0).all() and (back[..., :, -1] == 0).all()


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


@pytest.mark.parametrize(
    "kernel_size, scale",
    [(k, s) for k in (5, 6, 7) for s in SCALES] + [(3, s) for s in STL_SCALES],
)
def test_resized_kernels_sit_where_the_reference_crops(kernel_size, scale):
    # the kernel of scale s is F.interpolate of the padded canvas, shifted by the reference's
    # F.pad amount floor((K - m) / 2) (m: the resized side), so an odd surplus is cropped from
    # the start; its centre of mass moves by exactly that shift
    scales = SCALES if kernel_size > 3 else STL_SCALES
    conv = ScaleColumnConv2d(1, 1, kernel_size, scales).double()
    with torch.no_grad():
        conv.weight.copy_(centred_bump(kernel_size))
    canvas = conv.canvas
    kernel = conv.kernels()[scales.index(scale), 0, 0].detach()
    padded = center_fit(conv.weight.detach(), (canvas, canvas))
    mode = "nearest" if scale > 1 else "bilinear"
    align = True if mode == "bilinear" else None
    resized = F.interpolate(padded, scale_factor=scale, mode=mode, align_corners=align)[0, 0]
    side = resized.shape[-1]
    assert side == math.floor(canvas * scale)
    shift = (canvas - side) // 2
    expected = centre_of_mass(resized) + shift
    torch.testing.assert_close(centre_of_mass(kernel), expected, atol=0.05, rtol=0)
    if scale <= 1:  # bilinear keeps the symmetric bump symmetric: half a pixel early at most
        offset = centre_of_mass(kernel) - (canvas - 1) / 2
        expected_offset = -((canvas - side) % 2) / 2
        torch.testing.assert_close(offset, torch.full((2,), expected_offset).double())
