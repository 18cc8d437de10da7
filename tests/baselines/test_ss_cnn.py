"""SS-CNN: the log-radial harmonic basis, coefficient steering and the steered conv."""

import math

import pytest
import torch
import torch.nn.functional as F

from baselines.ss_cnn import (
    ScaleSteerableConv,
    half_turn_angles,
    log_radial_harmonics,
    steer_coefficients,
)

KS = (0.5, 1.0, 2.0)
PHI0S = half_turn_angles(9)


@pytest.fixture(scope="module")
def basis():
    return log_radial_harmonics(13, KS, PHI0S, (math.pi / 16,), (-math.pi / 4,))


def test_basis_shape_unit_norm_and_k_eff(basis):
    real, imag, k_eff = basis
    assert real.shape == imag.shape == (3, 9, 13, 13)
    ones = torch.ones(3, 9, dtype=torch.float64)
    torch.testing.assert_close(real.pow(2).sum((-2, -1)), ones)
    torch.testing.assert_close(imag.pow(2).sum((-2, -1)), ones)
    # k_eff = 2 pi k / log(max r), max r at the corner of the 13 x 13 grid: 6 sqrt(2)
    expected = torch.tensor(
        [2 * math.pi * k / math.log(6 * math.sqrt(2)) for k in KS], dtype=torch.float64
    )
    torch.testing.assert_close(k_eff, expected)


def test_basis_vanishes_outside_the_disc_and_is_point_symmetric(basis):
    real, imag, _ = basis
    idx = torch.arange(13) - 6
    outside = (idx[:, None] ** 2 + idx[None, :] ** 2) > 36
    assert (real[..., outside] == 0).all() and (imag[..., outside] == 0).all()
    # the angular envelope has lobes at phi0 and phi0 + pi: a 180-degree turn maps it to itself
    torch.testing.assert_close(real, real.flip(-2, -1))
    torch.testing.assert_close(imag, imag.flip(-2, -1))


def test_basis_centre_value():
    # r = 1 and phi = 0 at the centre: F_re = A(0) cos(phase) before normalisation
    real, _, _ = log_radial_harmonics(5, (1.0,), (0.0,), (0.3,), (0.7,))
    centre, top = real[0, 0, 2, 2], real[0, 0, 0, 2]  # (0, 2): up the rows, phi = 0
    raw_ratio = math.cos(0.7) / (
        math.cos(2 * math.pi / math.log(2 * math.sqrt(2)) * math.log(2) + 0.7) / 2
    )
    torch.testing.assert_close(centre / top, torch.tensor(raw_ratio, dtype=torch.float64))


def test_steering_at_scale_one_is_the_identity():
    g = torch.Generator().manual_seed(0)
    real, imag = torch.randn(3, 4, 2, 9, generator=g), torch.randn(3, 4, 2, 9, generator=g)
    steered = steer_coefficients(real, imag, torch.tensor([1.5, 2.9, 5.9]), 1.0)
    torch.testing.assert_close(steered[0], real)
    torch.testing.assert_close(steered[1], imag)


def test_steering_composes_over_scales():
    # exp(-i k log a) exp(-i k log b) = exp(-i k log ab): steering is a group action
    g = torch.Generator().manual_seed(0)
    real, imag = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    k_eff = torch.tensor([1.5, 2.9, 5.9])
    twice = steer_coefficients(*steer_coefficients(real, imag, k_eff, 0.7), k_eff, 1.3)
    once = steer_coefficients(real, imag, k_eff, 0.7 * 1.3)
    torch.testing.assert_close(twice, once)


def test_kernel_at_the_nominal_size_is_the_unsteered_combination():
    torch.manual_seed(0)
    layer = ScaleSteerableConv(2, 3, kernel_size=7, kernel_sizes=(3, 5, 7, 9))
    real, imag = layer.basis_real[..., 1:8, 1:8], layer.basis_imag[..., 1:8, 1:8]
    expected = torch.einsum("koib,kbuv->oiuv", layer.coef_real, real) - torch.einsum(
        "koib,kbuv->oiuv", layer.coef_imag, imag
    )
    torch.testing.assert_close(layer.kernel(2), expected)
    assert layer.kernel(0).shape == (3, 2, 3, 3) and layer.kernel(3).shape == (3, 2, 9, 9)


@pytest.mark.parametrize("size", [9, 10])
def test_conv_is_the_max_over_scaled_kernels(size):
    torch.manual_seed(0)
    layer = ScaleSteerableConv(2, 3, kernel_size=5, kernel_sizes=(3, 5, 7))
    x = torch.randn(2, 2, size, size)
    expected = torch.stack(
        [F.conv2d(x, layer.kernel(i), padding=k // 2) for i, k in enumerate((3, 5, 7))]
    ).amax(0)
    torch.testing.assert_close(layer(x), expected)
    assert layer.scales == (0.6, 1.0, 1.4)


def test_parameters_are_the_complex_coefficients_only():
    layer = ScaleSteerableConv(4, 6)
    shapes = sorted(tuple(p.shape) for p in layer.parameters())
    assert shapes == [(3, 6, 4, 9), (3, 6, 4, 9)]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: log_radial_harmonics(4, KS, PHI0S, (0.2,), (0.0,)), "size must be odd"),
        (lambda: ScaleSteerableConv(1, 2, kernel_sizes=(5, 6)), "kernel_sizes must be odd"),
        (lambda: half_turn_angles(1), "number of angles"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
