"""Zoo entries: the SEFL models and their plain-nonlinearity "Fourier CNN" counterparts."""

from baselines.fourier_cnn import fourier_cnn, fourier_cnn1d, fourier_cnn_stl
from benchmark.registry import register_model
from sefl.models import FourierSE1d, FourierSE2d, FourierSESTL


@register_model("sefl", "mnist_scale")
def sefl_mnist(width: float = 1.0, **overrides) -> FourierSE2d:
    return FourierSE2d(width=width, **overrides)


@register_model("sefl", "stl10_scale")
def sefl_stl(width: float = 1.0, **overrides) -> FourierSESTL:
    return FourierSESTL(width=width, **overrides)


@register_model("sefl", "mnist1d_scale")
def sefl_1d(width: float = 1.0, **overrides) -> FourierSE1d:
    return FourierSE1d(width=width, **overrides)


register_model("fourier_cnn", "mnist_scale")(fourier_cnn)
register_model("fourier_cnn_stl", "stl10_scale")(fourier_cnn_stl)
register_model("fourier_cnn1d", "mnist1d_scale")(fourier_cnn1d)
