"""Zero-padded stride-1 2D convolution through the FFT, for the steerable baselines' large kernels.

SESN and DISCO convolve with 13 x 13 and 15 x 15 kernels. On a CPU the direct algorithm spends
k^2 multiply-adds per output pixel and channel pair (and its backward about three times that);
through the FFT, the channel contraction costs one complex multiply-add per frequency. Measured
on the DISCO MNIST model's second block (batch 128, 4 scales, 32 -> 63 channels, 28 x 28, k =
15, 2 threads): forward + backward 10.4 s direct, 2.7 s here. The function is ``F.conv2d``'s
(a cross-correlation), equal up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["FFT_MIN_IN_CHANNELS", "FFT_MIN_KERNEL", "conv2d", "fft_conv2d"]

# Below these the direct algorithm is as fast: small kernels, or a single input channel (the
# lifting layer on the image), where the FFTs of the outputs dominate.
FFT_MIN_KERNEL = 9
FFT_MIN_IN_CHANNELS = 4


def fft_conv2d(x: Tensor, weight: Tensor, padding: int = 0, groups: int = 1) -> Tensor:
    """x [B, G * C_in, H, W], weight [G * C_out, C_in, kh, kw] -> [B, G * C_out, H', W'], the
    stride-1 ``F.conv2d(x, weight, padding=padding, groups=G)``, H' = H + 2 padding - kh + 1.

    The zero-padded input is transformed on its own grid, N = H + 2 padding: every output
    pixel's window lies inside it, so the circular correlation there has no wrap-around.
    """
    batch, channels, height, width = x.shape
    out_channels, in_per_group, kh, kw = weight.shape
    if channels != groups * in_per_group or out_channels % groups:
        raise ValueError(f"x {tuple(x.shape)} and weight {tuple(weight.shape)} do not fit "
                         f"groups={groups}")
    n1, n2 = height + 2 * padding, width + 2 * padding
    if n1 < kh or n2 < kw:
        raise ValueError(f"kernel {kh}x{kw} exceeds the padded input {n1}x{n2}")
    spectrum = torch.fft.rfft2(F.pad(x, [padding] * 4))
    # cross-correlation: the kernel's spectrum conjugated
    kernel = torch.fft.rfft2(weight, s=(n1, n2)).conj()
    freqs = spectrum.shape[-2:]
    # one matrix product [B, C_in] @ [C_in, C_out] per frequency and group
    spectrum = spectrum.reshape(batch, groups, in_per_group, -1).permute(3, 1, 0, 2)
    kernel = kernel.reshape(groups, out_channels // groups, in_per_group, -1).permute(3, 0, 2, 1)
    product = torch.matmul(spectrum, kernel).permute(2, 1, 3, 0).reshape(batch, out_channels,
                                                                         *freqs)
    out = torch.fft.irfft2(product, s=(n1, n2))
    return out[..., : n1 - kh + 1, : n2 - kw + 1]


def conv2d(x: Tensor, weight: Tensor, stride: int = 1, padding: int = 0,
           groups: int = 1) -> Tensor:
    """``F.conv2d(x, weight, stride=stride, padding=padding, groups=groups)`` (no bias), through
    the FFT where that is faster: stride 1, a kernel of at least FFT_MIN_KERNEL taps per side and
    at least FFT_MIN_IN_CHANNELS input channels per group."""
    if (stride != 1 or min(weight.shape[-2:]) < FFT_MIN_KERNEL
            or weight.shape[1] < FFT_MIN_IN_CHANNELS):
        return F.conv2d(x, weight, stride=stride, padding=padding, groups=groups)
    return fft_conv2d(x, weight, padding, groups)
