"""The STL-10-scale WRN-16-8 family through the zoo: protocol, sizes, init, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F
from model_checks import assert_every_parameter_learns
from torch import nn

from baselines.dss import DilatedScaleConv2d
from baselines.wrn import ConvSite, PreActBlock, WideResNetLayers, build_wide_resnet
from benchmark.zoo import create_model, list_models
from sefl.equivariance import equivariance_error
from sefl.spectral import resample

TASK = "stl10_scale"
MODELS = ["wrn_16_8", "si_convnet_wrn", "sicnn_wrn", "dss_wrn"]
SMALL = 0.125  # width for the CPU tests: channels (2, 16, 32, 64); dss_wrn (2, 16, 30, 64)

# (ours at width 1, reference count of specs/baselines.md sections 0.5, 2, 3 and 5)
PARAMS = {
    "wrn_16_8": (10_961_370, 10_961_370),
    "si_convnet_wrn": (10_961_370, 10_961_370),
    "sicnn_wrn": (10_975_770, 10_975_770),
    "dss_wrn": (10_939_482, 10_939_482),
}

# features() at width 0.125 on the 97x97 canvas: one map per block, 97 -> 49 -> 25
FEATURE_CHANNELS = {
    "wrn_16_8": [16, 16, 32, 32, 64, 64],
    "si_convnet_wrn": [16, 16, 32, 32, 64, 64],
    "sicnn_wrn": [3 * c for c in (16, 16, 32, 32, 64, 64)],  # 3 scale columns
    "dss_wrn": [16 * 3, 16 * 3, 30 * 2, 30 * 2, 64 * 2, 64 * 2],  # scales 3, 3, 2, 2, 2, 2
}


def smooth_images(n: int, size: int = 97, seed: int = 0) -> torch.Tensor:
    """Band-limited random colour images [n, 3, size, size]."""
    g = torch.Generator().manual_seed(seed)
    return resample(torch.rand(n, 3, 9, 9, generator=g), size)


def small_model(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, TASK, width=SMALL, **overrides)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_zoo_lists_the_wrn_family():
    assert set(MODELS) <= set(list_models(TASK))


@pytest.mark.parametrize("name", MODELS)
def test_input_mode_is_canvas(name):
    assert small_model(name).input_mode == "canvas"


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [49, 96])
def test_forward_backward(name, size):
    # fully convolutional with a global pool: the 97 canvas, the reference's 96 and below
    assert_every_parameter_learns(small_model(name), torch.randn(2, 3, size, size))


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_matches_reference(name):
    ours, reference = PARAMS[name]
    count = n_params(create_model(name, TASK))
    assert count == ours
    assert abs(count - reference) / reference <= 0.03


@pytest.mark.parametrize("name", MODELS)
def test_width_shrinks_the_model(name):
    assert n_params(small_model(name)) < PARAMS[name][0] / 40  # channels / 8: ~64x fewer


@pytest.mark.parametrize("name", MODELS)
def test_features_shapes(name):
    feats = small_model(name).eval().features(torch.randn(2, 3, 97, 97))
    sides = [97, 97, 49, 49, 25, 25]
    expected = [(c, n, n) for c, n in zip(FEATURE_CHANNELS[name], sides)]
    assert [tuple(f.shape[1:]) for f in feats] == expected
    assert all(f.shape[0] == 2 and not f.is_complex() for f in feats)


def test_wrn_on_the_reference_96_ends_on_the_24x24_map_of_avg_pool_24():
    feats = small_model("wrn_16_8").eval().features(torch.randn(1, 3, 96, 96))
    assert [f.shape[-1] for f in feats] == [96, 96, 48, 48, 24, 24]


def test_wrn_structure_and_reference_init():
    torch.manual_seed(0)
    model = create_model("wrn_16_8", TASK)
    shortcuts = [block.shortcut is not None for block in model.blocks]
    assert shortcuts == [True, False, True, False, True, False]  # where channels / stride change
    conv = model.blocks[5].conv2  # 512 -> 512, 3x3: fan-out std sqrt(2 / (9 * 512))
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 512)), rel=0.02)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all() and (m.bias == 0).all()) for m in norms)
    assert bool((model.fc.bias == 0).all())


def test_pre_activation_block_adds_the_input():
    torch.manual_seed(0)
    norm1, norm2 = nn.BatchNorm2d(4).eval(), nn.BatchNorm2d(4).eval()
    conv1, conv2 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
    block = PreActBlock(norm1, conv1, norm2, conv2, None, dropout=0.3).eval()
    x = torch.randn(2, 4, 9, 9)
    oracle = x + conv2(F.relu(norm2(conv1(F.relu(norm1(x))))))
    torch.testing.assert_close(block(x), oracle)


class _CopyLift(nn.Module):
    """[B, C, H, W] -> [B, C, S, H, W]: S copies (a stand-in for a lifting layer)."""

    def __init__(self, n_scales: int) -> None:
        super().__init__()
        self.n_scales = n_scales

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(2).expand(-1, -1, self.n_scales, -1, -1)


def test_a_conv_with_a_scale_axis_plugs_in():
    # The seam for the scale-equivariant WRNs: the stem lifts to S scales, every conv keeps them.
    n_scales = 2

    def conv(site: ConvSite, c_in: int, c_out: int) -> nn.Module:
        layer = DilatedScaleConv2d(c_in, c_out, site.kernel_size, n_scales, stride=site.stride)
        return nn.Sequential(_CopyLift(n_scales), layer) if site.role == "stem" else layer

    def end(channels: int) -> nn.Module:
        return nn.Sequential(
            nn.BatchNorm3d(channels), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten()
        )

    layers = WideResNetLayers(conv, nn.BatchNorm3d, end)
    model = build_wide_resnet(layers, "toy", channels=(4, 8, 8, 8), dropout=0.0)
    x = torch.randn(2, 3, 17, 17)
    assert model(x).shape == (2, 10)
    sides = [17, 17, 9, 9, 5, 5]
    assert [tuple(f.shape[1:]) for f in model.features(x)] == [(8 * n_scales, n, n) for n in sides]


def test_dss_wrn_uses_the_delta_init():
    model = small_model("dss_wrn")
    conv = model.blocks[5].conv2  # 64 -> 64 channels: gcd 64, channel o matches input o
    weight = conv.weight.detach().clone()
    torch.testing.assert_close(weight[:, :, 0, 1, 1].diagonal(), torch.ones(64))
    weight[:, :, 0, 1, 1].fill_diagonal_(0.0)
    assert weight.abs().max() <= 0.01  # everything else U(+-0.01)
    stem = model.stem[1]  # 3 -> 2 channels: gcd 1, every pair matches with 1 / C_out
    torch.testing.assert_close(stem.weight[:, :, 0, 1, 1], torch.full((2, 3), 0.5))


@pytest.fixture(scope="module")
def sefl_error() -> float:
    torch.manual_seed(0)
    model = create_model("sefl", TASK, width=SMALL).eval()
    return equivariance_error(model, smooth_images(2), resolutions=[49, 73, 97]).error


@pytest.mark.parametrize("name", MODELS)
def test_equivariance_error_is_finite_and_above_sefl(name, sefl_error):
    result = equivariance_error(small_model(name).eval(), smooth_images(2), [49, 73, 97])
    assert len(result.per_block) == 6
    assert all(math.isfinite(e) for e in result.per_block)
    assert result.error > max(1e-3, 100 * sefl_error)


@pytest.mark.parametrize("name", MODELS)
def test_wrong_channel_count_names_both(name):
    with pytest.raises(ValueError, match=r"3 input channels, got 1"):
        small_model(name)(torch.randn(2, 1, 49, 49))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [6, 7])
def test_too_small_images_name_the_minimum(name, size):
    with pytest.raises(ValueError, match=rf"at least 8 .*\({size}, {size}\)"):
        small_model(name)(torch.randn(2, 3, size, size))


@pytest.mark.parametrize("name", MODELS)
def test_unsupported_task_names_the_supported_one(name):
    with pytest.raises(ValueError, match=r"does not support task 'mnist_scale'.*stl10_scale"):
        create_model(name, "mnist_scale")


def test_bad_backbone_arguments_raise():
    with pytest.raises(ValueError, match=r"channels must have 4 entries"):
        create_model("wrn_16_8", TASK, channels=(16, 128, 256))
    with pytest.raises(ValueError, match=r"width must be > 0"):
        create_model("wrn_16_8", TASK, width=0)
