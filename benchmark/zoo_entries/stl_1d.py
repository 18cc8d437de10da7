"""Zoo entries: the WRN-16-8 family of STL-10-scale (specs/baselines.md sections 0.5, 2, 3
and 5) on task ``stl10_scale``, and the 1D baselines on task ``mnist1d_scale``."""

from baselines.cnn1d import cnn1d
from baselines.dss1d import dss1d
from baselines.stl_scale_wrns import dss_wrn, si_convnet_wrn, sicnn_wrn
from baselines.wavelet1d import wavelet1d
from baselines.wrn import wrn_16_8
from benchmark.registry import register_model

_STL = "stl10_scale"
_1D = "mnist1d_scale"

register_model("wrn_16_8", _STL)(wrn_16_8)
register_model("si_convnet_wrn", _STL)(si_convnet_wrn)
register_model("sicnn_wrn", _STL)(sicnn_wrn)
register_model("dss_wrn", _STL)(dss_wrn)
register_model("cnn1d", _1D)(cnn1d)
register_model("dss1d", _1D)(dss1d)
register_model("wavelet1d", _1D)(wavelet1d)
