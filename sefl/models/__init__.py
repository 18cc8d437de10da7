"""SEFL models: MNIST-scale (2D), STL-10-scale and 1D, with their training loss."""

from sefl.models.fourier_se import FourierSE, FourierSE1d, FourierSE2d
from sefl.models.fourier_se_stl import FourierSESTL
from sefl.models.head import MultiLevelHead
from sefl.models.training import multilevel_loss, param_groups, spectral_regulariser

__all__ = [
    "FourierSE",
    "FourierSE1d",
    "FourierSE2d",
    "FourierSESTL",
    "MultiLevelHead",
    "multilevel_loss",
    "param_groups",
    "spectral_regulariser",
]
