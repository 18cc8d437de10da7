"""Zoo entries: the classic MNIST-scale baselines of the SESN zoo (specs/baselines.md sections
0.4 and 2-5) and the per-resolution CNN, all on task ``mnist_scale``."""

from baselines.cnn import mnist_cnn
from baselines.dss import mnist_dss_scalar, mnist_dss_vector
from baselines.per_res_cnn import mnist_per_res_cnn
from baselines.sevf import mnist_sevf_scalar, mnist_sevf_vector
from baselines.si_convnet import mnist_si_convnet
from baselines.sicnn import mnist_sicnn
from benchmark.registry import register_model

_TASK = "mnist_scale"

register_model("cnn", _TASK)(mnist_cnn)
register_model("sicnn", _TASK)(mnist_sicnn)
register_model("si_convnet", _TASK)(mnist_si_convnet)
register_model("sevf_scalar", _TASK)(mnist_sevf_scalar)
register_model("sevf_vector", _TASK)(mnist_sevf_vector)
register_model("dss_scalar", _TASK)(mnist_dss_scalar)
register_model("dss_vector", _TASK)(mnist_dss_vector)
register_model("per_res_cnn", _TASK)(mnist_per_res_cnn)
