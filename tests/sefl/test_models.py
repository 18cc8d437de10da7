"""SEFL models: exact equivariance per block, level-wise invariant logits, training signal."""

import pytest
import torch

from sefl.models import FourierSE1d, FourierSE2d, FourierSESTL
from sefl.spectral import resample

# (model factory, top resolution, lower resolutions that must be exact)
MODELS = {
    "mnist": (lambda: FourierSE2d(width=0.125), 28, [8, 9, 14, 20, 27]),
    "stl": (lambda: FourierSESTL(width=1 / 32), 97, [49, 65, 89]),
    "1d": (lambda: FourierSE1d(width=0.125), 72, [24, 25, 47, 71]),
}


def make(name, dtype=torch.float64):
    torch.manual_seed(0)
    factory, top, lower = MODELS[name]
    model = factory().to(dtype).eval()
    ndim = 1 if name == "1d" else 2
    channels = 3 if name == "stl" else 1
    x = torch.randn((2, channels) + (top,) * ndim, dtype=dtype)
    return model, x, lower, ndim


def rel(a, b):
    return float((a - b).norm() / (b.norm() + 1e-30))


@pytest.mark.parametrize("name", list(MODELS))
def test_every_block_is_exactly_equivariant(name):
    model, x, lower, ndim = make(name)
    with torch.no_grad():
        full = model.features(x)
        for r in lower:
            small = model.features(resample(x, r, ndim))
            for i, (f_full, f_small) in enumerate(zip(full, small)):
                s = f_small.shape[-1]
                assert rel(f_small, resample(f_full, s, ndim)) <= 1e-10, (r, i)


@pytest.mark.parametrize("name", list(MODELS))
def test_level_logits_agree_for_every_shared_level(name):
    model, x, lower, ndim = make(name)
    with torch.no_grad():
        full = model.forward_levels(x)
        for r in lower:
            small = model.forward_levels(resample(x, r, ndim))
            assert small.shape[1] <= full.shape[1]
            torch.testing.assert_close(small, full[:, : small.shape[1]], atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", list(MODELS))
def test_float32_features_are_equivariant(name):
    model, x, lower, ndim = make(name, torch.float32)
    with torch.no_grad():
        f_full = model.features(x)[-1]
        f_small = model.features(resample(x, lower[0], ndim))[-1]
    assert rel(f_small, resample(f_full, f_small.shape[-1], ndim)) <= 1e-5


@pytest.mark.parametrize("name", ["mnist", "1d"])
def test_a_few_optimiser_steps_lower_the_loss(name):
    model, x, _, _ = make(name, torch.float32)
    model.train()
    torch.manual_seed(1)
    x = torch.randn(16, *x.shape[1:])
    y = torch.randint(0, 10, (16,))
    opt = torch.optim.AdamW(model.param_groups(3e-2), lr=1e-2)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = model.loss(x, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_every_parameter_gets_a_gradient():
    model, x, _, _ = make("mnist", torch.float32)
    model.train()
    model.loss(x.float(), torch.tensor([1, 2])).backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert missing == []


def test_param_groups_follow_the_paper():
    model = FourierSE2d(width=0.125)
    groups = {g["weight_decay"]: len(g["params"]) for g in model.param_groups(3e-2)}
    assert groups[0.0] == 4  # the four spectral weights
    assert pytest.approx(max(groups)) == 3e-2
    assert sum(groups.values()) == len(list(model.parameters()))
    norm_decays = sorted(wd for wd in groups if 0 < wd < 3e-2)
    assert pytest.approx(norm_decays[0]) == (6 / 28) ** 2 * 3e-2


def test_parameter_count_at_width_1():
    model = FourierSE2d()
    complex_params = sum(p.numel() // 2 for n, p in model.named_parameters() if "local_weight" in n)
    assert complex_params == 1 * 32 * 25 + 32 * 64 * 25 + 64 * 100 * 25 + 100 * 100 * 25


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: FourierSE2d(width=0.125)(torch.randn(2, 3, 28, 28)), "C = 1"),
        (lambda: FourierSE2d(width=0.125)(torch.randn(2, 1, 5, 5)), "6..28"),
        (lambda: FourierSE2d(width=0.125)(torch.randn(2, 1, 30, 30)), "6..28"),
        (lambda: FourierSE1d(width=0.125)(torch.randn(2, 1, 28, 28)), r"\[B, C, n\]"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
