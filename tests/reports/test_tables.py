"""The tables of the ``paper`` test store: exact rows, mean ± sd, best bold, missing cells.

Expected numbers are worked out by hand from conftest.RUNS (accuracy in %, sample sd):
sefl 98, 99, 97 -> 98.00 ± 1.00; cnn 95, 96 -> 95.50 ± 0.71; sicnn 96, 98 -> 97.00 ± 1.41
(its run by older code at 10 % is superseded and must not count).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from reports.load import load_suite
from reports.tables import data_efficiency_table, summary_table

MNIST_ROWS = [  # model, protocol, seeds, acc mean, acc sd, consistency mean, sd, err mean, sd
    ("cnn", "fourier", 2, 95.5, math.sqrt(0.5), 65.0, math.sqrt(50), 0.6, math.sqrt(0.02)),
    ("cnn", "sesn", 1, 97.0, math.nan, 50.0, math.nan, 0.9, math.nan),
    ("disco", None, 0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan),
    ("dss_scalar", "fourier", 1, 97.0, math.nan, 65.0, math.nan, 0.3, math.nan),
    ("fourier_cnn", None, 0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan),
    ("per_res_cnn", None, 0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan),
    ("sefl", "fourier", 3, 98.0, 1.0, 97.0, 1.0, 2e-6, 1e-6),
    ("sesn", None, 0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan),
    ("si_convnet", None, 0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan),
    ("sicnn", "fourier", 2, 97.0, math.sqrt(2), 55.0, math.sqrt(50), 0.3, math.sqrt(0.02)),
    ("ss_cnn", None, 0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan),
]


@pytest.fixture(scope="module")
def finished(tracking_uri: str) -> pd.DataFrame:
    return load_suite("paper", tracking_uri).finished


def _markdown_rows(path: Path) -> list[list[str]]:
    """The body rows of the first Markdown table in ``path``, cells stripped."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]


def _header(path: Path) -> list[str]:
    line = next(line for line in path.read_text().splitlines() if line.startswith("| "))
    return [c.strip() for c in line.strip("|").split(" | ")]


def test_mnist_rows_and_stats(finished: pd.DataFrame) -> None:
    frame = summary_table(finished, "mnist_scale").frame
    assert list(frame["model"]) == [row[0] for row in MNIST_ROWS]
    for (_, row), expected in zip(frame.iterrows(), MNIST_ROWS):
        model, protocol, seeds, *stats = expected
        assert row["seeds"] == seeds, model
        assert (pd.isna(row["params.protocol"]) if protocol is None
                else row["params.protocol"] == protocol), model
        got = [row[f"{m}_{s}"] for m in ("acc", "consistency", "equiv_err") for s in ("mean", "sd")]
        assert got == pytest.approx(stats, nan_ok=True, rel=1e-9), model
        # conftest logs the first block's error as a quarter of the last block's.
        first = [row[f"equiv_err_first_{s}"] for s in ("mean", "sd")]
        assert first == pytest.approx([v / 4 for v in stats[-2:]], nan_ok=True, rel=1e-9), model


@pytest.mark.parametrize(("table", "block"), [
    ("mnist_scale", "first"), ("stl10_scale", "last"), ("mnist1d_scale", None)])
def test_note_says_which_block_the_published_error_is(report_dir: Path, table: str,
                                                      block: str | None) -> None:
    text = (report_dir / "tables" / f"{table}.md").read_text()
    note = text.rstrip().splitlines()[-1]
    assert note.startswith("Equiv. error: the energy pooled over channels")
    if block is None:
        assert note.endswith("No equivariance error is published for this task.")
    else:
        assert note.endswith(f"the authors measured the {block} block.")
        header = _header(report_dir / "tables" / f"{table}.md")
        other = {"first": "last", "last": "first"}[block]
        # Only the published block's column has published values.
        pub = header.index(f"Equiv. error ({block} block)") + 1
        not_pub = header.index(f"Equiv. error ({other} block)") + 1
        rows = _markdown_rows(report_dir / "tables" / f"{table}.md")
        assert any(row[pub] != "—" for row in rows)
        assert all(row[not_pub] == "—" for row in rows)


def test_mnist_markdown_rows(report_dir: Path) -> None:
    rows = {(r[0], r[1]): r for r in _markdown_rows(report_dir / "tables" / "mnist_scale.md")}
    assert " | ".join(rows["sefl", "fourier"]) == (
        "sefl | fourier | 100,000 | 3 | **98.00 ± 1.00** | 98.89 | -0.89 | **97.00 ± 1.00** | "
        "97.16 | -0.16 | **5e-07 ± 2.5e-07** | 0.00 | +5e-07 | **2e-06 ± 1e-06** | — | —")
    # The published MNIST-scale error is the first block's: the last block's has no pub.
    assert " | ".join(rows["cnn", "fourier"]) == (
        "cnn | fourier | 494,549 | 2 | 95.50 ± 0.71 | 97.37 | -1.87 | 65.00 ± 7.07 | 66.21 | "
        "-1.21 | 0.15 ± 0.0354 | — | — | 0.6 ± 0.141 | — | —")
    # Run under the "sesn" protocol: not compared with the "fourier"-protocol paper numbers.
    assert " | ".join(rows["cnn", "sesn"]) == (
        "cnn | sesn | 494,549 | 1 | 97.00 | — | — | 50.00 | — | — | 0.225 | — | — | 0.9 | — | —")
    # A published model we did not run keeps its row: our cells missing, its numbers shown.
    assert " | ".join(rows["disco", ""]) == (
        "disco |  | missing | 0 | missing | 98.56 | — | missing | 55.85 | — | missing | 0.44 | — "
        "| missing | — | —")
    assert len(rows) == len(MNIST_ROWS)


@pytest.mark.parametrize(
    ("table", "column", "best"),
    [
        ("mnist_scale", "Accuracy (%)", "sefl"),
        ("mnist_scale", "Scale consistency (%)", "sefl"),
        ("mnist_scale", "Equiv. error (first block)", "sefl"),
        ("mnist_scale", "Equiv. error (last block)", "sefl"),
        ("mnist1d_scale", "Accuracy (%)", "sefl"),
        ("mnist1d_scale", "Equiv. error (first block)", "sefl"),
        ("mnist1d_scale", "Equiv. error (last block)", "sefl"),
        ("data_efficiency", "Accuracy, 1000 train (%)", "sefl"),
        ("stl10_scale", "Accuracy (%)", "wrn_16_8"),
    ],
)
def test_best_per_column_is_bold(report_dir: Path, table: str, column: str, best: str) -> None:
    path = report_dir / "tables" / f"{table}.md"
    index = _header(path).index(column)
    bold = [row[0] for row in _markdown_rows(path) if row[index].startswith("**")]
    assert bold == [best]


def test_data_efficiency_cells(finished: pd.DataFrame, report_dir: Path) -> None:
    table = data_efficiency_table(finished)
    assert [g.prefix for g in table.groups] == ["acc_10000", "acc_5000", "acc_2500", "acc_1000"]
    sefl = table.frame[table.frame["model"] == "sefl"].iloc[0]
    assert (sefl["acc_1000_mean"], sefl["acc_1000_sd"]) == pytest.approx((96.0, math.sqrt(2)))
    assert sefl["acc_1000_published"] == pytest.approx(96.06)
    assert sefl["seeds"] == 3 and sefl["acc_1000_n"] == 2 and sefl["acc_5000_n"] == 0
    rows = {(r[0], r[1]): r for r in _markdown_rows(report_dir / "tables" / "data_efficiency.md")}
    # Seeds: the row has 3 (at 10000), the 1000 cell only 2, so the cell says so.
    assert rows["sefl", "fourier"][2:] == [
        "3", "**98.00 ± 1.00**", "—", "—", "missing", "98.35", "—", "missing", "97.67", "—",
        "**96.00 ± 1.41 (n=2)**", "96.06", "-0.06"]
    assert rows["cnn", "fourier"][-3:] == ["85.00 (n=1)", "85.77", "-0.77"]


def test_main_table_keeps_only_the_full_training_size(finished: pd.DataFrame) -> None:
    table = summary_table(finished, "mnist_scale")
    # sefl also ran at n_train 1000 (2 seeds): those belong to the data-efficiency table.
    assert table.frame.loc[table.frame["model"] == "sefl", "seeds"].tolist() == [3]
    assert "params.n_train" not in table.frame.columns  # one size left: it is in the caption
    assert table.caption == "train images: 10000; width: 0.25, 1"


def test_stl_row_and_published_delta(report_dir: Path) -> None:
    rows = {r[0]: r for r in _markdown_rows(report_dir / "tables" / "stl10_scale.md")}
    assert rows["wrn_16_8"] == [
        "wrn_16_8", "10,961,370", "2", "**56.00 ± 1.41**", "55.96", "+0.04", "**29.00 ± 1.41**",
        "29.16", "-0.16", "**0.0425 ± 0.00354**", "—", "—", "**0.17 ± 0.0141**", "0.16", "+0.01"]
    # On STL-10-scale the published error is the last block's: the first block has no pub.
    # dss / sesn on STL map to dss_wrn / sesn_wrn_*, none of which ran: published rows stay.
    assert rows["sesn"][1:4] == ["missing", "0", "missing"]


def test_csv_holds_the_numbers(report_dir: Path) -> None:
    frame = pd.read_csv(report_dir / "tables" / "mnist_scale.csv")
    assert len(frame) == len(MNIST_ROWS)
    sefl = frame[frame["model"] == "sefl"].iloc[0]
    assert (sefl["acc_mean"], sefl["acc_sd"], sefl["acc_n"]) == pytest.approx((98.0, 1.0, 3))
    assert sefl["acc_delta"] == pytest.approx(98.0 - 98.89)
    assert len(sefl["run_ids"].split()) == 3


def test_latex_is_booktabs_with_bold_and_escapes(report_dir: Path) -> None:
    tex = (report_dir / "tables" / "mnist_scale.tex").read_text()
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\textbf{98.00 $\pm$ 1.00}",
                    r"dss\_scalar", r"Accuracy (\%)", r"$\Delta$"):
        assert command in tex
    assert tex.count(r" \\") == 1 + len(MNIST_ROWS)


def test_failed_and_unfinished_runs_are_listed(report_dir: Path) -> None:
    failed = pd.read_csv(report_dir / "tables" / "failed_runs.csv")
    assert sorted(failed["run_name"]) == ["mnist_scale/cnn/s2", "mnist_scale/sefl/s2"]
    assert dict(zip(failed["model"], failed["finished_later"])) == {"cnn": False, "sefl": True}
    assert set(failed["error"]) == {"RuntimeError: loss is NaN (cnn s2)",
                                    "RuntimeError: loss is NaN (sefl s2)"}
    report = (report_dir / "report.md").read_text()
    assert "**FAILED runs: 2**" in report and "**Unfinished runs: 1**" in report
    assert "| mnist_scale/sicnn/s2 | KILLED | mnist_scale | sicnn | 2 | no |" in report
    assert ("- Runs: 16 used, 1 superseded by a newer run of the same trial, 2 FAILED, "
            "1 unfinished, 0 missing metrics (20 trial runs in all)") \
        in report


def test_a_run_of_older_code_is_superseded_by_the_newer_run_of_its_trial(tracking_uri):
    from conftest import CODE, OLD_CODE

    runs = load_suite("paper", tracking_uri)
    assert list(runs.superseded["code"]) == [OLD_CODE]
    assert list(runs.superseded["metrics.test/acc"]) == [0.10]
    sicnn = runs.finished[(runs.finished["model"] == "sicnn") & (runs.finished["seed"] == 0)]
    assert list(sicnn["metrics.test/acc"]) == [0.96] and set(runs.finished["code"]) == {CODE}


def test_the_report_names_the_code_of_its_runs(report_dir: Path) -> None:
    from conftest import CODE

    assert f"- Code of the runs used: {CODE[:12]}" in (report_dir / "report.md").read_text()
