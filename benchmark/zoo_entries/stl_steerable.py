"""Zoo entries: the steerable-basis WRN-16-8s of STL-10-scale (specs/baselines.md sections 1.4,
6 and 7) on task ``stl10_scale``: SESN variants a, b and c, SS-CNN (every block multi-scale)
and DISCO."""

from baselines.steerable_wrns import disco_wrn, sesn_wrn_a, sesn_wrn_b, sesn_wrn_c, ss_cnn_wrn
from benchmark.registry import register_model

_TASK = "stl10_scale"

register_model("sesn_wrn_a", _TASK)(sesn_wrn_a)
register_model("sesn_wrn_b", _TASK)(sesn_wrn_b)
register_model("sesn_wrn_c", _TASK)(sesn_wrn_c)
register_model("ss_cnn_wrn", _TASK)(ss_cnn_wrn)
register_model("disco_wrn", _TASK)(disco_wrn)
