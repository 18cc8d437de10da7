"""The 1D baselines: their layers' stated properties, and the models through the zoo."""

import math

import pytest
import torch
import torch.nn.functional as F
from model_checks import assert_every_parameter_learns

from baselines.dss import DilatedScaleConv1d, GaussianScaleLift, discrete_gaussian
from baselines.wavelet1d import ScaleBlur1d, WaveletConv1d, bspline_blur, quadratic_bspline
from benchmark.zoo import create_model, list_models
from sefl.equivariance import equivariance_error
from sefl.spectral import resample

TASK = "mnist1d_scale"
MODELS = ["cnn1d", "dss1d", "wavelet1d"]
SMALL = 0.25  # width for the CPU tests
PARAMS = {"cnn1d": 295_655, "dss1d": 295_240, "wavelet1d": 296_628}  # ours at width 1
# features() at width 0.25: channels per block (scale axes folded: dss1d and wavelet1d have 3)
FEATURE_CHANNELS = {
    "cnn1d": [8, 16, 32, 48],
    "dss1d": [3 * 8, 3 * 16, 3 * 32, 3 * 48],
    "wavelet1d": [3 * 6, 3 * 11, 3 * 23, 3 * 36],
}


def smooth_sequences(n: int, length: int = 72, seed: int = 0) -> torch.Tensor:
    """Band-limited random sequences [n, 1, length]."""
    g = torch.Generator().manual_seed(seed)
    return resample(torch.rand(n, 1, 9, generator=g), length, ndim=1)


def small_model(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, TASK, width=SMALL, **overrides)


# ----------------------------------------------------------------------------- layers


@pytest.mark.parametrize("length", [15, 16])
def test_1d_gaussian_lift_is_a_scale_space_that_sums_to_one(length):
    lift = GaussianScaleLift(n_scales=3, base=2.0, zero_scale=0.5, ndim=1)
    x = torch.randn(2, 3, length)
    out = lift(x)
    assert out.shape == (2, 3, 3, length)
    torch.testing.assert_close(out[:, :, 0], x)
    for j, t in enumerate(lift.times, start=1):
        k = discrete_gaussian(t)
        oracle = F.conv1d(x.reshape(6, 1, length), k.view(1, 1, -1), padding=k.numel() // 2)
        torch.testing.assert_close(out[:, :, j], oracle.view(2, 3, length))
    impulse = torch.zeros(1, 1, 41)
    impulse[..., 20] = 1.0  # far enough from the border for the widest kernel (radius 8)
    torch.testing.assert_close(lift(impulse).sum(-1), torch.ones(1, 1, 3))


@pytest.mark.parametrize("length", [13, 14])
@pytest.mark.parametrize("stride", [1, 2])
def test_1d_scale_conv_is_a_dilated_conv_per_scale(length, stride):
    torch.manual_seed(0)
    conv = DilatedScaleConv1d(3, 4, 3, n_scales_in=3, stride=stride)
    assert conv.weight.shape == (4, 3, 1, 3)
    x = torch.randn(2, 3, 3, length)
    out = conv(x)
    w = conv.weight[:, :, 0]
    # dilation 1 (scale 0) is the plain convolution
    torch.testing.assert_close(out[:, :, 0], F.conv1d(x[:, :, 0], w, stride=stride, padding=1))
    for s, d in [(1, 2), (2, 4)]:
        oracle = F.conv1d(x[:, :, s], w, stride=stride, padding=d, dilation=d)
        torch.testing.assert_close(out[:, :, s], oracle)


def test_1d_scale_conv_mixes_neighbouring_scales():
    torch.manual_seed(0)
    conv = DilatedScaleConv1d(2, 3, 5, n_scales_in=3, scale_size=2)
    x = torch.randn(2, 2, 3, 11)
    out = conv(x)
    w = conv.weight
    for s, d in enumerate([1, 2, 4]):
        oracle = F.conv1d(x[:, :, s], w[:, :, 0], padding=2 * d, dilation=d)
        if s < 2:
            oracle = oracle + F.conv1d(x[:, :, s + 1], w[:, :, 1], padding=2 * d, dilation=d)
        torch.testing.assert_close(out[:, :, s], oracle)


def test_1d_scale_conv_rejects_a_wrong_scale_axis():
    with pytest.raises(ValueError, match=r"\[B, C, 3, L\], got \(1, 2, 2, 9\)"):
        DilatedScaleConv1d(2, 2, 3, n_scales_in=3)(torch.randn(1, 2, 2, 9))


def test_quadratic_bspline_values():
    u = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, -0.5, -1.0])
    expected = torch.tensor([0.75, 0.5, 0.125, 0.0, 0.0, 0.5, 0.125])
    torch.testing.assert_close(quadratic_bspline(u), expected)


@pytest.mark.parametrize("scale", [1.0, 2.0, 3.0, 4.0, 8.0])
def test_bspline_blur_sums_to_one_and_is_symmetric(scale):
    k = bspline_blur(scale)
    assert k.numel() == 2 * (math.ceil(1.5 * scale) - 1) + 1  # the open support |n| < 1.5 h
    assert k.min() > 0
    torch.testing.assert_close(k.sum(), torch.tensor(1.0))
    torch.testing.assert_close(k, k.flip(0))
    # B2 at the integers sums to the scale (partition of unity), so the taps are B2(n / h) / h
    n = torch.arange(k.numel()) - k.numel() // 2
    torch.testing.assert_close(k, quadratic_bspline(n / scale) / scale)


def test_bspline_blur_at_scales_1_and_2():
    torch.testing.assert_close(bspline_blur(1.0), torch.tensor([0.125, 0.75, 0.125]))
    torch.testing.assert_close(bspline_blur(2.0), torch.tensor([0.125, 0.5, 0.75, 0.5, 0.125]) / 2)
    with pytest.raises(ValueError, match="scale must be >= 1"):
        bspline_blur(0.5)


def test_scale_blur_blurs_each_scale_with_its_own_spline():
    x = torch.randn(2, 3, 3, 20)
    out = ScaleBlur1d(3)(x)
    for s in range(3):
        k = bspline_blur(2.0**s)
        oracle = F.conv1d(x[:, :, s].reshape(6, 1, 20), k.view(1, 1, -1), padding=k.numel() // 2)
        torch.testing.assert_close(out[:, :, s], oracle.view(2, 3, 20))


def _reference_order(x_window: torch.Tensor, weight: torch.Tensor, scale: int) -> torch.Tensor:
    """The reference's order: blur [B, C, L] with the spline of ``scale``, then the dilated
    conv without padding (the output is the part of the signal it fully covers)."""
    c = x_window.shape[1]
    k = bspline_blur(float(scale)).view(1, 1, -1).expand(c, 1, -1)
    blurred = F.conv1d(x_window, k, groups=c)
    return F.conv1d(blurred, weight, dilation=scale)


@pytest.mark.parametrize("length", [40, 41])
def test_wavelet_group_conv_is_blur_then_dilated_conv_away_from_the_border(length):
    torch.manual_seed(0)
    layer = WaveletConv1d(2, 3, 3, n_scales=3, scale_size=2)
    x = torch.randn(2, 2, 3, length)
    out = layer(x)
    w = layer.conv.weight
    for s, h in enumerate([1, 2, 4]):
        taps = min(2, 3 - s)
        window = x[:, :, s : s + taps].flatten(1, 2)
        oracle = _reference_order(window, w[:, :, :taps].flatten(1, 2), h)
        margin = (length - oracle.shape[-1]) // 2  # blur radius + dilated kernel radius
        torch.testing.assert_close(out[:, :, s, margin : length - margin], oracle)


def test_wavelet_lift_sees_the_input_at_every_scale():
    torch.manual_seed(0)
    layer = WaveletConv1d(1, 2, 3, n_scales=3, lift=True)
    x = torch.randn(2, 1, 40)
    out = layer(x)
    assert out.shape == (2, 2, 3, 40)
    for s, h in enumerate([1, 2, 4]):
        oracle = _reference_order(x, layer.conv.weight[:, :, 0], h)
        margin = (40 - oracle.shape[-1]) // 2
        torch.testing.assert_close(out[:, :, s, margin : 40 - margin], oracle)


def test_wavelet_layer_bad_arguments():
    with pytest.raises(ValueError, match="scale_size 1, got 2"):
        WaveletConv1d(1, 2, 3, n_scales=3, scale_size=2, lift=True)
    with pytest.raises(ValueError, match=r"\[B, C, L\], got \(1, 1, 3, 9\)"):
        WaveletConv1d(1, 2, 3, n_scales=3, lift=True)(torch.randn(1, 1, 3, 9))


# ----------------------------------------------------------------------------- models


def test_zoo_lists_the_1d_baselines():
    assert set(MODELS) <= set(list_models(TASK))


@pytest.mark.parametrize("name", MODELS)
def test_input_mode_is_native(name):
    assert small_model(name).input_mode == "native"


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("length", [8, 24, 45, 72])
def test_forward_backward(name, length):
    assert_every_parameter_learns(small_model(name), torch.randn(3, 1, length))


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_is_about_the_sefl_1d_model(name):
    count = sum(p.numel() for p in create_model(name, TASK).parameters())
    sefl = sum(p.numel() for p in create_model("sefl", TASK).parameters())
    assert count == PARAMS[name]
    assert abs(count - sefl) / sefl <= 0.03


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("length", [24, 37, 72])
def test_features_shapes_follow_the_length(name, length):
    feats = small_model(name).eval().features(torch.randn(2, 1, length))
    sides = [length // 2, length // 4, length // 8, length // 8]
    expected = [(c, n) for c, n in zip(FEATURE_CHANNELS[name], sides)]
    assert [tuple(f.shape[1:]) for f in feats] == expected
    assert all(f.shape[0] == 2 and not f.is_complex() for f in feats)


@pytest.fixture(scope="module")
def sefl_error() -> float:
    torch.manual_seed(0)
    model = create_model("sefl", TASK, width=SMALL).eval()
    return equivariance_error(model, smooth_sequences(3), resolutions=[24, 48, 72]).error


@pytest.mark.parametrize("name", MODELS)
def test_equivariance_error_is_finite_and_above_sefl(name, sefl_error):
    result = equivariance_error(small_model(name).eval(), smooth_sequences(3), [24, 48, 72])
    assert len(result.per_block) == 4
    assert all(math.isfinite(e) for e in result.per_block)
    assert result.error > max(1e-3, 100 * sefl_error)


@pytest.mark.parametrize("name", MODELS)
def test_wrong_channel_count_names_both(name):
    with pytest.raises(ValueError, match=r"1 input channels, got 2"):
        small_model(name)(torch.randn(2, 2, 72))


@pytest.mark.parametrize("name", MODELS)
def test_images_are_not_sequences(name):
    with pytest.raises(ValueError, match=r"\[B, C, L\], got \(2, 1, 72, 72\)"):
        small_model(name)(torch.randn(2, 1, 72, 72))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("length", [4, 7])
def test_too_short_sequences_name_the_minimum(name, length):
    with pytest.raises(ValueError, match=rf"at least 8 .*\({length},\)"):
        small_model(name)(torch.randn(2, 1, length))


@pytest.mark.parametrize("name", MODELS)
def test_unsupported_task_names_the_supported_one(name):
    with pytest.raises(ValueError, match=r"does not support task 'stl10_scale'.*mnist1d_scale"):
        create_model(name, "stl10_scale")
