"""Does each published number reproduce? Ours against the paper's, within one seed-sd.

One line per published value and zoo variant compared with it: our mean ± sd over seeds,
the difference (ours minus published, display units) and the verdict: "yes" when
|difference| <= sd + the published value's rounding (half its last printed digit), "no"
otherwise, "1 seed: no sd" when one seed cannot give an sd, and "not run" when none of the
published model's zoo variants ran.
"""

from __future__ import annotations

import math

import pandas as pd

from reports.render import Cell, Grid, format_mean_sd, format_number
from reports.tables import SUMMARY_MEASURES, ResultTable

__all__ = ["VERDICTS", "reproduction_frame", "reproduction_grid"]

VERDICTS = ("yes", "no", "1 seed: no sd", "not run")

_COLUMNS = ["table", "setting", "published_model", "model", "metric", "published", "mean", "sd",
            "n", "delta", "within_sd", "verdict"]


def _verdict(mean: float, sd: float, n: int, delta: float, rounding: float
             ) -> tuple[object, str]:
    if n == 0 or math.isnan(mean):
        return pd.NA, "not run"
    if n < 2 or math.isnan(sd):
        return pd.NA, "1 seed: no sd"
    within = abs(delta) <= sd + rounding
    return within, "yes" if within else "no"


def reproduction_frame(tables: list[ResultTable]) -> pd.DataFrame:
    """Every published value of ``tables`` against our cells, in table order."""
    rows = []
    for table in tables:
        for group in table.groups:
            p = group.prefix
            compared = table.frame[table.frame[f"{p}_published"].notna()]
            for _, row in compared.iterrows():
                mean, sd, n, delta = (row[f"{p}_mean"], row[f"{p}_sd"], int(row[f"{p}_n"]),
                                      row[f"{p}_delta"])
                within, verdict = _verdict(mean, sd, n, delta, group.measure.rounding)
                rows.append({
                    "table": table.name, "setting": group.setting,
                    "published_model": row["published_model"],
                    "model": row["label"] if row["seeds"] > 0 else "",
                    "metric": group.measure.label, "published": row[f"{p}_published"],
                    "mean": mean, "sd": sd, "n": n, "delta": delta, "within_sd": within,
                    "verdict": verdict,
                })
    return pd.DataFrame(rows, columns=_COLUMNS)


def _not_run_note(frame: pd.DataFrame) -> str:
    not_run = frame[frame["verdict"] == "not run"]
    if not_run.empty:
        return ""
    parts = [
        f"{table} ({setting}): {', '.join(dict.fromkeys(part['published_model']))}"
        for (table, setting), part in not_run.groupby(["table", "setting"], sort=False)
    ]
    return "Published but not run here: " + "; ".join(parts) + "."


def reproduction_grid(frame: pd.DataFrame) -> Grid:
    """The reproduction section: one row per compared value; "not run" ones in a note.

    frame: from reproduction_frame.
    """
    measures = {m.label: m for m in SUMMARY_MEASURES}
    headers = ["Table", "Setting", "Published model", "Our model", "Metric", "Published",
               "Ours", "Δ", "Within 1 sd"]
    rows = [
        [
            Cell(r.table), Cell(r.setting), Cell(r.published_model), Cell(r.model),
            Cell(r.metric),
            Cell(format_number(r.published, measures[r.metric].published_fmt), sort=r.published),
            Cell(format_mean_sd(r.mean, r.sd, r.n, measures[r.metric].fmt, show_n=True),
                 sort=r.mean),
            Cell(format_number(r.delta, measures[r.metric].fmt, signed=True), sort=r.delta),
            Cell(r.verdict),
        ]
        for r in frame.itertuples(index=False) if r.verdict != "not run"
    ]
    counts = frame["verdict"].value_counts()
    summary = ", ".join(f"{v}: {counts.get(v, 0)}" for v in VERDICTS)
    note = _not_run_note(frame)
    return Grid("Reproduction of the published numbers", headers, rows, "lllllrrrl",
                f"Ours within one seed-sd (plus the published rounding) of the published "
                f"value? {summary}.", notes=[note] if note else [],
                empty="No published value has runs of ours to compare with.")
