"""Zoo entries: the steerable-basis baselines of MNIST-scale (specs/baselines.md sections 1, 6
and 7) on task ``mnist_scale``: SS-CNN, SESN scalar and vector (configurations "28" and, with
the ``_p`` suffix, "28p") and DISCO."""

from baselines.disco import mnist_disco
from baselines.sesn import (
    mnist_sesn_scalar,
    mnist_sesn_scalar_p,
    mnist_sesn_vector,
    mnist_sesn_vector_p,
)
from baselines.ss_cnn import mnist_ss_cnn
from benchmark.registry import register_model

_TASK = "mnist_scale"

register_model("ss_cnn", _TASK)(mnist_ss_cnn)
register_model("sesn_scalar", _TASK)(mnist_sesn_scalar)
register_model("sesn_vector", _TASK)(mnist_sesn_vector)
register_model("sesn_scalar_p", _TASK)(mnist_sesn_scalar_p)
register_model("sesn_vector_p", _TASK)(mnist_sesn_vector_p)
register_model("disco", _TASK)(mnist_disco)
