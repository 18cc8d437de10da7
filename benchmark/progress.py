"""What the runner shows: one concise live status line and a final summary table.

On a terminal the status line is rewritten in place; elsewhere (a log file, CI) a line is
printed per event, so the output stays readable without carriage returns.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

__all__ = ["Progress", "format_seconds", "summary_table"]


def format_seconds(seconds: float | None) -> str:
    """``75.0`` -> ``"1m15s"``; None -> ``"-"``."""
    if seconds is None:
        return "-"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Counts of done / running / failed / cached trials out of ``total``, with an ETA."""

    def __init__(self, total: int, cached: int, stream: TextIO | None = None,
                 live: bool | None = None):
        self.total, self.cached = total, cached
        # Tune pickles its callbacks: keep no handle on sys.stderr, look it up when writing.
        self._stream = stream
        self.live = self.stream.isatty() if live is None else live
        self.started_at = time.monotonic()
        self.running: dict[str, float] = {}
        self.durations: list[float] = []
        self.failed = 0
        self.concurrency = 1
        self._last_draw = 0.0

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def done(self) -> int:
        return len(self.durations)

    def eta(self) -> float | None:
        """Seconds left: the mean trial time so far, times what is left, over the trials seen
        running at once; None before the first trial ends."""
        if not self.durations:
            return None
        left = self.total - self.cached - self.done - self.failed
        mean = sum(self.durations) / len(self.durations)
        return left * mean / self.concurrency

    def status(self) -> str:
        return (f"done {self.done}/{self.total}  running {len(self.running)}  failed "
                f"{self.failed}  cached {self.cached}  elapsed "
                f"{format_seconds(time.monotonic() - self.started_at)}  ETA "
                f"{format_seconds(self.eta())}")

    def _write(self, text: str) -> None:
        if self.live:
            self.stream.write(f"\r\033[K{text}")
        else:
            self.stream.write(f"{text}\n")
        self.stream.flush()

    def _event(self, text: str) -> None:
        if self.live:
            self.stream.write(f"\r\033[K{text}\n")
            self._write(self.status())
        else:
            self._write(f"{text}  [{self.status()}]")

    def started(self, name: str) -> None:
        self.running[name] = time.monotonic()
        self.concurrency = max(self.concurrency, len(self.running))
        if self.live:
            self._write(self.status())

    def finished(self, name: str) -> None:
        self.durations.append(time.monotonic() - self.running.pop(name, time.monotonic()))
        self._event(f"finished {name} in {format_seconds(self.durations[-1])}")

    def failed_trial(self, name: str, message: str) -> None:
        self.running.pop(name, None)
        self.failed += 1
        self._event(f"FAILED {name}: {message}")

    def note(self, text: str) -> None:
        """A line that is not a trial's end (a retry, an interruption)."""
        self._event(text)

    def tick(self) -> None:
        """Redraw the live line at most once a second (the clock and the ETA move)."""
        if self.live and time.monotonic() - self._last_draw >= 1.0:
            self._last_draw = time.monotonic()
            self._write(self.status())

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def _cell(value: Any, spec: str = ".4f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A text table, one row per trial: task, model, seed, status, test accuracy,
    equivariance error (last block, ideal), training time."""
    header = ["task", "model", "seed", "status", "test acc", "equiv err", "time"]
    body = [[_cell(r["task"]), _cell(r["model"]), _cell(r["seed"]), _cell(r["status"]),
             # Errors span 1e-15 (exactly equivariant) to 1: keep the exponent visible.
             _cell(r.get("test_acc")), _cell(r.get("equiv_err"), ".2e"),
             format_seconds(r.get("train_s"))] for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    numeric = {2, 4, 5, 6}

    def fmt(line: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(line, widths))).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, body)])
