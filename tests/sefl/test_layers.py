"""Exactness, oracle agreement and input checks of the Fourier layers."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from sefl.layers import (
    RealChannelMix,
    ScaleEqMaxPool2d,
    ScaleEqNonlin1d,
    ScaleEqNonlin2d,
    SpectralConv1d,
    SpectralConv2d,
    dirichlet_matrix,
    plan_levels,
    resolution_set,
)
from sefl.spectral import fit_spectrum, resample, signed_frequencies, to_space, to_spectrum

# Relative error bounds of the issue: float64 at rounding level, float32 a few ulps of the sums.
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}


def rel(a, b):
    return float(((a - b).norm() / (b.norm() + 1e-30)).detach())


def randomise_norms(layer, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w, b in zip(layer.norm_weights, layer.norm_biases):
            w.copy_(torch.rand(w.shape, generator=g) + 0.5)
            b.copy_(torch.rand(b.shape, generator=g) - 0.5)


def space_map(layer, ndim):
    """The layer as a map of real signals: x -> space(layer(spectrum(x)))."""

    def apply(x):
        n = x.shape[-1]
        spec = to_spectrum(x, ndim).to(x.dtype.to_complex())
        out = layer(spec) if ndim == 2 else layer(spec, n)
        m = out.shape[-2] if ndim == 2 else n
        return to_space(out, m, ndim)

    return apply


@given(
    ndim=st.sampled_from([1, 2]),
    base=st.integers(4, 10),
    span=st.integers(3, 20),
    step=st.integers(1, 4),
    channels=st.integers(1, 4),
    norm=st.booleans(),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    seed=st.integers(0, 1000),
)
def test_nonlinearity_is_exactly_equivariant(ndim, base, span, step, channels, norm, dtype, seed):
    top = base + span
    cls = ScaleEqNonlin2d if ndim == 2 else ScaleEqNonlin1d
    layer = cls(channels, base, top, step, norm=norm).to(dtype)
    if norm:
        randomise_norms(layer, seed)
    f = space_map(layer, ndim)
    x = torch.randn(
        (2, channels) + (top,) * ndim, generator=torch.Generator().manual_seed(seed), dtype=dtype
    )
    full = f(x)
    for r in resolution_set(base, top, step)[:-1]:
        assert rel(f(resample(x, r, ndim)), resample(full, r, ndim)) <= TOLERANCE[dtype], r


@given(
    ndim=st.sampled_from([1, 2]),
    n=st.integers(4, 40),
    channels=st.integers(1, 3),
    modes=st.sampled_from([4, 8, 16, 28]),
    local=st.integers(1, 7),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    seed=st.integers(0, 1000),
)
def test_spectral_conv_is_exactly_equivariant(ndim, n, channels, modes, local, dtype, seed):
    torch.manual_seed(seed)
    cls = SpectralConv2d if ndim == 2 else SpectralConv1d
    layer = cls(channels, channels + 1, modes, local).to(dtype)
    f = space_map(layer, ndim)
    x = torch.randn((2, channels) + (n,) * ndim, dtype=dtype)
    full = f(x)
    for r in range(3, n):
        assert rel(f(resample(x, r, ndim)), resample(full, r, ndim)) <= TOLERANCE[dtype]


@given(n=st.integers(9, 31), seed=st.integers(0, 1000))
def test_maxpool_nonlinearity_is_exactly_equivariant(n, seed):
    layer = ScaleEqMaxPool2d(2, 8, n, 2).double()
    randomise_norms(layer, seed)
    f = space_map(layer, 2)
    x = torch.randn(2, 2, n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    full = f(x)
    for r in resolution_set(8, n, 2)[:-1]:
        small = f(resample(x, r))
        assert small.shape[-1] == (r + 1) // 2
        assert rel(small, resample(full, small.shape[-1])) <= 1e-12


def fast_and_oracle(ndim, n, step, dtype, activation):
    """Outputs and gradients (input, then every norm parameter) of both implementations."""
    torch.manual_seed(n + step)
    cls = ScaleEqNonlin2d if ndim == 2 else ScaleEqNonlin1d
    fast = cls(5, 6, 28, step, activation=activation).to(dtype)
    randomise_norms(fast, n)
    oracle = cls(5, 6, 28, step, activation=activation, implementation="loop").to(dtype)
    oracle.load_state_dict(fast.state_dict())
    # A non-Hermitian zero column: both implementations must read it the same way (as irfft).
    spec = to_spectrum(torch.randn((4, 5) + (n,) * ndim, dtype=dtype), ndim) * (1 + 0.4j)
    spec.requires_grad_(True)
    args = () if ndim == 2 else (n,)
    results = []
    for layer in (fast, oracle):
        out = layer(spec, *args)
        inputs = [spec, *layer.norm_weights, *layer.norm_biases]
        grads = torch.autograd.grad(out.abs().sum(), inputs, allow_unused=True)
        # Norms of levels above n are unused by both implementations.
        grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]
        results.append((out, grads))
    return results


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("n", [13, 20, 27, 28])
@pytest.mark.parametrize("step", [1, 3])
def test_fast_path_equals_the_oracle(ndim, n, step):
    (out_fast, grads_fast), (out_oracle, grads_oracle) = fast_and_oracle(
        ndim, n, step, torch.float32, F.relu
    )
    assert rel(out_fast, out_oracle) <= 1e-6
    # Float32 rounding can move a pre-activation across ReLU's kink, so float32 gradients are
    # compared with a smooth activation and ReLU's in float64.
    for dtype, activation, bound in [(torch.float32, F.gelu, 1e-5), (torch.float64, F.relu, 1e-12)]:
        (_, grads_fast), (_, grads_oracle) = fast_and_oracle(ndim, n, step, dtype, activation)
        for g_fast, g_oracle in zip(grads_fast, grads_oracle):
            assert rel(g_fast, g_oracle) <= bound


@settings(max_examples=10)
@given(
    n=st.integers(5, 13),
    base=st.integers(1, 5),
    step=st.integers(1, 3),
    norm=st.booleans(),
    pooled=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_fast_path_backward_is_the_gradient(n, base, step, norm, pooled, seed):
    """The hand-written backward of the 2D fast path against finite differences."""
    generator = torch.Generator().manual_seed(seed)
    cls = ScaleEqMaxPool2d if pooled else ScaleEqNonlin2d
    layer = cls(2, base, 13, step, activation=torch.tanh, norm=norm).double()
    if norm:
        randomise_norms(layer, seed)
    spec = to_spectrum(torch.randn(1, 2, n, n, generator=generator, dtype=torch.float64))
    inputs = (spec.requires_grad_(True), *layer.parameters())
    assert torch.autograd.gradcheck(lambda s, *_: layer(s), inputs)


@pytest.mark.parametrize("n", [41, 45, 49])
def test_maxpool_fast_path_equals_the_oracle(n):
    fast = ScaleEqMaxPool2d(3, 20, 49, 4)
    randomise_norms(fast, n)
    oracle = ScaleEqMaxPool2d(3, 20, 49, 4, implementation="loop")
    oracle.load_state_dict(fast.state_dict())
    spec = to_spectrum(torch.randn(2, 3, n, n, generator=torch.Generator().manual_seed(n)))
    assert rel(fast(spec), oracle(spec)) <= 1e-6
    # Gradients in float64: float32 rounding can swap near-equal maxima of a window.
    spec = spec.to(torch.complex128).requires_grad_(True)
    grads = []
    for layer in (fast.double(), oracle.double()):
        inputs = [spec, *layer.norm_weights, *layer.norm_biases]
        out = layer(spec).abs().sum()
        level_grads = torch.autograd.grad(out, inputs, allow_unused=True)
        # Norms of levels above n are unused by both implementations.
        grads.append([torch.zeros_like(x) if g is None else g for g, x in zip(level_grads, inputs)])
    for g_fast, g_oracle in zip(*grads):
        assert rel(g_fast, g_oracle) <= 1e-10


@pytest.mark.parametrize("n", [3, 5, 7])
def test_dirichlet_interpolation_is_the_identity_when_global_equals_local(n):
    m = dirichlet_matrix(torch.arange(n), n, n)
    torch.testing.assert_close(m, torch.eye(n, dtype=torch.complex128), atol=1e-12, rtol=0)


def test_dirichlet_interpolation_reproduces_the_filters_dtft():
    # W at frequency k is the DTFT at 2 pi k / G of the n-tap filter whose n-point DFT is L.
    n, g = 5, 28
    taps = torch.randn(n, dtype=torch.float64)
    local = torch.fft.fft(taps, norm="forward")
    k = torch.arange(-13, 14)
    interpolated = dirichlet_matrix(k, n, g) @ local.to(torch.complex128)
    phase = -2 * torch.pi * k[:, None].double() * torch.arange(n).double() / g
    dtft = (taps[None, :] * torch.polar(torch.ones_like(phase), phase)).sum(1) / n
    torch.testing.assert_close(interpolated, dtft, atol=1e-12, rtol=0)


@pytest.mark.parametrize("n", [8, 9])
def test_spectral_conv_zeroes_frequencies_beyond_the_global_modes(n):
    layer = SpectralConv2d(1, 1, global_modes=4, local_modes=3)
    out = layer(to_spectrum(torch.randn(1, 1, n, n)))
    kx = torch.fft.fftfreq(n, 1 / n).abs()
    outside = (kx[:, None] > 1) | (torch.arange(n // 2 + 1)[None, :] > 1)
    assert out[0, 0][outside].abs().max() == 0


def test_regulariser_is_positive_and_differentiable():
    layer = SpectralConv2d(2, 3, 28, 5)
    reg = layer.regulariser()
    reg.backward()
    assert reg > 0 and layer.taps.grad.abs().sum() > 0


def impulse_responses(layer, c_in, ndim, n):
    """The layer's response to a unit impulse in each input channel on an n-point grid:
    ``[C_in, C_out, n(, n)]`` real float64."""
    delta = torch.zeros((c_in, c_in) + (n,) * ndim, dtype=torch.float64)
    delta[(range(c_in), range(c_in)) + (0,) * ndim] = 1.0
    with torch.no_grad():
        return space_map(layer, ndim)(delta)


def band_projected_taps(n_taps, ndim, n):
    """The band projection (resample to the same grid: Nyquist dropped) of a unit impulse at
    each tap of an n-tap filter: ``[n_taps^ndim, n^ndim]``, one flattened row per tap."""
    taps = torch.zeros((n_taps**ndim,) + (n,) * ndim, dtype=torch.float64)
    for row, tap in enumerate(torch.cartesian_prod(*[torch.arange(n_taps)] * ndim).view(-1, ndim)):
        taps[(row, *tap.tolist())] = 1.0
    return resample(taps, n, ndim).flatten(1)


def least_squares_residual(response, basis):
    """Relative residual of the best fit of each row of ``response`` [P, F] by the rows of
    ``basis`` [T, F] (real coefficients)."""
    coeffs = torch.linalg.lstsq(basis.T, response.T).solution
    return float((basis.T @ coeffs - response.T).norm() / response.norm())


@given(
    ndim=st.sampled_from([1, 2]),
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    modes=st.sampled_from([8, 16, 28]),
    local=st.integers(1, 7),
    seed=st.integers(0, 1000),
)
def test_the_convolution_is_a_real_n_tap_filter_on_its_grid(ndim, c_in, c_out, modes, local, seed):
    """On the G-point grid, every channel pair's impulse response is a real filter supported on
    taps 0..n-1 (per axis), band-projected: the authors' function (spec section 3)."""
    torch.manual_seed(seed)
    cls = SpectralConv2d if ndim == 2 else SpectralConv1d
    layer = cls(c_in, c_out, modes, local).double()
    response = impulse_responses(layer, c_in, ndim, modes).flatten(0, 1).flatten(1)
    basis = band_projected_taps(local, ndim, modes)
    assert least_squares_residual(response, basis) <= 1e-10


@given(
    ndim=st.sampled_from([1, 2]),
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    n=st.integers(3, 20),
    seed=st.integers(0, 1000),
)
def test_the_channel_mix_is_a_real_1x1(ndim, c_in, c_out, n, seed):
    """Each channel pair's impulse response is a real multiple of the (band-projected) delta."""
    torch.manual_seed(seed)
    mix = RealChannelMix(c_in, c_out).double()
    # space_map passes 1D layers the grid size, which a 1x1 does not need.
    layer = mix if ndim == 2 else lambda spec, _: mix(spec)
    response = impulse_responses(layer, c_in, ndim, n).flatten(0, 1).flatten(1)
    assert least_squares_residual(response, band_projected_taps(1, ndim, n)) <= 1e-10


@given(
    ndim=st.sampled_from([1, 2]),
    modes=st.sampled_from([4, 8, 16, 28, 64]),
    local=st.integers(1, 9),
    n=st.integers(3, 70),
    seed=st.integers(0, 1000),
)
def test_the_filter_multiplier_is_the_dirichlet_interpolation(ndim, modes, local, n, seed):
    """W built from the taps equals the spec's definition W = M L M^T, L = DFT_n(taps)."""
    torch.manual_seed(seed)
    cls = SpectralConv2d if ndim == 2 else SpectralConv1d
    layer = cls(2, 3, modes, local).double()
    h = layer.active_band(n)
    local_dft = layer.local.detach()
    torch.testing.assert_close(
        local_dft, torch.fft.fftn(layer.taps.detach(), dim=tuple(range(-ndim, 0)))
    )
    cols = dirichlet_matrix(torch.arange(h + 1), local, modes)
    if ndim == 2:
        rows = dirichlet_matrix(signed_frequencies(2 * h + 1), local, modes)
        expected = torch.einsum("xm,iomn,yn->ioxy", rows, local_dft, cols)
    else:
        expected = torch.einsum("km,iom->iok", cols, local_dft)
    torch.testing.assert_close(layer.weight(h).detach(), expected, atol=1e-12, rtol=1e-12)


@given(
    ndim=st.sampled_from([1, 2]),
    local=st.integers(1, 9),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    seed=st.integers(0, 1000),
)
def test_regulariser_uses_the_authors_normalisation(ndim, local, dtype, seed):
    """||L P|| + ||ifft_n(L, norm="forward")||, and the spatial term is n^ndim ||taps||."""
    torch.manual_seed(seed)
    cls = SpectralConv2d if ndim == 2 else SpectralConv1d
    layer = cls(2, 3, 28, local).to(dtype)
    taps = layer.taps.detach().double()
    u = torch.linspace(0, 1, local, dtype=torch.float64)
    grid = torch.meshgrid(*[u] * ndim, indexing="ij")
    penalty = 30 * torch.exp(-10 * sum((g - 0.5) ** 2 for g in grid))
    dft = torch.fft.fftn(taps, dim=tuple(range(-ndim, 0)))
    expected = (dft * penalty).norm() + local**ndim * taps.norm()
    assert rel(layer.regulariser().detach().double(), expected) <= TOLERANCE[dtype]


def test_level_plan_visits_the_coarsest_resolution_of_each_band():
    plan = plan_levels(28, resolution_set(6, 28, 1))
    assert plan.sizes == (6, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27)
    assert resolution_set(40, 97, 8) == [40, 41, 49, 57, 65, 73, 81, 89, 97]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: SpectralConv2d(2, 3, 27, 5), "global_modes"),
        (lambda: SpectralConv2d(0, 3, 28, 5), "in_channels"),
        (lambda: SpectralConv2d(2, 3, 28, 5)(torch.randn(1, 2, 8, 5)), "complex"),
        (
            lambda: SpectralConv2d(2, 3, 28, 5)(torch.randn(1, 3, 8, 5, dtype=torch.cfloat)),
            r"\[B, 2",
        ),
        (
            lambda: ScaleEqNonlin2d(2, 6, 28)(to_spectrum(torch.randn(1, 2, 5, 5)).cfloat()),
            "outside",
        ),
        (
            lambda: ScaleEqNonlin2d(2, 6, 28)(to_spectrum(torch.randn(1, 2, 29, 29)).cfloat()),
            "outside",
        ),
        (lambda: ScaleEqNonlin2d(2, 6, 28, step=0), "step"),
        (lambda: ScaleEqNonlin2d(2, 6, 28, implementation="gpu"), "implementation"),
        (lambda: ScaleEqNonlin1d(2, 30, 28), "max_resolution"),
        (lambda: RealChannelMix(2, 3)(torch.randn(1, 2, 4, 3)), "complex"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@given(
    ndim=st.sampled_from([1, 2]),
    n=st.integers(3, 30),
    modes=st.sampled_from([4, 8, 28]),
    residual=st.booleans(),
    seed=st.integers(0, 1000),
)
@settings(max_examples=30, deadline=None)
def test_real_contraction_equals_the_complex_product(ndim, n, modes, residual, seed):
    """The convolution's real-arithmetic contraction on the spectrum's own layout equals the
    straightforward complex per-frequency product on the cropped compact spectrum, padded back
    (values and gradients; odd and even sizes; with and without the fused real 1x1)."""
    torch.manual_seed(seed)
    cls = SpectralConv2d if ndim == 2 else SpectralConv1d
    layer = cls(3, 2, modes, 3).double()
    mix = RealChannelMix(3, 2).double()
    x = to_spectrum(torch.randn((2, 3) + (n,) * ndim, dtype=torch.float64), ndim)
    fast_in, oracle_in = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    args = () if ndim == 2 else (n,)
    fast = layer(fast_in, *args, residual=mix.weight if residual else None)
    h = layer.active_band(n)
    weight = layer.weight(h)
    if residual:
        weight = weight + mix.weight.T.reshape(3, 2, *[1] * ndim)
    compact = fit_spectrum(oracle_in, 2 * h + 1, ndim, n)
    oracle = fit_spectrum(torch.einsum("bi...,io...->bo...", compact, weight), n, ndim, 2 * h + 1)
    torch.testing.assert_close(fast, oracle, rtol=1e-12, atol=1e-12)
    probe = torch.randn_like(oracle)
    grads_fast = torch.autograd.grad(
        torch.view_as_real(fast * probe).sum(), [fast_in, layer.taps, mix.weight], allow_unused=True
    )
    grads_oracle = torch.autograd.grad(
        torch.view_as_real(oracle * probe).sum(),
        [oracle_in, layer.taps, mix.weight],
        allow_unused=True,
    )
    for got, want in zip(grads_fast, grads_oracle):
        if want is None:
            assert got is None
        else:
            assert want.abs().max() > 0
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
