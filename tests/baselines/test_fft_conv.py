"""baselines.fft_conv: the FFT path is F.conv2d's function, forward and backward."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.fft_conv import conv2d, fft_conv2d
from baselines.hermite import hermite_basis
from baselines.sesn import SESConvHH

TOLERANCE = {torch.float64: 1e-10, torch.float32: 2e-4}


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 3),
    groups=st.integers(1, 3),
    c_in=st.integers(1, 4),
    c_out=st.integers(1, 4),
    height=st.integers(5, 17),
    width=st.integers(5, 17),
    kernel=st.integers(1, 9),
    padding=st.integers(0, 5),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    seed=st.integers(0, 2**16),
)
def test_fft_conv2d_equals_conv2d_with_its_gradients(batch, groups, c_in, c_out, height, width,
                                                     kernel, padding, dtype, seed):
    if min(height, width) + 2 * padding < kernel:
        return  # no output: F.conv2d refuses too
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, groups * c_in, height, width, generator=gen, dtype=dtype,
                    requires_grad=True)
    w = torch.randn(groups * c_out, c_in, kernel, kernel, generator=gen, dtype=dtype,
                    requires_grad=True)
    direct = F.conv2d(x, w, padding=padding, groups=groups)
    fft = fft_conv2d(x, w, padding, groups)
    assert fft.shape == direct.shape
    assert relative(fft, direct) < TOLERANCE[dtype]
    probe = torch.randn(direct.shape, generator=gen, dtype=dtype)
    grads_direct = torch.autograd.grad((direct * probe).sum(), (x, w))
    grads_fft = torch.autograd.grad((fft * probe).sum(), (x, w))
    for g_fft, g_direct in zip(grads_fft, grads_direct):
        assert relative(g_fft, g_direct) < TOLERANCE[dtype]


def test_fft_conv2d_refuses_groups_that_do_not_fit():
    with pytest.raises(ValueError, match="groups=2"):
        fft_conv2d(torch.zeros(1, 3, 8, 8), torch.zeros(4, 3, 3, 3), 1, groups=2)


def test_conv2d_takes_the_fft_only_where_it_is_faster(monkeypatch):
    calls = []
    monkeypatch.setattr("baselines.fft_conv.fft_conv2d",
                        lambda *args: calls.append(args) or F.conv2d(args[0], args[1],
                                                                     padding=args[2],
                                                                     groups=args[3]))
    x = torch.randn(1, 8, 20, 20)
    conv2d(x, torch.randn(4, 8, 15, 15), padding=7)
    assert len(calls) == 1
    conv2d(x, torch.randn(4, 8, 3, 3), padding=1)  # small kernel
    conv2d(x, torch.randn(4, 8, 15, 15), stride=2, padding=7)  # strided
    conv2d(x, torch.randn(32, 1, 15, 15), padding=7, groups=8)  # one input channel per group
    assert len(calls) == 1


def test_group_steerable_conv_matches_its_direct_form():
    """SESConvHH (the SESN vector / DISCO block) takes the FFT path and still computes, per
    output scale, the sum of the direct convolutions of its kernels."""
    torch.manual_seed(0)
    basis = hermite_basis("A", 15, [1.0, 1.26, 1.59], effective_size=7)
    layer = SESConvHH(6, 5, basis, scale_size=2).double()
    x = torch.randn(2, 6, 3, 16, 16, dtype=torch.float64)
    kernels = layer.kernels().double()  # [scale_size, S, C_out, C_in, k, k]
    expected = torch.zeros(2, 5, 3, 16, 16, dtype=torch.float64)
    for s in range(3):
        for i in range(2):
            if s + i < 3:
                expected[:, :, s] += F.conv2d(x[:, :, s + i], kernels[i, s], padding=7)
    expected += layer.bias.view(1, -1, 1, 1, 1).double()
    assert relative(layer(x), expected) < 1e-10
