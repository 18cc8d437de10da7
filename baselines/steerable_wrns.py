"""The steerable-basis scale convolutions in WRN-16-8: the STL-10-scale SESN, DISCO and SS-CNN.

The WRN of ``baselines.wrn`` with the steerable layers of the MNIST zoo plugged in
(specs/baselines.md sections 1.4, 6 and 7, the STL parts; ISosnovik/sesn ``stl_ses.py`` and
``stl_ss.py``, ISosnovik/disco ``stl_disco_models.py``). Every model takes the 97x97 canvas of
the STL-10-scale task, or any size of at least ``baselines.wrn.MIN_SIZE``: it pools globally
instead of the reference's ``avg_pool2d(24)``, identical on 96x96 images.

* ``sesn_wrn_a`` / ``_b`` / ``_c`` (Sosnovik et al. 2020): every conv is a steerable conv
  over basis A (k = 7, E = 3: 9 Hermite-Gaussian functions, supports 3, 5, 7), no bias. The
  stem lifts (Z2 -> H), the blocks' 3x3 convs are H -> H with scale_size 1, the shortcuts
  1x1 convs shared by the scales; BN3d (statistics shared over scales). The end is max over
  scales -> BN2d -> ReLU -> global average pool -> FC. Variants:
  a: scales 0.9 * 1.41^i = 0.9, 1.269, 1.789; b: the same, and the first conv of groups 2
  and 3 takes the max over scales and lifts again (pools [F, T, T]); c: scales 1.1, 1.551,
  2.187, and the first conv of group 1 mixes 2 neighbouring scales (scale_size 2).
  a and b 10,961,370 parameters, c 10,979,802, as the reference.
* ``disco_wrn`` (Sosnovik et al. 2021): the SESN layout with the DISCO basis (k = 5, E = 3,
  scales 1, 1.41, 2; "disco_a" mixing at min_scale 0.9; the fitted proxy is cached, see
  ``baselines.disco``), pools [F, T, T] as in sesn_wrn_b, and every stride-2 conv (the first
  conv of groups 2 and 3 and its shortcut) replaced by the stride-1 conv followed by
  MaxPool3d(1, 2, 2), so odd sides round down (97 -> 48 -> 24). The end is that of SESN (the
  spec does not state it). 10,961,370 parameters, as the reference.
* ``ss_cnn_wrn`` (Ghosh & Gupta 2019): every 3x3 conv, the stem included, is a
  ``ScaleSteerableConv`` (nominal kernel 3, kernel sizes 3, 5, 7, k = 1, 9 angles, sigma pi /
  16, phase -pi / 4, max over scales, no ReLU inside); the 1x1 shortcuts stay plain; BN2d.
  **Every block is multi-scale**: the reference passes the kernel sizes only to the stem, so
  its block convs fall back to the single size 3 (a bug, specs section 6); ours use 3, 5, 7
  everywhere. The reference's channels 11 / 88 / 176 / 352 give 10,280,522 parameters here;
  it counts 10,846,835 because it also counts 566,313 unused ``const_real`` coefficients, one
  per channel pair of every steerable conv, which cannot change the output. So that the
  comparison is at equal size, ours widens the groups to ``SS_CNN_CHANNELS`` = 11 / 90 / 181
  / 362: 10,865,418 parameters, 0.17 % more than the reference's count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from torch import Tensor, nn

from baselines.disco import DiscoFit, disco_basis
from baselines.hermite import hermite_basis, normalize_by_min_scale
from baselines.sesn import (
    ScaleMaxProjection,
    SESConv1x1HH,
    SESConvHH,
    SESConvZ2H,
)
from baselines.ss_cnn import ScaleSteerableConv, half_turn_angles
from baselines.wrn import (
    ConvSite,
    WideResNet,
    WideResNetLayers,
    build_wide_resnet,
    fan_out_normal_,
)

__all__ = [
    "build_ses_wrn",
    "disco_wrn",
    "sesn_wrn_a",
    "sesn_wrn_b",
    "sesn_wrn_c",
    "ss_cnn_wrn",
]

# 0.9 * 1.41^i and 1.1 * 1.41^i, rounded to 3 decimals as the reference's basis rounds them
SESN_AB_SCALES = (0.9, 1.269, 1.789)
SESN_C_SCALES = (1.1, 1.551, 2.187)
DISCO_SCALES = (1.0, 1.41, 2.0)
# The reference's channels (11, 88, 176, 352) were sized for 2 * 9 + 1 coefficients per channel
# pair, one of them unused; without the unused one, these widths restore its parameter count.
SS_CNN_CHANNELS = (11, 90, 181, 362)


def _ses_end(channels: int) -> nn.Module:
    """max over scales -> BN2d -> ReLU -> global average pool: [B, C, S, H, W] -> [B, C]."""
    return nn.Sequential(
        ScaleMaxProjection(),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def build_ses_wrn(
    basis: Tensor,
    name: str,
    width: float = 1.0,
    relift_groups: Sequence[int] = (),
    inter_scale_groups: Sequence[int] = (),
    pool_instead_of_stride: bool = False,
    **backbone,
) -> WideResNet:
    """A WRN of SESN layers over ``basis`` [F, S, k, k] (the SESN and DISCO WRNs).

    ``relift_groups``: groups whose first conv takes the max over scales and lifts again (the
    reference's pools = True); ``inter_scale_groups``: groups whose first conv mixes 2
    neighbouring scales (scale_size 2); ``pool_instead_of_stride``: a stride-s conv becomes
    the stride-1 conv followed by MaxPool3d(1, s, s) (DISCO). ``backbone``: keyword
    arguments of ``build_wide_resnet`` (channels, dropout, ...). Features are
    [B, C * S, H, W].
    """
    bad = [g for g in (*relift_groups, *inter_scale_groups) if g not in (1, 2, 3)]
    if bad:
        raise ValueError(f"relift_groups and inter_scale_groups take groups 1, 2, 3, got {bad}")

    def conv(site: ConvSite, c_in: int, c_out: int) -> nn.Module:
        stride = 1 if pool_instead_of_stride else site.stride
        entering = site.role == "conv1" and site.block == 0
        if site.role == "stem":
            layer = SESConvZ2H(c_in, c_out, basis, stride, bias=False)
        elif site.role == "shortcut":
            layer = SESConv1x1HH(c_in, c_out, stride)
        elif entering and site.group in relift_groups:
            layer = nn.Sequential(
                ScaleMaxProjection(), SESConvZ2H(c_in, c_out, basis, stride, bias=False)
            )
        else:
            scale_size = 2 if entering and site.group in inter_scale_groups else 1
            layer = SESConvHH(c_in, c_out, basis, scale_size, stride, bias=False)
        if stride == site.stride:
            return layer
        return nn.Sequential(layer, nn.MaxPool3d((1, site.stride, site.stride)))

    layers = WideResNetLayers(conv, nn.BatchNorm3d, _ses_end)
    model = build_wide_resnet(layers, name, width, **backbone)
    # the reference's init: N(0, 2 / n), n = weight.numel() / C_in, for every SES weight
    for m in model.modules():
        if isinstance(m, (SESConvZ2H, SESConvHH, nn.Conv3d)):
            fan_out_normal_(m.weight)
    return model


def _create_sesn_wrn(
    width: float,
    name: str,
    scales: Sequence[float],
    kernel_size: int = 7,
    effective_size: int = 3,
    relift_groups: Sequence[int] = (),
    inter_scale_groups: Sequence[int] = (),
    **backbone,
) -> WideResNet:
    """``backbone``: keyword arguments of ``build_wide_resnet`` (channels, dropout, ...)."""
    raw = hermite_basis("A", kernel_size, scales, effective_size)
    basis = normalize_by_min_scale(raw).float()
    return build_ses_wrn(basis, name, width, relift_groups, inter_scale_groups, **backbone)


def sesn_wrn_a(width: float = 1.0, **kwargs) -> WideResNet:
    """SESN WRN-16-8, variant a (10,961,370 parameters at width 1)."""
    model_args = {"scales": SESN_AB_SCALES}
    return _create_sesn_wrn(width, "sesn_wrn_a", **{**model_args, **kwargs})


def sesn_wrn_b(width: float = 1.0, **kwargs) -> WideResNet:
    """SESN WRN-16-8, variant b: groups 2 and 3 re-lift (10,961,370 parameters at width 1)."""
    model_args = {"scales": SESN_AB_SCALES, "relift_groups": (2, 3)}
    return _create_sesn_wrn(width, "sesn_wrn_b", **{**model_args, **kwargs})


def sesn_wrn_c(width: float = 1.0, **kwargs) -> WideResNet:
    """SESN WRN-16-8, variant c: larger scales, group 1 mixes 2 scales (10,979,802
    parameters at width 1)."""
    model_args = {"scales": SESN_C_SCALES, "inter_scale_groups": (1,)}
    return _create_sesn_wrn(width, "sesn_wrn_c", **{**model_args, **kwargs})


def _create_disco_wrn(
    width: float,
    budget: int,
    cache_dir: str | os.PathLike | None,
    kernel_size: int,
    effective_size: int,
    scales: Sequence[float],
    min_scale: float,
    relift_groups: Sequence[int],
    **backbone,
) -> WideResNet:
    """``backbone``: keyword arguments of ``build_wide_resnet`` (channels, dropout, ...)."""
    basis = disco_basis(
        kernel_size,
        effective_size,
        scales,
        kind="A",
        min_scale=min_scale,
        fit=DiscoFit(steps=budget),
        cache_dir=cache_dir,
    )
    return build_ses_wrn(
        basis, "disco_wrn", width, relift_groups, pool_instead_of_stride=True, **backbone
    )


def disco_wrn(
    width: float = 1.0,
    budget: int = DiscoFit.steps,
    cache_dir: str | os.PathLike | None = None,
    **kwargs,
) -> WideResNet:
    """DISCO WRN-16-8 (10,961,370 parameters at width 1); at most ``budget`` L-BFGS
    iterations fit the basis, cached in ``cache_dir`` (None: ``disco.default_cache_dir()``)."""
    model_args = {
        "kernel_size": 5,
        "effective_size": 3,
        "scales": DISCO_SCALES,
        "min_scale": 0.9,
        "relift_groups": (2, 3),
    }
    return _create_disco_wrn(width, budget, cache_dir, **{**model_args, **kwargs})


def _create_ss_cnn_wrn(
    width: float,
    kernel_size: int,
    kernel_sizes: Sequence[int],
    ks: Sequence[float],
    num_angles: int,
    sigma_phi: float,
    phase: float,
    **backbone,
) -> WideResNet:
    """``backbone``: keyword arguments of ``build_wide_resnet`` (channels, dropout, ...)."""
    phi0s = half_turn_angles(num_angles)

    def conv(site: ConvSite, c_in: int, c_out: int) -> nn.Module:
        if site.kernel_size == 1:
            return nn.Conv2d(c_in, c_out, 1, site.stride, bias=False)
        # the same kernel sizes at every 3x3 conv, not only the stem's (module docstring)
        return ScaleSteerableConv(
            c_in,
            c_out,
            kernel_size,
            kernel_sizes,
            ks,
            phi0s,
            (sigma_phi,),
            (phase,),
            site.stride,
        )

    return build_wide_resnet(WideResNetLayers(conv), "ss_cnn_wrn", width, **backbone)


def ss_cnn_wrn(width: float = 1.0, **kwargs) -> WideResNet:
    """SS-CNN WRN-16-8 with every block multi-scale (10,865,418 parameters at width 1 against
    the reference's 10,846,835, which include 566,313 unused coefficients; its channels
    (11, 88, 176, 352) widened to keep the comparison at equal size)."""
    model_args = {
        "kernel_size": 3,
        "kernel_sizes": (3, 5, 7),
        "ks": (1.0,),
        "num_angles": 9,
        "sigma_phi": math.pi / 16,
        "phase": -math.pi / 4,
        "channels": SS_CNN_CHANNELS,
    }
    return _create_ss_cnn_wrn(width, **{**model_args, **kwargs})
