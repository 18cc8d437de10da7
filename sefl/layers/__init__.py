"""Fourier layers that commute with ideal down-scaling (specs/sefl-method.md section 3)."""

from sefl.layers.levels import LevelPlan, level_sizes, plan_levels, resolution_set
from sefl.layers.mixing import RealChannelMix
from sefl.layers.nonlinearity import (
    PointwiseNonlin,
    ScaleEqMaxPool2d,
    ScaleEqNonlin1d,
    ScaleEqNonlin2d,
)
from sefl.layers.spectral_conv import SpectralConv1d, SpectralConv2d, dirichlet_matrix, tap_phases

__all__ = [
    "LevelPlan",
    "PointwiseNonlin",
    "RealChannelMix",
    "ScaleEqMaxPool2d",
    "ScaleEqNonlin1d",
    "ScaleEqNonlin2d",
    "SpectralConv1d",
    "SpectralConv2d",
    "dirichlet_matrix",
    "level_sizes",
    "plan_levels",
    "resolution_set",
    "tap_phases",
]
