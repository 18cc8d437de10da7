"""The classic scale-CNN layers in WRN-16-8: the STL-10-scale SI-ConvNet, SiCNN and DSS.

The WRN of ``baselines.wrn`` with the MNIST zoo's layers plugged in (specs/baselines.md
sections 2, 3 and 5, the STL parts; ISosnovik/sesn ``stl_kanazawa.py``, ``stl_xu.py``,
``stl_dss.py``). Every model takes the 97x97 canvas of the STL-10-scale task, or any size of
at least ``baselines.wrn.MIN_SIZE`` (global average pooling instead of the reference's
``avg_pool2d(24)``, identical on 96x96 images).

* ``si_convnet_wrn`` (Kanazawa et al. 2014): every 3x3 conv, the stem included, is an
  ``SIConv2d`` (no bias) over the scales 0.5, 1, 2; the 1x1 shortcuts stay plain.
  10,961,370 parameters, the WRN's count.
* ``sicnn_wrn`` (Xu et al. 2014): every conv, the 1x1 shortcuts included, is a
  ``ScaleColumnConv2d`` over the scales 0.67, 1, 1.5 (k = 3, kernel canvas 5, padding 2); the
  stem lifts to 3 columns. BN runs over C * 3 channels (not shared across columns); the end is
  BN -> ReLU -> global average pool -> max over the columns -> FC. 10,975,770 parameters.
  The base kernels get the WRN's fan-out init (the reference's init of these kernels is not
  documented).
* ``dss_wrn`` (Worrall & Welling 2019): a Gaussian scale-space lift (b = 2, 4 scales,
  sigma_0 = 0.5, t = 0.75, 3.75, 15.75) and ``DilatedScaleConv2d`` everywhere (dilations
  1, 2, 4, 8, "delta" init), BN3d. The number of scales shrinks 4 -> 3 -> 2: the first conv of
  groups 1 and 2 mixes 2 neighbouring scales (K_S = 2) and drops the top scale; group 3 keeps
  2 scales. Channels 16 / 128 / 240 / 512 for parity; shortcuts are 1x1 scale convs; the end
  is BN3d -> ReLU -> max over scales -> global average pool -> FC. 10,939,482 parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from baselines.dss import DilatedScaleConv2d, GaussianScaleLift, ScaleMax
from baselines.si_convnet import SIConv2d
from baselines.sicnn import ColumnMax, ScaleColumnConv2d
from baselines.wrn import (
    ConvSite,
    WideResNet,
    WideResNetLayers,
    build_wide_resnet,
    fan_out_normal_,
)

__all__ = ["dss_wrn", "si_convnet_wrn", "sicnn_wrn"]

SI_CONVNET_SCALES = (0.5, 1.0, 2.0)
SICNN_SCALES = (0.67, 1.0, 1.5)
DSS_CHANNELS = (16, 128, 240, 512)  # C2 = ceil(32 / sqrt(8 / 7)) * 8 for parameter parity
# scales after the stem and after each group; K_S = 2 where a group's first conv drops one
DSS_SCALES = (4, 3, 2, 2)


def _create_si_convnet_wrn(width: float, scales: Sequence[float], **backbone) -> WideResNet:
    """``backbone``: keyword arguments of ``build_wide_resnet`` (channels, dropout, ...)."""

    def conv(site: ConvSite, c_in: int, c_out: int) -> nn.Module:
        if site.kernel_size == 1:
            return nn.Conv2d(c_in, c_out, 1, site.stride, bias=False)
        return SIConv2d(c_in, c_out, 3, scales, site.stride, padding=1, bias=False)

    return build_wide_resnet(WideResNetLayers(conv), "si_convnet_wrn", width, **backbone)


def si_convnet_wrn(width: float = 1.0, **kwargs) -> WideResNet:
    """SI-ConvNet WRN-16-8 (10,961,370 parameters at width 1)."""
    model_args = {"scales": SI_CONVNET_SCALES}
    return _create_si_convnet_wrn(width, **{**model_args, **kwargs})


def _create_sicnn_wrn(width: float, scales: Sequence[float], **backbone) -> WideResNet:
    """``backbone``: keyword arguments of ``build_wide_resnet`` (channels, dropout, ...)."""
    n_scales = len(scales)

    def conv(site: ConvSite, c_in: int, c_out: int) -> nn.Module:
        lift = site.role == "stem"
        return ScaleColumnConv2d(
            c_in, c_out, site.kernel_size, scales, lift=lift, stride=site.stride
        )

    def norm(channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels * n_scales)

    def end(channels: int) -> nn.Module:
        return nn.Sequential(
            norm(channels),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            ColumnMax(n_scales),
            nn.Flatten(),
        )

    layers = WideResNetLayers(conv, norm, end)
    model = build_wide_resnet(layers, "sicnn_wrn", width, **backbone)
    for m in model.modules():
        if isinstance(m, ScaleColumnConv2d):
            fan_out_normal_(m.weight)
    return model


def sicnn_wrn(width: float = 1.0, **kwargs) -> WideResNet:
    """SiCNN WRN-16-8 (10,975,770 parameters at width 1); ``features`` are the columns,
    scale-major: [B, S * C, H, W]."""
    model_args = {"scales": SICNN_SCALES}
    return _create_sicnn_wrn(width, **{**model_args, **kwargs})


def _create_dss_wrn(
    width: float,
    group_scales: Sequence[int],
    base: float,
    zero_scale: float,
    **backbone,
) -> WideResNet:
    """``group_scales``: scales after the stem and after each group (non-increasing);
    ``backbone``: keyword arguments of ``build_wide_resnet`` (channels, dropout, ...)."""

    def conv(site: ConvSite, c_in: int, c_out: int) -> nn.Module:
        s_out = group_scales[site.group]
        entering = site.role in ("conv1", "shortcut") and site.block == 0
        s_in = group_scales[site.group - 1] if entering else s_out
        # a conv that drops a scale mixes it in first (the reference's scale_size 2)
        scale_size = 2 if site.role == "conv1" and s_in > s_out else 1
        layer = DilatedScaleConv2d(
            c_in,
            c_out,
            site.kernel_size,
            s_in,
            s_out,
            scale_size,
            base,
            site.stride,
            init="delta",
        )
        if site.role == "stem":
            return nn.Sequential(GaussianScaleLift(s_in, base, zero_scale), layer)
        return layer

    def end(channels: int) -> nn.Module:
        return nn.Sequential(
            nn.BatchNorm3d(channels),
            nn.ReLU(),
            ScaleMax(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    layers = WideResNetLayers(conv, nn.BatchNorm3d, end)
    return build_wide_resnet(layers, "dss_wrn", width, **backbone)


def dss_wrn(width: float = 1.0, **kwargs) -> WideResNet:
    """DSS WRN-16-8 (10,939,482 parameters at width 1); ``features`` fold the scales into
    channels: [B, C * S, H, W]."""
    model_args = {
        "group_scales": DSS_SCALES,
        "base": 2.0,
        "zero_scale": 0.5,
        "channels": DSS_CHANNELS,
    }
    return _create_dss_wrn(width, **{**model_args, **kwargs})
