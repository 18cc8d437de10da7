"""DSS in 1D: a discrete Gaussian scale-space lift and dilated scale convolutions on sequences.

Reference: Worrall & Welling, "Deep Scale-spaces: Equivariance Over Scale", NeurIPS 2019
(specs/baselines.md section 5); there is no published 1D model, so this is our definition:
the MNIST "vector" DSS layout in 1D on the backbone of ``baselines.cnn1d``.

* Lift once at the input: ``GaussianScaleLift(ndim=1)`` with b = 2, 3 scales, sigma_0 = 0.5
  (t = 0.75 and 3.75), so the sequence and two blurred copies form the scale axis.
* 4 x [``DilatedScaleConv1d`` (kernel 7, dilations 1, 2, 4, K_S = 1, no bias, He init) ->
  ReLU -> MaxPool 2 along the length (not after the last) -> BN shared over the scales];
  channels 33 / 65 / 130 / 198 as ``cnn1d``.
* Max over the scales, global average pool over the length, the MNIST head.

295,240 parameters at width 1 (``cnn1d`` without the conv biases; the 1D SEFL model has
295,482). Native input (any length of at least 8), like ``cnn1d``.
"""

from __future__ import annotations

from torch import nn

from baselines.cnn1d import SequenceNet, build_sequence_net
from baselines.dss import DilatedScaleConv1d, GaussianScaleLift, ScaleMax

__all__ = ["dss1d"]


def _create_dss1d(
    width: float,
    n_scales: int,
    base: float,
    zero_scale: float,
    kernel_size: int,
    **backbone,
) -> SequenceNet:
    """``backbone``: keyword arguments of ``build_sequence_net`` (channels, hidden, ...)."""

    def make_conv(i: int, c_in: int, c_out: int) -> nn.Module:
        conv = DilatedScaleConv1d(c_in, c_out, kernel_size, n_scales, base=base)
        if i == 0:
            return nn.Sequential(GaussianScaleLift(n_scales, base, zero_scale, ndim=1), conv)
        return conv

    return build_sequence_net(
        make_conv, "dss1d", width, scale_axis=True, project=ScaleMax(), **backbone
    )


def dss1d(width: float = 1.0, **kwargs) -> SequenceNet:
    """DSS on native-length sequences (295,240 parameters at width 1); ``features`` fold the
    scales into channels: [B, C * S, L']."""
    model_args = {"n_scales": 3, "base": 2.0, "zero_scale": 0.5, "kernel_size": 7}
    return _create_dss1d(width, **{**model_args, **kwargs})
