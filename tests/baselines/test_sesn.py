"""SESN: the Hermite-Gaussian bases and the steerable layers, against the spec and oracles."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.hermite import (
    hermite_basis,
    hermite_e,
    normalize_by_min_scale,
    scale_supports,
)
from baselines.sesn import (
    SESN_CONFIGS,
    ScaleMaxProjection,
    SESConv1x1HH,
    SESConvHH,
    SESConvZ2H,
    geometric_scales,
)

# specs/baselines.md section 1.3: (layout, config) -> (scales, kernel size, supports n_s)
SPEC_TABLE = {
    ("scalar", "28"): ([1.7, 2.45, 3.54, 5.1], 15, [5, 7, 11, 15]),
    ("vector", "28"): ([1.5, 2.6, 4.5], 13, [5, 7, 13]),
    ("scalar", "28p"): ([1.5, 2.16, 3.12, 4.5], 13, [5, 7, 9, 13]),
    ("vector", "28p"): ([1.5, 2.6, 4.5], 15, [5, 9, 15]),
}


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8])
def test_hermite_e_matches_numpy(n):
    x = torch.linspace(-4, 4, 17, dtype=torch.float64)
    expected = np.polynomial.hermite_e.hermeval(x.numpy(), [0] * n + [1])
    torch.testing.assert_close(hermite_e(x, n), torch.from_numpy(expected))


@pytest.mark.parametrize("key", sorted(SPEC_TABLE))
def test_config_scales_kernel_and_supports_match_the_spec_table(key):
    scales, kernel_size, supports = SPEC_TABLE[key]
    cfg = SESN_CONFIGS[key]
    assert geometric_scales(cfg.num_scales, cfg.min_scale, cfg.factor) == scales
    assert cfg.kernel_size == kernel_size
    assert scale_supports(kernel_size, scales) == supports


@pytest.mark.parametrize("key", sorted(SPEC_TABLE))
def test_basis_b_shape_and_per_scale_support(key):
    scales, kernel_size, supports = SPEC_TABLE[key]
    basis = hermite_basis("B", kernel_size, scales, 7, SESN_CONFIGS[key].mult)
    assert basis.shape == (49, len(scales), kernel_size, kernel_size)
    for s, n in enumerate(supports):
        # the support is exactly the centred n x n square
        nonzero = basis[:, s].abs().sum(0) > 0
        assert nonzero.sum() == n * n
        start = (kernel_size - n) // 2
        assert nonzero[start : start + n, start : start + n].all()


@pytest.mark.parametrize("kind", ["A", "B"])
def test_basis_is_normalised_at_the_smallest_scale_only(kind):
    scales = [1.5, 2.6, 4.5]
    raw = hermite_basis(kind, 13, scales, 7 if kind == "B" else 3, mult=1.5)
    basis = normalize_by_min_scale(raw)
    norms = basis.pow(2).sum((-2, -1)).sqrt()
    torch.testing.assert_close(norms[:, 0], torch.ones(len(basis), dtype=torch.float64))
    # the same factor at every scale: relative amplitudes across scales are those of the raw basis
    raw_norms = raw.pow(2).sum((-2, -1)).sqrt()
    torch.testing.assert_close(norms, raw_norms / raw_norms[:, :1])
    assert not torch.allclose(norms[:, -1], torch.ones(len(basis), dtype=torch.float64))


def test_basis_a_on_the_stl_scales_has_the_spec_supports():
    scales = [0.9, 1.269, 1.789]  # specs section 1.4: supports 3, 5, 7 with k = 7, E = 3
    basis = hermite_basis("A", 7, scales, 3)
    assert basis.shape == (9, 3, 7, 7)
    assert scale_supports(7, scales) == [3, 5, 7]


def test_basis_b_enumeration_and_widths():
    sigma, mult = 2.0, 1.5
    basis = hermite_basis("B", 15, [sigma], 7, mult=mult)[:, 0]
    x = torch.arange(15, dtype=torch.float64) - 7

    def g(order, width):
        return hermite_e(x / width, order) * torch.exp(-(x**2) / (2 * width**2)) / width

    # function 0: the Gaussian; 1: order 1 along the rows; 5: order 1 along the columns
    torch.testing.assert_close(basis[0], torch.outer(g(0, sigma), g(0, sigma)))
    torch.testing.assert_close(basis[1], torch.outer(g(1, sigma), g(0, sigma)))
    torch.testing.assert_close(basis[5], torch.outer(g(0, sigma), g(1, sigma)))
    # 15 functions (a + b <= 4) per width; the 16th is the Gaussian at the next width
    torch.testing.assert_close(basis[15], torch.outer(g(0, sigma / mult), g(0, sigma / mult)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "C"}, "kind must be 'A' or 'B'"),
        ({"kernel_size": 14}, "kernel_size must be odd"),
        ({"scales": [2.0, 1.0]}, "strictly increasing"),
        ({"scales": [0.1, 3.0], "kernel_size": 7}, "support of 1 point"),
    ],
)
def test_bad_basis_arguments(kwargs, match):
    args = {"kind": "B", "kernel_size": 13, "scales": [1.5, 3.0], "effective_size": 7, **kwargs}
    with pytest.raises(ValueError, match=match):
        hermite_basis(**args)


def _random_basis(num_funcs=5, num_scales=3, k=5, seed=0):
    return torch.randn(num_funcs, num_scales, k, k, generator=torch.Generator().manual_seed(seed))


def _layer_with_bias(layer_cls, **kwargs):
    """A layer on a random basis [5, 3, 5, 5] with a non-zero bias, and that basis."""
    torch.manual_seed(0)
    basis = _random_basis()
    layer = layer_cls(2, 3, basis, **kwargs)
    torch.nn.init.normal_(layer.bias)
    return layer, basis


def _kernel(weight, basis, s):
    """Oracle kernel of scale s: weight [C_out, C_in, F] summed against basis[:, s]."""
    return torch.einsum("oif,fuv->oiuv", weight, basis[:, s])


@pytest.mark.parametrize("size", [9, 10])
@pytest.mark.parametrize("stride", [1, 2])
def test_lifting_conv_is_one_conv_per_scale(size, stride):
    layer, basis = _layer_with_bias(SESConvZ2H, stride=stride)
    x = torch.randn(2, 2, size, size)
    kernels = [_kernel(layer.weight, basis, s) for s in range(3)]
    expected = [F.conv2d(x, k, layer.bias, stride=stride, padding=2) for k in kernels]
    torch.testing.assert_close(layer(x), torch.stack(expected, 2), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("scale_size", [1, 2])
def test_group_conv_mixes_scales_s_to_s_plus_scale_size(size, scale_size):
    layer, basis = _layer_with_bias(SESConvHH, scale_size=scale_size)
    x = torch.randn(2, 2, 3, size, size)
    outputs = []
    for s in range(3):
        y = layer.bias.view(1, -1, 1, 1)
        for i in range(min(scale_size, 3 - s)):  # zero padding past the last scale
            y = y + F.conv2d(x[:, :, s + i], _kernel(layer.weight[:, :, i], basis, s), padding=2)
        outputs.append(y)
    torch.testing.assert_close(layer(x), torch.stack(outputs, 2), rtol=1e-4, atol=1e-5)


def test_group_conv_rejects_a_wrong_number_of_scales():
    layer = SESConvHH(2, 3, _random_basis())
    with pytest.raises(ValueError, match=r"\[B, C, 3, H, W\], got \(1, 2, 4, 6, 6\)"):
        layer(torch.randn(1, 2, 4, 6, 6))


def test_bad_basis_shape_is_rejected():
    with pytest.raises(ValueError, match=r"\[F, S, k, k\]"):
        SESConvZ2H(1, 2, torch.zeros(4, 5, 5))


@pytest.mark.parametrize("stride", [1, 2])
def test_1x1_conv_is_shared_across_scales(stride):
    torch.manual_seed(0)
    layer = SESConv1x1HH(3, 4, stride=stride, bias=True)
    x = torch.randn(2, 3, 2, 7, 7)
    weight = layer.conv.weight.view(4, 3, 1, 1)
    expected = torch.stack(
        [F.conv2d(x[:, :, s], weight, layer.conv.bias, stride=stride) for s in range(2)], 2
    )
    torch.testing.assert_close(layer(x), expected)


def test_max_projection_is_the_max_over_scales():
    x = torch.randn(2, 3, 4, 5, 5)
    torch.testing.assert_close(ScaleMaxProjection()(x), x.max(2).values)
