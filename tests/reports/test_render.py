"""Cell formatting and the three renderers on a small grid."""

from __future__ import annotations

import math

import pytest

from reports.render import (
    MISSING,
    Cell,
    Grid,
    format_count,
    format_mean_sd,
    format_number,
    to_html,
    to_latex,
    to_markdown,
)


@pytest.mark.parametrize(
    ("mean", "sd", "n", "show_n", "text"),
    [
        (98.0, 1.0, 3, False, "98.00 ± 1.00"),
        (98.0, 1.0, 3, True, "98.00 ± 1.00 (n=3)"),
        (97.0, math.nan, 1, False, "97.00"),
        (math.nan, math.nan, 0, False, MISSING),
    ],
)
def test_format_mean_sd(mean: float, sd: float, n: int, show_n: bool, text: str) -> None:
    assert format_mean_sd(mean, sd, n, ".2f", show_n=show_n) == text


@pytest.mark.parametrize(
    ("value", "signed", "text"), [(-1.874, True, "-1.87"), (0.04, True, "+0.04"),
                                  (math.nan, False, "—"), (0.5, False, "0.50")])
def test_format_number(value: float, signed: bool, text: str) -> None:
    assert format_number(value, ".2f", signed=signed) == text


def test_format_count() -> None:
    assert (format_count(494549.0), format_count(math.nan)) == ("494,549", MISSING)


GRID = Grid("T_1", ["Model", "Acc (%)"], [[Cell("a|b_c"), Cell("1 ± 2", bold=True, sort=1.0)]],
            "lr", caption="cap")


def test_markdown_escapes_pipes_and_bolds() -> None:
    assert to_markdown(GRID) == (
        "**T_1**\n\ncap\n\n| Model | Acc (%) |\n| :--- | ---: |\n| a\\|b_c | **1 ± 2** |\n")


def test_latex_escapes() -> None:
    tex = to_latex(GRID)
    assert r"a|b\_c & \textbf{1 $\pm$ 2} \\" in tex
    assert r"\caption{T\_1. cap}" in tex and r"Acc (\%)" in tex


def test_html_cells_carry_sort_keys_and_escape() -> None:
    page = to_html(Grid("T", ["x"], [[Cell("<b>", sort=2.5)], [Cell(MISSING)]], "r"), "t1")
    assert '<td class="" data-sort="2.5">&lt;b&gt;</td>' in page
    assert '<td class="missing" data-sort="">missing</td>' in page


def test_empty_grid_says_so() -> None:
    empty = Grid("T", ["a", "b"], [], "ll", empty="nothing failed")
    assert "| nothing failed |  |" in to_markdown(empty)
    assert r"\multicolumn{2}{l}{nothing failed}" in to_latex(empty)
