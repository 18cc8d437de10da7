"""Render a grid of cells as Markdown, LaTeX (booktabs) or an HTML table.

The tables module decides what every cell says and which are best; this module only writes
them in each format, so the three formats can never disagree on a number.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

__all__ = [
    "MISSING",
    "NOT_REPORTED",
    "Cell",
    "Grid",
    "format_count",
    "format_mean_sd",
    "format_number",
    "to_html",
    "to_latex",
    "to_markdown",
]

MISSING = "missing"
NOT_REPORTED = "—"


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, whether it is the column's best, and a numeric sort key.

    links: (text, href) pairs rendered as anchors in HTML and as plain text elsewhere.
    """

    text: str
    bold: bool = False
    sort: float | None = None
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Grid:
    """A table ready to render: headers, rows of cells, and "l"/"r" alignment per column.

    empty: what the table says when it has no rows.
    """

    title: str
    headers: list[str]
    rows: list[list[Cell]]
    align: str
    caption: str = ""
    notes: list[str] = field(default_factory=list)
    empty: str = "no runs"


def format_number(value: float, fmt: str, signed: bool = False) -> str:
    """``value`` formatted with ``fmt`` ("+" added when signed); NaN gives NOT_REPORTED."""
    if value is None or math.isnan(value):
        return NOT_REPORTED
    return format(value, ("+" if signed else "") + fmt)


def format_count(value: float) -> str:
    """A count with thousands separators ("494,549"); NaN gives MISSING."""
    return MISSING if value is None or math.isnan(value) else f"{value:,.0f}"


def format_mean_sd(mean: float, sd: float, n: int, fmt: str, show_n: bool = False) -> str:
    """"mean ± sd", the sd left out for one seed, "(n=k)" appended when asked; NaN -> MISSING."""
    if n == 0 or math.isnan(mean):
        return MISSING
    text = format(mean, fmt)
    if n >= 2 and not math.isnan(sd):
        text += f" ± {format(sd, fmt)}"
    return f"{text} (n={n})" if show_n else text


def to_markdown(grid: Grid) -> str:
    """A GitHub-flavoured Markdown table with a bold title line, caption and notes."""

    def cell(c: Cell) -> str:
        text = c.text.replace("|", "\\|")
        return f"**{text}**" if c.bold else text

    rule = ["---:" if a == "r" else ":---" for a in grid.align]
    lines = [f"**{grid.title}**", ""]
    if grid.caption:
        lines += [grid.caption, ""]
    lines += [
        "| " + " | ".join(grid.headers) + " |",
        "| " + " | ".join(rule) + " |",
        *("| " + " | ".join(cell(c) for c in row) + " |" for row in grid.rows),
    ]
    if not grid.rows:
        lines.append("| " + " | ".join([grid.empty, *[""] * (len(grid.headers) - 1)]) + " |")
    return "\n".join(lines + [f"\n{note}" for note in grid.notes]) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_SYMBOLS = {"±": r"$\pm$", "Δ": r"$\Delta$", "—": "--", "≤": r"$\leq$"}


def _latex(text: str) -> str:
    escaped = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)
    for symbol, command in _LATEX_SYMBOLS.items():
        escaped = escaped.replace(symbol, command)
    return escaped


def to_latex(grid: Grid) -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""

    def cell(c: Cell) -> str:
        return rf"\textbf{{{_latex(c.text)}}}" if c.bold else _latex(c.text)

    body = [" & ".join(cell(c) for c in row) + r" \\" for row in grid.rows]
    caption = _latex(grid.title + (f". {grid.caption}" if grid.caption else ""))
    return "\n".join([
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption}}}",
        rf"\begin{{tabular}}{{{grid.align}}}",
        r"\toprule",
        " & ".join(_latex(h) for h in grid.headers) + r" \\",
        r"\midrule",
        *(body or [rf"\multicolumn{{{len(grid.headers)}}}{{l}}{{{_latex(grid.empty)}}} \\"]),
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]) + "\n"


def to_html(grid: Grid, table_id: str) -> str:
    """A sortable ``<table>`` (class "sortable"; cells carry data-sort with their number)."""

    def cell(c: Cell, align: str) -> str:
        text = html.escape(c.text)
        if c.links:
            text = " ".join(
                f'<a href="{html.escape(href)}">{html.escape(label)}</a>' for label, href in c.links
            )
        if c.bold:
            text = f"<strong>{text}</strong>"
        flags = (("l", align == "l"), ("missing", c.text == MISSING))
        classes = " ".join(name for name, on in flags if on)
        sort = "" if c.sort is None or math.isnan(c.sort) else repr(float(c.sort))
        return f'<td class="{classes}" data-sort="{sort}">{text}</td>'

    head = "".join(
        f'<th class="{"l" if a == "l" else ""}">{html.escape(h)}</th>'
        for h, a in zip(grid.headers, grid.align)
    )
    rows = "\n".join(
        f"<tr>{''.join(cell(c, a) for c, a in zip(row, grid.align))}</tr>" for row in grid.rows
    )
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in grid.notes)
    caption = f"<p class='caption'>{html.escape(grid.caption)}</p>" if grid.caption else ""
    empty = "" if grid.rows else f"<p class='note'>{html.escape(grid.empty)}</p>"
    return (
        f"<h3>{html.escape(grid.title)}</h3>{caption}"
        f'<table class="sortable" id="{html.escape(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{rows}\n</tbody></table>{empty}{notes}"
    )
