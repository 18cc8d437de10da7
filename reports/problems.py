"""What the tables could not use: FAILED runs, unfinished runs, runs missing metrics."""

from __future__ import annotations

import pandas as pd

from reports.load import SuiteRuns
from reports.render import Cell, Grid

__all__ = ["missing_message", "problem_grids"]


def _text(value: object) -> str:
    return "" if pd.isna(value) else str(value)


def _grid(title: str, frame: pd.DataFrame, columns: dict[str, str], empty: str) -> Grid:
    rows = [[Cell(_text(row[c])) for c in columns] for _, row in frame.iterrows()]
    return Grid(f"{title}: {len(rows)}", list(columns.values()), rows, "l" * len(columns),
                empty=empty)


def problem_grids(runs: SuiteRuns) -> list[Grid]:
    """Three tables: FAILED runs with their error, unfinished runs, and runs missing metrics."""
    def later(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(finished_later=frame["finished_later"].map({True: "yes",
                                                                        False: "no"}))

    return [
        _grid("FAILED runs", later(runs.failed),
              {"run_name": "Run", "task": "Task", "model": "Model", "seed": "Seed",
               "error": "Error", "finished_later": "Finished later", "run_id": "Run id"},
              "No run failed."),
        _grid("Unfinished runs", later(runs.unfinished),
              {"run_name": "Run", "status": "Status", "task": "Task", "model": "Model",
               "seed": "Seed", "finished_later": "Finished later", "run_id": "Run id"},
              "No run is left unfinished."),
        _grid("Runs missing required metrics", runs.missing,
              {"run_name": "Run", "task": "Task", "model": "Model", "seed": "Seed",
               "missing": "Missing metrics", "run_id": "Run id"},
              "Every finished run has the required metrics."),
    ]


def missing_message(missing: pd.DataFrame, shown: int = 3) -> str:
    """One line naming the runs that miss required metrics and which (first ``shown``)."""
    parts = [f"{_text(r.run_name) or r.run_id}: {r.missing}"
             for r in missing.head(shown).itertuples()]
    more = f"; and {len(missing) - shown} more" if len(missing) > shown else ""
    return f"{len(missing)} run(s) miss required metrics ({'; '.join(parts)}{more})"
