"""The STL-10-scale SEFL model: Rahman & Yeh, NeurIPS 2023 (specs/sefl-method.md section 4,
specs/baselines.md section 9.2).

Stem: real 1x1 (3 -> 32) and a scale-equivariant nonlinearity (40..97 step 8). Three residual
blocks ``x -> N2(L2(N1(L1(x))) + mix_1x1(x))``: (32 -> 128, G 64, n 7, 40..97 step 8, then
max-pool), (-> 256, G 32, n 5, 20..49 step 4, then max-pool), (-> 512, G 16, n 5, 10..25 step 2).
Head: levels 10, 12, ... up to ceil(R / 4) + 1 (at most 25) on a 25x25 grid, max-pooled 13 ->
2x2, shared MLP -> 10.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from sefl.layers import (
    PointwiseNonlin,
    RealChannelMix,
    ScaleEqMaxPool2d,
    ScaleEqNonlin2d,
    SpectralConv2d,
)
from sefl.models.fourier_se import FourierSE, scaled
from sefl.models.head import MultiLevelHead
from sefl.spectral import to_space, to_spectrum

__all__ = ["FourierSESTL", "ResidualFourierBlock"]


class ResidualFourierBlock(nn.Module):
    """N2(L2(N1(L1(x))) + mix_1x1(x)): spec ``[B, C_in, N, N // 2 + 1]`` -> ``[B, C_out, M, ...]``
    with M = ceil(N / 2) when N2 pools, else N."""

    def __init__(
        self,
        convs: tuple[nn.Module, nn.Module],
        mix: nn.Module,
        nonlins: tuple[nn.Module, nn.Module],
    ) -> None:
        super().__init__()
        self.conv1, self.conv2 = convs
        self.mix = mix
        self.nonlin1, self.nonlin2 = nonlins

    def forward(self, spec: Tensor) -> Tensor:
        inner = self.conv2(self.nonlin1(self.conv1(spec)))
        return self.nonlin2(inner + self.mix(spec))


class FourierSESTL(FourierSE):
    """``[B, 3, R, R]`` with ``40 <= R <= 97`` -> ``[B, 10]`` (see the module docstring)."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        width: float = 1.0,
        channels: tuple[int, int, int, int] = (32, 128, 256, 512),
        hidden: int = 256,
        dropout: float = 0.75,
        equivariant: bool = True,
        implementation: Literal["fast", "loop"] = "fast",
    ) -> None:
        nn.Module.__init__(self)
        self.ndim = 2
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.base, self.max_resolution = 40, 97
        c0, c1, c2, c3 = (scaled(c, width) for c in channels)

        def nonlin(c: int, base: int, top: int, step: int, pooled: bool = False) -> nn.Module:
            if not equivariant:
                return PointwiseNonlin(c, 2, F.relu, pooled=pooled)
            cls = ScaleEqMaxPool2d if pooled else ScaleEqNonlin2d
            return cls(c, base, top, step, implementation=implementation)

        def block(c_in, c_out, modes, local, res, pooled):
            convs = (
                SpectralConv2d(c_in, c_out, modes, local),
                SpectralConv2d(c_out, c_out, modes, local),
            )
            return ResidualFourierBlock(
                convs,
                RealChannelMix(c_in, c_out),
                (nonlin(c_out, *res), nonlin(c_out, *res, pooled)),
            )

        self.stem = nn.ModuleList([RealChannelMix(in_channels, c0), nonlin(c0, 40, 97, 8)])
        self.blocks = nn.ModuleList(
            [
                block(c0, c1, 64, 7, (40, 97, 8), True),
                block(c1, c2, 32, 5, (20, 49, 4), True),
                block(c2, c3, 16, 5, (10, 25, 2), False),
            ]
        )
        self.head = MultiLevelHead(
            c3,
            num_classes,
            2,
            grid=25,
            pool=13,
            first_level=10,
            level_step=2,
            level_cap=25,
            hidden=scaled(hidden, width),
            dropout=dropout,
        )

    def forward_spectra(self, x: Tensor) -> list[Tensor]:
        self._check(x)
        mix, nonlin = self.stem
        spec = nonlin(mix(to_spectrum(x).to(x.dtype.to_complex())))
        out = []
        for block in self.blocks:
            spec = block(spec)
            out.append(spec)
        return out

    def features(self, x: Tensor) -> list[Tensor]:
        return [to_space(s, s.shape[-2]) for s in self.forward_spectra(x)]

    def forward_levels(self, x: Tensor) -> Tensor:
        last = self.forward_spectra(x)[-1]
        n = last.shape[-2]
        return self.head(last, n, top=n + 1)
