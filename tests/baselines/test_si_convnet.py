"""SI-ConvNet's scale-invariant convolution (Kanazawa et al.)."""

import pytest
import torch
import torch.nn.functional as F

from baselines.rescale import rescale4d
from baselines.si_convnet import SIConv2d


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
