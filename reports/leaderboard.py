"""The leaderboard page: one self-contained ``index.html`` (figures embedded as base64 PNG).

A ranked, sortable table per task (click a header to sort; a few lines of inline JS), the
paper's tables, the reproduction section, what failed or is missing, the figures and the
provenance. Each leaderboard row links the MLflow runs it averages. The feature maps across
resolutions of the best runs (``reports.feature_page``) come as their grid and animation.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from reports.render import Cell, Grid, format_count, format_mean_sd, format_number, to_html
from reports.tables import CONSISTENCY, EQUIVARIANCE, EQUIVARIANCE_FIRST, ResultTable

__all__ = ["Page", "leaderboard_grid", "render_page"]

_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th) => {
  th.addEventListener("click", () => {
    const column = th.cellIndex;
    const body = th.closest("table").tBodies[0];
    const up = th.dataset.dir !== "asc";
    th.dataset.dir = up ? "asc" : "desc";
    const key = (row) => {
      const cell = row.cells[column];
      const n = parseFloat(cell.dataset.sort);
      return isNaN(n) ? cell.textContent : n;
    };
    const order = (a, b) => {
      const x = key(a), y = key(b);
      if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;  // missing last
      return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1);
    };
    [...body.rows].sort(order).forEach((row) => body.appendChild(row));
  });
});
document.body.classList.add("sortable-ready");
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: right; }
td { white-space: nowrap; }
th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }
th.l, td.l { text-align: left; }
td.missing { color: #999; font-style: italic; }
.caption, .note { color: #555; font-size: 0.9em; }
figure { display: inline-block; margin: 0.5em; }
img { max-width: 100%; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: 600; }
"""


@dataclass(frozen=True)
class Page:
    """Everything the page shows, already computed.

    figures: (caption, PNG path) pairs; provenance: (name, value) pairs;
    feature_figures: (caption, PNG grid, GIF animation) of the feature maps across
    resolutions; feature_notes: why some were not drawn.
    """

    title: str
    provenance: list[tuple[str, str]]
    leaderboards: list[Grid]
    tables: list[Grid]
    reproduction: Grid
    problems: list[Grid]
    figures: list[tuple[str, Path]]
    feature_figures: list[tuple[str, Path, Path]] = field(default_factory=list)
    feature_notes: list[str] = field(default_factory=list)


def _run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def leaderboard_grid(table: ResultTable, ui_url: str, experiment_id: str) -> Grid:
    """``table``'s rows that ran, ranked by mean accuracy (missing last)."""
    frame = table.frame[table.frame["seeds"] > 0].sort_values(
        "acc_mean", ascending=False, na_position="last", kind="stable")
    headers = ["Rank", "Model", "Accuracy (%)", "Seeds", EQUIVARIANCE_FIRST.label,
               EQUIVARIANCE.label, CONSISTENCY.label, "Params", "Train img/s", "Eval img/s",
               "MLflow runs"]
    rows = []
    for rank, row in enumerate(frame.itertuples(), start=1):
        run_ids = str(row.run_ids).split()
        rows.append([
            Cell(str(rank), sort=rank),
            Cell(row.label),
            Cell(format_mean_sd(row.acc_mean, row.acc_sd, row.acc_n, ".2f"), sort=row.acc_mean),
            Cell(str(row.seeds), sort=row.seeds),
            Cell(format_mean_sd(row.equiv_err_first_mean, row.equiv_err_first_sd,
                                row.equiv_err_first_n, EQUIVARIANCE_FIRST.fmt),
                 sort=row.equiv_err_first_mean),
            Cell(format_mean_sd(row.equiv_err_mean, row.equiv_err_sd, row.equiv_err_n,
                                EQUIVARIANCE.fmt), sort=row.equiv_err_mean),
            Cell(format_mean_sd(row.consistency_mean, row.consistency_sd, row.consistency_n,
                                CONSISTENCY.fmt), sort=row.consistency_mean),
            Cell(format_count(row.params), sort=row.params),
            Cell(format_number(row.train_img_s, ".0f"), sort=row.train_img_s),
            Cell(format_number(row.eval_img_s, ".0f"), sort=row.eval_img_s),
            Cell(" ".join(run_ids), links=tuple(
                (run_id[:8], _run_url(ui_url, experiment_id, run_id)) for run_id in run_ids)),
        ])
    return Grid(f"Leaderboard: {table.title}", headers, rows, "rl" + "r" * 8 + "l",
                table.caption)


def _figure(caption: str, *images: Path) -> str:
    """A figure of embedded PNG or GIF images side by side, under one caption."""
    tags = []
    for image in images:
        kind = image.suffix.lstrip(".").lower()
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        tags.append(f'<img alt="{html.escape(caption)}" src="data:image/{kind};base64,{data}">')
    return f"<figure>{''.join(tags)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def render_page(page: Page) -> str:
    """The whole ``index.html`` as one string."""
    provenance = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in page.provenance)
    sections = [
        f"<h1>{html.escape(page.title)}</h1>",
        f"<h2>Provenance</h2><dl id='provenance'>{provenance}</dl>",
        "<h2>Leaderboard</h2>",
        *(to_html(g, f"leaderboard-{i}") for i, g in enumerate(page.leaderboards)),
        "<h2>Tables</h2>",
        *(to_html(g, f"table-{i}") for i, g in enumerate(page.tables)),
        "<h2>Reproduction</h2>",
        to_html(page.reproduction, "reproduction"),
        "<h2>Failed and missing</h2>",
        *(to_html(g, f"problems-{i}") for i, g in enumerate(page.problems)),
        "<h2>Figures</h2>",
        *(_figure(caption, png) for caption, png in page.figures),
        "<h2>Feature maps across resolutions</h2>",
        *(_figure(caption, gif, png) for caption, png, gif in page.feature_figures),
        *(f"<p class='note'>{html.escape(note)}</p>" for note in page.feature_notes),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(page.title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(sections)
        + f"\n<script>{_SCRIPT}</script>\n</body></html>\n"
    )
