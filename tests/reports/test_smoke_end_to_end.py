"""End to end: a real ``smoke`` subset through the harness, then the report from its store.

Needs the harness (``python -m benchmark.run``: Ray, MLflow, training) and the MNIST-1D task,
which is generated locally (no data files, no network). Marked ``harness``; deselect with
``-m "not harness"`` when working on the reports alone. About 30 s on 2 CPU cores.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reports.generate import main

MODELS = ("sefl", "fourier_cnn1d")


@pytest.mark.harness
def test_smoke_subset_builds_the_report(tmp_path: Path, run_in_own_group) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, log = run_in_own_group(
        [sys.executable, "-m", "benchmark.run", "--suite", "smoke", "--tasks", "mnist1d_scale",
         "--models", ",".join(MODELS), "--seeds", "0", "--num-cpus", "2", "--tracking-uri", uri,
         "--storage", str(tmp_path / "ray"), "--data-dir", str(tmp_path / "data")],
        300.0, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
        stderr=subprocess.STDOUT)
    assert code == 0, log[-3000:]

    out = tmp_path / "report"
    assert main(["--suite", "smoke", "--tracking-uri", uri, "--out", str(out)]) == 0
    frame = pd.read_csv(out / "tables" / "mnist1d_scale.csv")
    assert sorted(frame["model"]) == sorted(MODELS)
    assert frame["seeds"].tolist() == [1, 1]
    for column in ("acc_mean", "consistency_mean"):
        assert frame[column].between(0, 100).all(), column
    assert all(math.isfinite(v) and v >= 0 for v in frame["equiv_err_mean"])
    assert (frame["params"] > 0).all()
    page = (out / "index.html").read_text()
    assert "Leaderboard: MNIST-1D-scale" in page and "data:image/png;base64," in page
