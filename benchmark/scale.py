"""Driver overhead at scale, by simulation: ``python -m benchmark.scale [--trials 30 300]``.

A benchmark, not a test. For each count N it runs ``python -m benchmark.run`` on a suite of N
trials of a model that trains in milliseconds (``instant``, an outside ``--model``; MNIST-1D,
one epoch of one batch), on a local Ray and a fresh sqlite store, and prints: the wall time of
the invocation, the trials' own time (training and evaluation, summed), the driver's overhead
per trial ((wall - trials' time / slots) / N, slots = trials running at once) and MLflow's
write rate (rows the store gained per second of wall time); then, between two counts, the wall
time per added trial and the start-up both share. Goal: at most 0.5 s per trial, the same at
30 and 300 trials.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["instant", "main"]

_SUITE = """
[[grid]]
tasks = ["mnist1d_scale"]
models = ["benchmark.scale:instant"]
seeds = {seeds}
[grid.trial]
epochs = 1
width = 0.25
batch_size = 8
train_batches = 1
eval_batches = 1
equiv_images = 2
n_train = 56
n_val = 28
n_test = 56
"""


class _Instant(nn.Module):
    """x: [B, 1, n] -> logits [B, 10]; one 1x1 convolution and mean pooling."""

    input_mode = "native"

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 10, 1)

    def features(self, x: Tensor) -> list[Tensor]:
        return [self.conv(x)]

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[-1].mean(-1)


def instant(task: str, width: float = 1.0) -> nn.Module:
    """A model that trains in milliseconds (1D tasks only)."""
    if task != "mnist1d_scale":
        raise ValueError(f"instant: a 1D model, not for task {task!r}")
    return _Instant()


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return sum(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                   for table in ("runs", "params", "tags", "metrics", "latest_metrics"))


def measure(trials: int, cpus: int, folder: Path) -> dict[str, float]:
    """Run a suite of ``trials`` instant trials; its timings (see the module docstring)."""
    folder.mkdir(parents=True)
    suite = folder / f"scale{trials}.toml"
    suite.write_text(_SUITE.format(seeds=list(range(trials))))
    env = dict(os.environ, OMP_NUM_THREADS="1", RAY_AUTH_MODE="disabled")
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RAY_ADDRESS", None)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmark.run", "--suite", str(suite),
                           "--num-cpus", str(cpus), "--storage", str(folder / "ray")],
                          cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"benchmark.run exited {done.returncode}: {done.stderr[-2000:]}")
    from mlflow import MlflowClient

    from benchmark.tracking import experiment_name

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(experiment_name(suite.stem))
    [parent] = [r for r in client.search_runs([experiment.experiment_id])
                if "sefl.task" not in r.data.tags]
    metrics = parent.data.metrics
    own = metrics["time/trials_train_s"] + metrics["time/trials_eval_s"]
    slots = min(cpus, trials)
    return {"trials": trials, "wall_s": wall, "suite_s": metrics["time/suite_s"],
            "trials_s": own, "overhead_per_trial_s": (wall - own / slots) / trials,
            "mlflow_rows_per_s": _rows(folder / "mlflow.db") / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, nargs="+", default=[30, 300])
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="sefl-scale-") as folder:
        rows = [measure(n, args.num_cpus, Path(folder) / str(n)) for n in args.trials]
    print(f"{'trials':>6}  {'wall':>8}  {'trials own':>10}  {'overhead/trial':>14}  "
          f"{'MLflow rows/s':>13}")
    for row in rows:
        print(f"{row['trials']:>6}  {row['wall_s']:>7.1f}s  {row['trials_s']:>9.1f}s  "
              f"{row['overhead_per_trial_s']:>13.3f}s  {row['mlflow_rows_per_s']:>13.1f}")
    for small, large in itertools.pairwise(rows):
        # The cost of one more trial, without the start-up (Ray, MLflow, imports) both share.
        slope = (large["wall_s"] - small["wall_s"]) / (large["trials"] - small["trials"])
        print(f"{small['trials']} -> {large['trials']} trials: {slope:.3f} s per added trial; "
              f"start-up {small['wall_s'] - slope * small['trials']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
