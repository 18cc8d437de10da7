"""The names of the MLflow schema the reports read (DESIGN.md, "MLflow schema").

The harness writes these names; the reports only read them. The experiment name, the default
store and the store check come from the harness (``benchmark.tracking``); the tag and metric
names are listed here once, so a renamed metric is one edit here, not silently missing cells
in every table.
"""

from __future__ import annotations

from benchmark.tracking import DEFAULT_TRACKING_URI, experiment_name, store_exists

__all__ = [
    "DEFAULT_TRACKING_URI",
    "EQUIV_ERR",
    "EQUIV_ERR_BICUBIC",
    "EQUIV_ERR_BICUBIC_FIRST",
    "EQUIV_ERR_BLOCK_PREFIX",
    "EQUIV_ERR_FIRST",
    "EQUIV_ERR_FIRST_RES_PREFIX",
    "EQUIV_ERR_RES_PREFIX",
    "EVAL_IMG_S",
    "EXPERIMENT_PREFIX",
    "PARAMS_COUNT",
    "REQUIRED_METRICS",
    "SCALE_CONSISTENCY",
    "TAG_CODE",
    "TAG_ERROR",
    "TAG_HARDWARE_PREFIX",
    "TAG_MODEL",
    "TAG_SEED",
    "TAG_SUITE",
    "TAG_TASK",
    "TAG_TRIAL_KEY",
    "TAG_VERSION",
    "TEST_ACC",
    "TEST_ACC_RES_PREFIX",
    "TRAIN_IMG_S",
    "TRAIN_S",
    "VAL_ACC",
    "experiment_name",
    "store_exists",
]

EXPERIMENT_PREFIX = "sefl-bench/"

TAG_TASK = "sefl.task"
TAG_MODEL = "sefl.model"
TAG_SEED = "sefl.seed"
TAG_SUITE = "sefl.suite"
TAG_TRIAL_KEY = "sefl.trial_key"
TAG_VERSION = "sefl.version"
TAG_CODE = "sefl.code"  # the code fingerprint behind the run (benchmark.trial.code_fingerprint)
TAG_ERROR = "sefl.error"
# Any tag under this prefix (e.g. sefl.hardware, sefl.hardware.gpu) describes the machine.
TAG_HARDWARE_PREFIX = "sefl.hardware"

TEST_ACC = "test/acc"
TEST_ACC_RES_PREFIX = "test/acc/res_"
# The equivariance error (sefl.equivariance): the last block's is the headline, the first
# block's is what the authors' script measures on MNIST-scale. Which resolutions each block
# was measured at is in trial.json (info.equiv_measured_resolutions), not a metric.
EQUIV_ERR = "equiv/err"
EQUIV_ERR_FIRST = "equiv/err/first"
EQUIV_ERR_BLOCK_PREFIX = "equiv/err/block_"
EQUIV_ERR_RES_PREFIX = "equiv/err/res_"
EQUIV_ERR_FIRST_RES_PREFIX = "equiv/err/first/res_"
EQUIV_ERR_BICUBIC = "equiv/err_bicubic"
EQUIV_ERR_BICUBIC_FIRST = "equiv/err_bicubic/first"
SCALE_CONSISTENCY = "scale/consistency"
PARAMS_COUNT = "params/count"
TRAIN_S = "time/train_s"
TRAIN_IMG_S = "throughput/train_img_s"
EVAL_IMG_S = "throughput/eval_img_s"
VAL_ACC = "val/acc"

# The metrics every FINISHED trial must have: the columns of the paper's tables.
REQUIRED_METRICS = (TEST_ACC, PARAMS_COUNT, SCALE_CONSISTENCY, EQUIV_ERR)

