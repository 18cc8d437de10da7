"""The runner's live status line and final summary table."""

from __future__ import annotations

import io

import pytest

from benchmark import progress as progress_module
from benchmark.progress import Progress, format_seconds, summary_table


@pytest.mark.parametrize("seconds, text", [(None, "-"), (0.4, "0s"), (59.6, "1m00s"),
                                           (75, "1m15s"), (3600 * 2 + 61, "2h01m")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    return fake


def test_events_print_one_line_each_with_counts_and_eta(clock):
    out = io.StringIO()
    progress = Progress(total=5, cached=1, stream=out, live=False)
    progress.started("a")
    progress.started("b")
    clock.now += 10
    progress.finished("a")
    progress.failed_trial("b", "RuntimeError: boom")
    lines = out.getvalue().splitlines()
    assert lines == [
        "finished a in 10s  [done 1/5  running 1  failed 0  cached 1  elapsed 10s  ETA 15s]",
        ("FAILED b: RuntimeError: boom  [done 1/5  running 0  failed 1  cached 1  "
         "elapsed 10s  ETA 10s]"),
    ]


def test_eta_is_unknown_before_a_trial_ends(clock):
    progress = Progress(total=3, cached=0, stream=io.StringIO(), live=False)
    progress.started("a")
    assert progress.eta() is None and "ETA -" in progress.status()


def test_live_mode_rewrites_one_line(clock):
    out = io.StringIO()
    progress = Progress(total=2, cached=0, stream=out, live=True)
    progress.started("a")
    clock.now += 2
    progress.tick()
    assert out.getvalue().count("\r\033[K") == 2 and "\n" not in out.getvalue()
    progress.close()
    assert out.getvalue().endswith("\n")


def test_summary_table_aligns_columns_and_shows_missing_values():
    table = summary_table([
        {"task": "mnist_scale", "model": "sefl", "seed": 0, "status": "finished",
         "test_acc": 0.98765, "equiv_err": 1.5e-7, "train_s": 75.0},
        {"task": "mnist1d_scale", "model": "cnn", "seed": 12, "status": "failed"},
    ])
    lines = table.splitlines()
    assert lines[0].split() == ["task", "model", "seed", "status", "test", "acc", "equiv",
                                "err", "time"]
    assert lines[2].split() == ["mnist_scale", "sefl", "0", "finished", "0.9877", "1.50e-07",
                                "1m15s"]
    assert lines[3].split() == ["mnist1d_scale", "cnn", "12", "failed", "-", "-", "-"]
    assert len({len(line) for line in lines[:2]}) == 1
