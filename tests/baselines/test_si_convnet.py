"""SI-ConvNet's scale-invariant convolution (Kanazawa et al.)."""

import pytest
import torch
import torch.nn.functional as F

from baselines.rescale import rescale4d
from baselines.si_convnet import MNIST_SCALES, SIConv2d

STL_SCALES = (0.5, 1.0, 2.0)


def centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    """x: [..., H, W] -> [..., 2], the (row, column) centre of mass of each map."""
    coords = [torch.arange(n, dtype=x.dtype) for n in x.shape[-2:]]
    mass = x.sum((-2, -1))
    rows = (x.sum(-1) * coords[0]).sum(-1) / mass
    cols = (x.sum(-2) * coords[1]).sum(-1) / mass
    return torch.stack([rows, cols], -1)


@pytest.mark.parametrize("size", [15, 16])
@pytest.mark.parametrize("stride", [1, 2])
def test_scale_set_one_is_the_plain_convolution(size, stride):
    torch.manual_seed(0)
    layer = SIConv2d(3, 4, 5, scales=(1.0,), stride=stride)
    x = torch.randn(2, 3, size, size)
    torch.testing.assert_close(layer(x), layer.conv(x))
    assert layer.conv.padding == (2, 2)


@pytest.mark.parametrize("size", [14, 15])
def test_output_is_the_max_over_rescaled_responses(size):
    torch.manual_seed(0)
    scales = (0.5, 1.0, 2.0)
    layer = SIConv2d(2, 3, 3, scales=scales, bias=False)
    x = torch.randn(2, 2, size, size)
    w = layer.conv.weight
    oracle = torch.stack(
        [rescale4d(F.conv2d(rescale4d(x, s), w, padding=1), 1 / s) for s in scales]
    ).amax(0)
    torch.testing.assert_close(layer(x), oracle)
    assert (layer(x) >= F.conv2d(x, w, padding=1) - 1e-6).all()  # scale 1 is in the max


def test_layer_shares_one_convolution():
    layer = SIConv2d(2, 3, 7)
    assert [n for n, _ in layer.named_parameters()] == ["conv.weight", "conv.bias"]
    assert len(layer.scales) == 7


@pytest.mark.parametrize("scales", [(), (0.5, 0.0)])
def test_bad_scales_raise(scales):
    with pytest.raises(ValueError, match="scales"):
        SIConv2d(1, 1, 3, scales=scales)


@pytest.mark.parametrize("size", [28, 27, 14, 13])
@pytest.mark.parametrize(
    "factor", sorted({f for s in MNIST_SCALES + STL_SCALES for f in (s, 1 / s)})
)
def test_rescaled_maps_stay_centred_as_in_the_reference(size, factor):
    # a centred Gaussian, resized bilinearly (which keeps it symmetric) to m = floor(size * s)
    # points and fitted back with the reference's floored F.pad amount (size - m) // 2: its
    # centre of mass is the canvas centre, half a pixel early when size - m is odd (pad or crop)
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / 2)
    x = (g[:, None] * g[None, :])[None, None]
    y = rescale4d(x, factor)
    side = F.interpolate(x, scale_factor=factor).shape[-1]
    offset = centre_of_mass(y)[0, 0] - (size - 1) / 2
    expected = torch.full((2,), -((size - side) % 2) / 2, dtype=torch.float64)
    # 0.05: the Gaussian's tails cropped at the canvas edge after a 3.33x upscale
    torch.testing.assert_close(offset, expected, atol=0.05, rtol=0)
