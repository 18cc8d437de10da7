"""SEVF: scale convs producing vector fields, vector pooling and vector batch norm."""

import math

import pytest
import torch
import torch.nn.functional as F

from baselines.sevf import (
    Magnitude,
    ScaleConvScalar,
    ScaleConvVector,
    VectorBatchNorm,
    VectorMaxPool,
    conv_scale,
    sevf_scales,
)


def test_default_scales_and_angles():
    scales, angles = sevf_scales()
    assert scales == pytest.approx([1.26**level for level in range(-4, 4)])
    assert scales[0] == pytest.approx(0.40, abs=0.01) and scales[-1] == pytest.approx(2.0, abs=0.01)
    assert angles[4] == 0.0 and angles[-1] == pytest.approx(3 * (2 * math.pi / 3) / 7)


@pytest.mark.parametrize("size", [13, 14])
def test_conv_scale_at_one_is_the_plain_conv(size):
    x, w = torch.randn(2, 3, size, size), torch.randn(4, 3, 7, 7)
    torch.testing.assert_close(conv_scale(x, w, 1.0, padding=3), F.conv2d(x, w, padding=3))


@pytest.mark.parametrize("scale", [0.4, 0.63, 1.59, 2.0])
def test_conv_scale_keeps_the_output_size(scale):
    assert conv_scale(torch.randn(1, 2, 7, 7), torch.randn(3, 2, 7, 7), scale, padding=3).shape == (
        1,
        3,
        7,
        7,
    )


@pytest.mark.parametrize("size", [11, 12])
def test_scalar_conv_field_is_relu_max_at_the_argmax_angle(size):
    torch.manual_seed(0)
    conv = ScaleConvScalar(2, 3, 5, scales=(0.5, 1.0, 2.0), angles=(-0.4, 0.0, 0.4))
    x = torch.randn(2, 2, size, size)
    responses = torch.stack([conv_scale(x, conv.weight, s, padding=2) for s in (0.5, 1.0, 2.0)])
    values, index = responses.max(0)
    theta = torch.tensor([-0.4, 0.0, 0.4])[index]
    field = conv(x)
    assert field.shape == (2, 3, 2, size, size)
    torch.testing.assert_close(field[:, :, 0], F.relu(values) * torch.cos(theta))
    torch.testing.assert_close(field[:, :, 1], F.relu(values) * torch.sin(theta))
    torch.testing.assert_close(Magnitude()(field), F.relu(values))


def test_scalar_conv_max_output():
    torch.manual_seed(0)
    conv = ScaleConvScalar(2, 3, 7, output="max")
    x = torch.randn(1, 2, 9, 9)
    torch.testing.assert_close(conv(x), conv.responses(x).amax(0))


def test_vector_conv_rotates_the_kernel_pair_per_scale():
    torch.manual_seed(0)
    theta = 0.7
    conv = ScaleConvVector(2, 3, 3, scales=(1.0,), angles=(theta,))
    field = torch.randn(2, 2, 2, 10, 10)
    u, v = field[:, :, 0], field[:, :, 1]
    wu, wv = conv.weight_u, conv.weight_v
    c, s = math.cos(theta), math.sin(theta)
    response = F.conv2d(u, wu * c + wv * s, padding=1) + F.conv2d(v, -wu * s + wv * c, padding=1)
    torch.testing.assert_close(conv.responses(field)[0], response)
    out = conv(field)
    torch.testing.assert_close(out[:, :, 0], F.relu(response) * c)
    torch.testing.assert_close(out[:, :, 1], F.relu(response) * s)


@pytest.mark.parametrize("size, padding", [(8, 0), (7, 2)])
def test_vector_max_pool_keeps_the_longest_vector(size, padding):
    field = torch.randn(2, 3, 2, size, size)
    pool = VectorMaxPool(4 if padding else 2, padding=padding)
    out = pool(field)
    magnitude = field.norm(dim=2)
    expected = F.max_pool2d(magnitude, pool.kernel_size, pool.stride, padding)
    torch.testing.assert_close(out.norm(dim=2), expected)
    # the kept vector is one of the input vectors, not a mix of components
    b, c, i, j = 1, 2, 0, 0
    matches = (field[b, c].flatten(1) - out[b, c, :, i, j, None]).abs().sum(0)
    assert matches.min() == 0


def test_vector_batch_norm_scales_without_centring():
    torch.manual_seed(0)
    bn = VectorBatchNorm(3)
    field = torch.randn(4, 3, 2, 5, 5) * torch.tensor([1.0, 3.0, 0.5]).view(1, 3, 1, 1, 1)
    out = bn(field)
    magnitude = field.norm(dim=2)
    var = magnitude.var(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(out, field / torch.sqrt(var + bn.eps).view(1, 3, 1, 1, 1))
    torch.testing.assert_close(
        out.norm(dim=2).var(dim=(0, 2, 3), unbiased=False), torch.ones(3), rtol=1e-3, atol=1e-3
    )
    n = 4 * 5 * 5
    torch.testing.assert_close(bn.running_var, 0.5 * torch.ones(3) + 0.5 * var * n / (n - 1))
    bn.eval()
    torch.testing.assert_close(
        bn(field), field / torch.sqrt(bn.running_var + bn.eps).view(1, 3, 1, 1, 1)
    )


def test_magnitude_has_a_finite_gradient_at_zero():
    field = torch.zeros(1, 2, 2, 3, 3, requires_grad=True)
    Magnitude()(field).sum().backward()
    assert torch.isfinite(field.grad).all()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="scales"):
        ScaleConvScalar(1, 1, 3, scales=(1.0, 2.0), angles=(0.0,))
    with pytest.raises(ValueError, match="output"):
        ScaleConvScalar(1, 1, 3, output="sum")
    with pytest.raises(ValueError, match="n_scales"):
        sevf_scales(n_scales=1)
