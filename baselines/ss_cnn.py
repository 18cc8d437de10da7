"""SS-CNN: scale-steerable filters from log-radial harmonics, and the MNIST-scale SS-CNN.

Reference: Ghosh & Gupta, "Scale Steerable Filters for Locally Scale-Invariant Convolutional
Neural Networks", ICML workshop 2019 (re-implemented in ISosnovik/sesn
``models/impl/scale_steerable.py``, ``models/mnist_ss.py``), restated in specs/baselines.md
section 6.

Basis (``log_radial_harmonics``), on an M x M grid, M the largest kernel size: r is the distance
to the centre (set to 1 at the centre), phi = atan2(y, x) with x pointing up the rows and y
right along the columns, and for every frequency k, angle phi0, width sigma and phase

    A(phi) = exp(-min(d(phi, phi0), d(phi, phi0 + pi))^2 / (2 sigma^2))   (d: wrapped angle)
    F_re + i F_im = A(phi) / r * exp(i (k_eff log r + phase)) * [r <= (M - 1) / 2]

with k_eff = 2 pi k / log(max r) (max r at the grid corner); each F_re and F_im has unit L2.

Layer (``ScaleSteerableConv``): complex coefficients a + ib ``[|k|, C_out, C_in, n_basis]``.
For every kernel size K_i the coefficients are steered to the scale s_i = K_i / kernel_size,
``(a' + ib') = (a + ib) * exp(-i k_eff log s_i)`` (``steer_coefficients``), the kernel is
``sum_k sum_b a' F_re - b' F_im`` on the centre K_i x K_i crop, convolved with "same"
padding; the output is the max over the scales. No bias. The reference's optional ReLU after
the max is left to the model (the MNIST blocks apply it, as conv -> ReLU -> pool -> BN).

MNIST model: channels 30/60/90, nominal kernel 11, kernel sizes 5..13, k in {0.5, 1, 2},
phi0 in linspace(0, pi, 9), sigma pi / 16, phase -pi / 4; blocks conv -> ReLU -> MaxPool -> BN
and the head of specs section 0.4 (360 -> 256 -> 10). Reference count 493,688; ours 486,022,
because the reference also counts 7,230 coefficients ``const_real`` [C_out, C_in] and a second
BN of the last block that its forward never uses, and a bias of the first head layer that the
BN right after it cancels (256): none of them can change the output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.cnn import CanvasNet, build_canvas_net, conv_blocks

__all__ = [
    "ScaleSteerableConv",
    "half_turn_angles",
    "log_radial_harmonics",
    "mnist_ss_cnn",
    "steer_coefficients",
]


def half_turn_angles(n: int) -> tuple[float, ...]:
    """n angles evenly spaced from 0 to pi, both ends included (numpy's linspace(0, pi, n))."""
    if n < 2:
        raise ValueError(f"the number of angles must be >= 2, got {n}")
    return tuple(i * math.pi / (n - 1) for i in range(n))


def _wrapped_distance(phi: Tensor, phi0: float) -> Tensor:
    """|phi - phi0| on the circle, in [0, pi]."""
    return torch.remainder(phi - phi0 + math.pi, 2 * math.pi).sub(math.pi).abs()


def log_radial_harmonics(
    size: int,
    ks: Sequence[float],
    phi0s: Sequence[float],
    sigma_phis: Sequence[float],
    phases: Sequence[float],
) -> tuple[Tensor, Tensor, Tensor]:
    """The SS-CNN basis on a ``size`` x ``size`` grid (odd size >= 3).

    Returns F_re, F_im ``[|ks|, n_basis, size, size]`` float64 with n_basis =
    |phi0s| * |sigma_phis| * |phases| (phi0 outer, phase inner), and k_eff ``[|ks|]``.
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 3, got {size}")
    centre = (size - 1) / 2
    idx = torch.arange(size, dtype=torch.float64)
    x = (centre - idx)[:, None].expand(size, size)  # up the rows
    y = (idx - centre)[None, :].expand(size, size)  # right along the columns
    distance = torch.sqrt(x**2 + y**2)
    mask = (distance <= centre).double()
    r = torch.where(distance == 0, torch.ones_like(distance), distance)
    phi = torch.atan2(y, x)
    k_eff = torch.tensor(
        [2 * math.pi * k / math.log(r.max().item()) for k in ks], dtype=torch.float64
    )
    real, imag = [], []
    for k in k_eff:
        for phi0 in phi0s:
            for sigma in sigma_phis:
                nearest = torch.minimum(
                    _wrapped_distance(phi, phi0), _wrapped_distance(phi, phi0 + math.pi)
                )
                envelope = torch.exp(-(nearest**2) / (2 * sigma**2)) / r * mask
                for phase in phases:
                    angle = k * torch.log(r) + phase
                    re, im = envelope * torch.cos(angle), envelope * torch.sin(angle)
                    real.append(re / re.norm())
                    imag.append(im / im.norm())
    shape = (len(ks), -1, size, size)
    return torch.stack(real).view(shape), torch.stack(imag).view(shape), k_eff


def steer_coefficients(
    real: Tensor, imag: Tensor, k_eff: Tensor, scale: float
) -> tuple[Tensor, Tensor]:
    """(a' + ib') = (a + ib) * exp(-i k_eff log scale), per frequency.

    real, imag: ``[|k|, ...]``; k_eff: ``[|k|]`` -> the steered real and imaginary parts.
    """
    angle = (-k_eff * math.log(scale)).to(real).view(-1, *([1] * (real.dim() - 1)))
    cos, sin = torch.cos(angle), torch.sin(angle)
    return real * cos - imag * sin, real * sin + imag * cos


class ScaleSteerableConv(nn.Module):
    """Scale-steered convolutions, max over scales: x [B, C_in, H, W] -> [B, C_out, H', W'].

    ``kernel_size`` is the nominal size (scale 1); ``kernel_sizes`` (odd) are the sizes of the
    scales s_i = K_i / kernel_size; the basis grid is max(kernel_sizes).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 11,
        kernel_sizes: Sequence[int] = (5, 7, 9, 11, 13),
        ks: Sequence[float] = (0.5, 1.0, 2.0),
        phi0s: Sequence[float] = half_turn_angles(9),
        sigma_phis: Sequence[float] = (math.pi / 16,),
        phases: Sequence[float] = (-math.pi / 4,),
        stride: int = 1,
    ) -> None:
        super().__init__()
        if not kernel_sizes or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd and >= 1, got {tuple(kernel_sizes)}")
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.scales = tuple(k / kernel_size for k in self.kernel_sizes)
        self.stride = stride
        real, imag, k_eff = log_radial_harmonics(
            max(self.kernel_sizes), ks, phi0s, sigma_phis, phases
        )
        self.register_buffer("basis_real", real.float())
        self.register_buffer("basis_imag", imag.float())
        self.register_buffer("k_eff", k_eff.float())
        shape = (len(ks), out_channels, in_channels, real.shape[1])
        self.coef_real = nn.Parameter(torch.empty(shape))
        self.coef_imag = nn.Parameter(torch.empty(shape))
        bound = math.sqrt(2 / (real.shape[1] * in_channels * out_channels))
        nn.init.uniform_(self.coef_real, -bound, bound)
        nn.init.uniform_(self.coef_imag, -bound, bound)

    def kernel(self, index: int) -> Tensor:
        """The kernel of scale ``index``: [C_out, C_in, K_i, K_i]."""
        size = self.kernel_sizes[index]
        start = (self.basis_real.shape[-1] - size) // 2
        crop = slice(start, start + size)
        real, imag = steer_coefficients(
            self.coef_real, self.coef_imag, self.k_eff, self.scales[index]
        )
        return torch.einsum(
            "koib,kbuv->oiuv", real, self.basis_real[..., crop, crop]
        ) - torch.einsum("koib,kbuv->oiuv", imag, self.basis_imag[..., crop, crop])

    def forward(self, x: Tensor) -> Tensor:
        outputs = [
            F.conv2d(x, self.kernel(i), stride=self.stride, padding=size // 2)
            for i, size in enumerate(self.kernel_sizes)
        ]
        return torch.stack(outputs, 2).amax(2)


def _create_ss_cnn(
    width: float,
    kernel_size: int,
    kernel_sizes: Sequence[int],
    ks: Sequence[float],
    sigma_phi: float,
    phase: float,
    num_angles: int,
    **backbone,
) -> CanvasNet:
    """``backbone``: keyword arguments of ``build_canvas_net`` (channels, hidden, ...)."""
    phi0s = half_turn_angles(num_angles)

    def make_conv(i: int, c_in: int, c_out: int) -> nn.Module:
        return ScaleSteerableConv(
            c_in, c_out, kernel_size, kernel_sizes, ks, phi0s, (sigma_phi,), (phase,)
        )

    return build_canvas_net(conv_blocks(make_conv), "ss_cnn", width, **backbone)


def mnist_ss_cnn(width: float = 1.0, **kwargs) -> CanvasNet:
    """SS-CNN on the 28x28 canvas (486,022 parameters; the reference counts 493,688)."""
    model_args = {
        "kernel_size": 11,
        "kernel_sizes": (5, 7, 9, 11, 13),
        "ks": (0.5, 1.0, 2.0),
        "sigma_phi": math.pi / 16,
        "phase": -math.pi / 4,
        "num_angles": 9,
        "channels": (30, 60, 90),
    }
    return _create_ss_cnn(width, **{**model_args, **kwargs})
