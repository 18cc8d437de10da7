"""Properties of ideal resampling (specs/sefl-method.md section 1), over odd and even sizes."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sefl.spectral import band, fit_spectrum, resample, ring_mask, to_space, to_spectrum

DTYPES = {torch.float64: 1e-12, torch.float32: 1e-5}
sizes = st.integers(4, 64)
dtypes = st.sampled_from(list(DTYPES))
seeds = st.integers(0, 2**16)


def signal(shape, dtype, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def rel(a, b):
    return float((a - b).norm() / (b.norm() + 1e-30))


@given(n=sizes, ndim=st.sampled_from([1, 2]), dtype=dtypes, seed=seeds)
def test_identity_at_same_size_for_band_limited_input(n, ndim, dtype, seed):
    x = resample(signal((2, 3) + (n,) * ndim, dtype, seed), n, ndim)  # band-limit to band(n)
    assert rel(resample(x, n, ndim), x) <= DTYPES[dtype]


@given(s=sizes, r=sizes, ndim=st.sampled_from([1, 2]), dtype=dtypes, seed=seeds)
def test_downscaling_composes(s, r, ndim, dtype, seed):
    s, r = max(s, r), min(s, r)
    x = signal((2,) + (s + 3,) * ndim, dtype, seed)
    assert rel(resample(resample(x, s, ndim), r, ndim), resample(x, r, ndim)) <= DTYPES[dtype]


@given(n=sizes, up=st.integers(0, 40), ndim=st.sampled_from([1, 2]), dtype=dtypes, seed=seeds)
def test_upsampling_then_downsampling_is_identity(n, up, ndim, dtype, seed):
    x = resample(signal((3,) + (n,) * ndim, dtype, seed), n, ndim)
    assert rel(resample(resample(x, n + up, ndim), n, ndim), x) <= DTYPES[dtype]


@given(n=sizes, r=sizes, dtype=dtypes, seed=seeds, a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_linear(n, r, dtype, seed, a, b):
    x = signal((2, n, n), dtype, seed)
    y = signal((2, n, n), dtype, seed + 1)
    lhs = resample(a * x + b * y, r)
    rhs = a * resample(x, r) + b * resample(y, r)
    assert (lhs - rhs).abs().max() <= 10 * DTYPES[dtype] * (x.abs().max() + y.abs().max())


@given(n=sizes, r=sizes, ndim=st.sampled_from([1, 2]), dtype=dtypes, seed=seeds)
def test_energy_never_increases(n, r, ndim, dtype, seed):
    r = min(n, r)
    x = signal((2,) + (n,) * ndim, dtype, seed)
    # Mean energy per sample is the spectrum's power (Parseval with forward normalisation).
    before = x.pow(2).mean()
    after = resample(x, r, ndim).pow(2).mean()
    assert after <= before * (1 + DTYPES[dtype])


@given(n=sizes, r=sizes, dtype=dtypes, seed=seeds)
def test_2d_is_1d_along_each_axis(n, r, dtype, seed):
    x = signal((2, n, n), dtype, seed)
    rows = resample(x, r, ndim=1)
    both = resample(rows.transpose(-1, -2), r, ndim=1).transpose(-1, -2)
    assert rel(resample(x, r), both) <= DTYPES[dtype]


@pytest.mark.parametrize("n", [4, 8, 28])
def test_nyquist_bin_is_dropped_on_even_grids(n):
    x = torch.zeros(n, n, dtype=torch.float64)
    x[::2] = 1.0  # alternating rows: the mean plus a pure Nyquist pattern
    kept = to_spectrum(x).abs() > 1e-12
    assert int(kept.sum()) == 1 and bool(kept[0, 0])
    assert band(n) == n // 2 - 1


def test_resample_preserves_mean_and_dtype():
    x = torch.rand(2, 1, 17, 17)
    y = resample(x, 9)
    assert y.dtype == torch.float32 and y.shape == (2, 1, 9, 9)
    torch.testing.assert_close(y.mean((-1, -2)), x.mean((-1, -2)))


def test_ring_masks_partition_the_band():
    total = sum(ring_mask(inner, outer, 27).int() for inner, outer in [(0, 9), (9, 15), (15, 27)])
    assert int(total.max()) == 1
    assert torch.equal(total.bool(), ring_mask(0, 27, 27))


def test_fit_spectrum_roundtrip_between_grids():
    x = resample(torch.randn(3, 12, 12, dtype=torch.float64), 9)
    spec = to_spectrum(x)
    back = to_space(fit_spectrum(fit_spectrum(spec, 30), 9), 9)
    torch.testing.assert_close(back, x)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: resample(torch.randn(2, 5, 6), 3), "square"),
        (lambda: resample(torch.randn(2, 5, 5, dtype=torch.cfloat), 3), "real"),
        (lambda: resample(torch.randn(5), 3, ndim=3), "ndim"),
        (lambda: fit_spectrum(torch.randn(2, 5, 3), 3), "complex"),
        (lambda: fit_spectrum(torch.randn(2, 3, dtype=torch.cfloat), 3, ndim=1), "needs n"),
        (lambda: resample(torch.randn(4, 4), 0), "size"),
    ],
)
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
