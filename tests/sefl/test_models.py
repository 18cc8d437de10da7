"""SEFL models: exact equivariance per block, level-wise invariant logits, training signal."""

import pytest
import torch

from sefl.layers import RealChannelMix, level_sizes, resolution_set
from sefl.models import FourierSE1d, FourierSE2d, FourierSESTL
from sefl.models.head import band_images, pooled_band_images
from sefl.spectral import band, fit_spectrum, resample, signed_frequencies, to_spectrum

# (model factory, top resolution, lower resolutions that must be exact)
MODELS = {
    "mnist": (lambda **kw: FourierSE2d(width=0.125, **kw), 28, [8, 9, 14, 20, 27]),
    "stl": (lambda **kw: FourierSESTL(width=1 / 32, **kw), 97, [49, 65, 89]),
    "1d": (lambda **kw: FourierSE1d(width=0.125, **kw), 72, [24, 32, 48, 64]),
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


@pytest.mark.parametrize("name", list(MODELS))
def test_fast_path_model_equals_the_loop_oracle(name):
    """The spectral convolutions and 1x1s are shared; the nonlinearities differ in
    implementation only: same weights, same features and logits."""
    model, x, lower, ndim = make(name)
    oracle = MODELS[name][0](implementation="loop").double().eval()
    oracle.load_state_dict(model.state_dict())
    with torch.no_grad():
        for inp in (x, resample(x, lower[-1], ndim)):
            for f_fast, f_loop in zip(model.features(inp), oracle.features(inp)):
                assert rel(f_fast, f_loop) <= 1e-12
            assert rel(model.forward_levels(inp), oracle.forward_levels(inp)) <= 1e-12


def test_param_groups_follow_the_paper():
    model = FourierSE2d(width=0.125)
    groups = {g["weight_decay"]: g["params"] for g in model.param_groups(3e-2)}
    # The four filters, undecayed (the regulariser replaces decay), and nothing else.
    assert {id(p) for p in groups[0.0]} == {id(b.conv.taps) for b in model.blocks}
    groups = {wd: len(ps) for wd, ps in groups.items()}
    assert pytest.approx(max(groups)) == 3e-2
    assert sum(groups.values()) == len(list(model.parameters()))
    norm_decays = sorted(wd for wd in groups if 0 < wd < 3e-2)
    assert pytest.approx(norm_decays[0]) == (6 / 28) ** 2 * 3e-2


def head_params(channels, cells, hidden=256, classes=10):
    """LayerNorm, Linear, LayerNorm, Linear of the multi-level head."""
    features = channels * cells
    return 2 * features + (features + 1) * hidden + 2 * hidden + (hidden + 1) * classes


def norm_params(channels, base, top, step, pooled=False):
    """Instance norms with affine scale and shift, one per level."""
    return 2 * channels * len(level_sizes(resolution_set(base, top, step), pooled))


# Width 1, effective real numbers: each filter is a real n (x n) tensor per channel pair, each
# 1x1 a real C_in x C_out matrix; nothing is complex.
MNIST_CHANNELS = [(1, 32), (32, 64), (64, 100), (100, 100)]
STL_BLOCKS = [(32, 128, 7, (40, 97, 8)), (128, 256, 5, (20, 49, 4)), (256, 512, 5, (10, 25, 2))]
PARAMETER_COUNTS = {
    "mnist": (
        lambda: FourierSE2d(),
        sum(i * o * 5 * 5 for i, o in MNIST_CHANNELS),
        sum(i * o for i, o in MNIST_CHANNELS),
        sum(norm_params(o, 6, 28, 1) for _, o in MNIST_CHANNELS) + head_params(100, 4),
    ),
    "stl": (
        lambda: FourierSESTL(),
        sum(i * o * n * n + o * o * n * n for i, o, n, _ in STL_BLOCKS),
        3 * 32 + sum(i * o for i, o, _, _ in STL_BLOCKS),
        norm_params(32, 40, 97, 8)
        + sum(
            norm_params(o, *res) + norm_params(o, *res, pooled=k < 2)
            for k, (_, o, _, res) in enumerate(STL_BLOCKS)
        )
        + head_params(512, 4),
    ),
    "1d": (
        lambda: FourierSE1d(),
        sum(i * o * 9 for i, o in MNIST_CHANNELS),
        sum(i * o for i, o in MNIST_CHANNELS),
        sum(norm_params(o, 24, 72, 8) for _, o in MNIST_CHANNELS) + head_params(100, 4),
    ),
}


@pytest.mark.parametrize("name", list(PARAMETER_COUNTS))
def test_parameter_counts_at_width_1(name):
    factory, filters, mixes, rest = PARAMETER_COUNTS[name]
    model = factory()
    params = dict(model.named_parameters())
    assert not any(p.is_complex() for p in params.values())
    assert sum(p.numel() for n, p in params.items() if n.endswith(".taps")) == filters
    mix_names = [n for n, m in model.named_modules() if isinstance(m, RealChannelMix)]
    assert sum(params[f"{n}.weight"].numel() for n in mix_names) == mixes
    assert sum(p.numel() for p in params.values()) == filters + mixes + rest


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


@pytest.mark.parametrize(
    "ndim, n, grid, pool, bands",
    [
        (2, 28, 28, 14, (3, 4, 6, 13)),
        (2, 21, 28, 14, (3, 9, 40)),
        (2, 97, 25, 13, (4, 8, 12)),
        (1, 72, 72, 18, (11, 20, 35)),
        (1, 31, 72, 18, (11, 15, 50)),
    ],
)
def test_pooled_band_images_match_pooling_the_images(ndim, n, grid, pool, bands):
    """The head's hand-written backward (window maxima straight to the spectrum) gives the
    values and gradients of max-pooling ``band_images`` with autograd (odd and even sizes,
    bands above the map's band, a partial last window)."""
    torch.manual_seed(0)
    size = min(n, grid)
    compact = 2 * band(size) + 1
    spec = fit_spectrum(
        to_spectrum(torch.randn((2, 3) + (n,) * ndim, dtype=torch.float64), ndim), compact, ndim, n
    )
    oracle_in, fast_in = spec.clone().requires_grad_(True), spec.clone().requires_grad_(True)
    images = band_images(oracle_in, compact, grid, ndim, list(bands))
    pool_fn = torch.nn.functional.max_pool2d if ndim == 2 else torch.nn.functional.max_pool1d
    oracle = pool_fn(images.flatten(1, 2), pool, ceil_mode=True)
    oracle = oracle.view(*images.shape[:3], *oracle.shape[2:])
    fast = pooled_band_images(fast_in, compact, grid, ndim, bands, pool)
    torch.testing.assert_close(fast, oracle, rtol=1e-12, atol=1e-12)  # 2D sums ring by ring
    weights = torch.randn_like(oracle)
    (oracle * weights).sum().backward()
    (fast * weights).sum().backward()
    assert oracle_in.grad.abs().max() > 0.1
    torch.testing.assert_close(fast_in.grad, oracle_in.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ndim, n, grid, bands", [(2, 28, 28, (0, 3, 13, 20)), (2, 21, 28, (2, 9)),
                                                  (2, 97, 25, (4, 12)), (1, 72, 72, (0, 11, 35)),
                                                  (1, 31, 72, (5, 15))])
def test_band_images_are_the_band_limited_map_sampled_on_the_grid(ndim, n, grid, bands):
    """band_images against its definition, summed term by term: image_b(u) = Re sum over the
    half-spectrum frequencies with max(|k_1|, .., |k_d|) <= b of w X[k] exp(2 pi i k.u / grid),
    w = 2 off the q = 0 column (the Hermitian twin)."""
    torch.manual_seed(0)
    compact = 2 * band(min(n, grid)) + 1
    spec = fit_spectrum(to_spectrum(torch.randn((2, 3) + (n,) * ndim, dtype=torch.float64),
                                    ndim), compact, ndim, n)
    h = band(compact)
    q = torch.arange(h + 1, dtype=torch.float64)
    weight = torch.where(q == 0, 1.0, 2.0)
    u = torch.arange(grid, dtype=torch.float64)
    ev = torch.exp(2j * torch.pi * u[:, None] * q[None, :] / grid) * weight  # [grid, Kc]
    images = band_images(spec, compact, grid, ndim, list(bands))
    for i, b in enumerate(bands):
        if ndim == 1:
            expected = torch.einsum("bcq,uq->bcu", spec[..., : h + 1] * (q <= b), ev).real
        else:
            k = signed_frequencies(compact).to(torch.float64)
            eu = torch.exp(2j * torch.pi * u[:, None] * k[None, :] / grid)  # [grid, K]
            inside = (k.abs()[:, None] <= b) & (q[None, :] <= b)
            expected = torch.einsum("bckq,uk,vq->bcuv", spec * inside, eu, ev).real
        torch.testing.assert_close(images[:, :, i], expected, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("name, n", [("mnist", 28), ("mnist", 13), ("1d", 72), ("1d", 31)])
def test_block_fuses_the_1x1_into_the_convolution_exactly(name, n):
    """A block's fused product (the real 1x1 added to the filter's multiplier) equals the
    convolution plus the 1x1 applied separately, values and gradients."""
    model, _, _, ndim = make(name)
    block = model.blocks[1]
    torch.manual_seed(1)
    x = torch.randn((2, block.conv.in_channels) + (n,) * ndim, dtype=torch.float64)
    spec = to_spectrum(x, ndim)
    args = () if ndim == 2 else (n,)
    fused = block._mixed(spec, n)
    separate = block.conv(spec, *args) + block.mix(spec)
    torch.testing.assert_close(fused, separate, rtol=1e-12, atol=1e-12)
    params = [block.conv.taps, block.mix.weight]
    for a, b in zip(
        torch.autograd.grad(torch.view_as_real(fused).square().sum(), params),
        torch.autograd.grad(torch.view_as_real(separate).square().sum(), params),
    ):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
