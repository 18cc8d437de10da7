"""The CLI: what it writes, and the bad inputs (exit 2, one message, partial report)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reports.generate import main


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_writes_every_file(report_dir: Path) -> None:
    tables = ["mnist_scale", "data_efficiency", "stl10_scale", "mnist1d_scale", "reproduction",
              "failed_runs", "unfinished_runs", "missing_metrics"]
    for stem in tables:
        for suffix in (".md", ".tex", ".csv"):
            assert (report_dir / "tables" / f"{stem}{suffix}").stat().st_size > 0
    assert (report_dir / "index.html").stat().st_size > 0
    assert (report_dir / "report.md").read_text().startswith("# sefl-bench report: paper")


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        ("nope", "error: --suite nope: no experiment 'sefl-bench/nope' in sqlite:///"),
        ("empty", "error: --suite empty: experiment 'sefl-bench/empty' has no trial runs"),
        ("broken", "error: --suite broken: no usable run in sefl-bench/broken (2 FAILED"),
    ],
)
def test_unusable_experiment_exits_2_without_writing(
    capsys: pytest.CaptureFixture, tracking_uri: str, tmp_path: Path, suite: str, message: str
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = _run(capsys, "--suite", suite, "--tracking-uri", tracking_uri,
                                "--out", str(out))
    assert code == 2
    assert stderr.startswith(message) and stderr.count("\n") == 1
    assert stdout == ""
    assert not out.exists()


def test_unknown_experiment_lists_the_known_ones(capsys, tracking_uri: str) -> None:
    _, _, stderr = _run(capsys, "--suite", "nope", "--tracking-uri", tracking_uri)
    assert stderr.rstrip().endswith("experiments there: sefl-bench/broken, sefl-bench/empty, "
                                    "sefl-bench/paper, sefl-bench/partial")


def test_missing_store_is_not_created(capsys, tmp_path: Path) -> None:
    store = tmp_path / "absent.db"
    code, _, stderr = _run(capsys, "--suite", "paper", "--tracking-uri", f"sqlite:///{store}")
    assert code == 2
    assert stderr == (f"error: --tracking-uri sqlite:///{store}: no MLflow store at {store}; "
                      "run `python -m benchmark.run --suite <name>` first or point "
                      "--tracking-uri at the store\n")
    assert not store.exists()


def test_missing_metrics_give_a_partial_report(capsys, tracking_uri: str, tmp_path: Path) -> None:
    code, _, stderr = _run(capsys, "--suite", "partial", "--tracking-uri", tracking_uri,
                           "--out", str(tmp_path))
    assert code == 2
    assert stderr == (
        "error: 2 run(s) miss required metrics (mnist_scale/cnn/s1: scale/consistency, "
        "equiv/err; mnist_scale/sefl/s0: test/acc, scale/consistency, equiv/err); partial "
        f"report written to {tmp_path / 'index.html'}\n")
    table = (tmp_path / "tables" / "mnist_scale.md").read_text()
    # cnn: two accuracies, one consistency and one error; the cells say how many seeds.
    assert ("| cnn | 494,549 | 2 | **96.00 ± 1.41** | 97.37 | -1.37 | **60.00 (n=1)** | 66.21 | "
            "-6.21 | **0.125 (n=1)** | — | — | **0.5 (n=1)** | — | — |") in table
    missing = (tmp_path / "tables" / "missing_metrics.md").read_text()
    assert "| mnist_scale/sefl/s0 | mnist_scale | sefl | 0 | test/acc, scale/consistency, " \
        "equiv/err |" in missing
    assert "**Partial report:** 2 run(s) miss required metrics" in (
        tmp_path / "report.md").read_text()
    assert "Runs missing required metrics: 2" in (tmp_path / "index.html").read_text()


def test_module_entry_point_exit_code(tracking_uri: str, tmp_path: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    done = subprocess.run([sys.executable, "-m", "reports.generate", "--suite", "nope"],
                          check=False, capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --suite nope: no experiment 'sefl-bench/nope' in "
                                  f"{tracking_uri};")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "reports").exists()


def test_help_lists_options(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for option in ("--suite", "--tracking-uri", "--out", "--mlflow-ui", "example:"):
        assert option in text
