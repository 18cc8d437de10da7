"""Does each published number reproduce? Ours against the paper's, like with like.

One line per published value and zoo variant compared with it. A configuration counts toward a
published number only when its settings are the published protocol's (``published_settings``:
width 1, the published epochs and batch, n_train, protocol, the model after the final
epoch, and training batches formed as the benchmark reads the protocol, ``batching = "auto"``);
any other is listed with the settings that differ and the verdict "settings differ".
For a configuration at the published settings: our mean ± sd over seeds, the difference (ours
minus published, display units) and the verdict "yes" when |difference| <= 2 sd + the published
value's rounding (half its last printed digit), "no" otherwise, "1 seed: no sd" when one seed
cannot give an sd; "not run" when none of the published model's zoo variants ran.
"""

from __future__ import annotations

import math
import numbers

import pandas as pd

from reports.load import ADDED_PARAMS, metric_column
from reports.published import PUBLISHED_PROTOCOL
from reports.render import Cell, Grid, format_mean_sd, format_number
from reports.tables import SUMMARY_MEASURES, ResultTable

__all__ = ["VERDICTS", "published_settings", "reproduction_frame", "reproduction_grid",
           "settings_differences"]

VERDICTS = ("yes", "no", "1 seed: no sd", "settings differ", "not run")

_COLUMNS = ["table", "setting", "published_model", "model", "metric", "published", "mean", "sd",
            "n", "delta", "within_2sd", "differs", "verdict"]
# The task each table's runs come from, where the table is not named after it.
_TASK = {"data_efficiency": "mnist_scale"}
# The model selection of runs recorded before the option existed: the best validation epoch.
_OLD_SELECT = "best_val"


def published_settings(table: str, setting: str, published_model: str) -> dict[str, object]:
    """The settings a run must have to count toward ``published_model``'s number in ``table``
    at ``setting``: width, epochs, batch_size, n_train, protocol (None: any), select, batching
    (the benchmark's reading of how the published runs formed their training batches)."""
    from benchmark.tasks.mnist_scale import PROTOCOL_SIZES as MNIST_SIZES
    from benchmark.tasks.stl10 import PROTOCOL_SIZES as STL_SIZES
    from benchmark.train import protocol_defaults

    task = _TASK.get(table, table)
    # SEFL trains with its own loss and protocol; every other published model with its own.
    plan = protocol_defaults(task, own_loss=published_model == "sefl")
    if setting.startswith("n_train="):
        n_train = int(setting.removeprefix("n_train="))
    else:
        n_train = {"mnist_scale": MNIST_SIZES, "stl10_scale": STL_SIZES}[task]["train"]
    return {"width": 1.0, "epochs": plan["epochs"], "batch_size": plan["batch_size"],
            "n_train": n_train, "protocol": PUBLISHED_PROTOCOL.get(table), "select": "last",
            "batching": "auto"}


def _run_settings(run: pd.Series, wanted: dict[str, object]) -> dict[str, object]:
    """What a run trained with, in the terms of ``published_settings``. Epochs, batch and
    protocol left unset are the published protocol's; n_train is the size built (the
    ``data/n_train`` metric), unknown (NaN) for runs that did not record it."""

    def param(name: str, unset: object) -> object:
        value = run.get(f"params.{name}")
        return unset if value is None or pd.isna(value) else value

    return {"width": float(param("width", 1.0)),
            "epochs": param("epochs", wanted["epochs"]),
            "batch_size": param("batch_size", wanted["batch_size"]),
            "n_train": run.get(metric_column("data/n_train"), math.nan),
            "protocol": param("protocol", wanted["protocol"]),
            "select": param("select", _OLD_SELECT),
            "batching": param("batching", ADDED_PARAMS["batching"])}


def _shown(value: object) -> str:
    if isinstance(value, numbers.Real):
        return "not recorded" if math.isnan(float(value)) else f"{float(value):g}"
    return str(value)


def _same(ours: object, published: object) -> bool:
    if isinstance(ours, numbers.Real) and isinstance(published, numbers.Real):
        return not math.isnan(float(ours)) and float(ours) == float(published)
    return ours == published


def settings_differences(runs: pd.DataFrame, wanted: dict[str, object]) -> str:
    """The settings in which ``runs`` (rows of SuiteRuns.finished) differ from ``wanted``, as
    "epochs 5 (published 60); width 0.5 (published 1)"; "" when none does."""
    differing = {}
    for _, run in runs.iterrows():
        for name, ours in _run_settings(run, wanted).items():
            published = wanted[name]
            if published is not None and not _same(ours, published):
                differing.setdefault(name, (ours, published))
    return "; ".join(f"{name} {_shown(ours)} (published {_shown(published)})"
                     for name, (ours, published) in differing.items())


def _verdict(mean: float, sd: float, n: int, delta: float, rounding: float, differs: str
             ) -> tuple[object, str]:
    if n == 0 or math.isnan(mean):
        return pd.NA, "not run"
    if differs:
        return pd.NA, "settings differ"
    if n < 2 or math.isnan(sd):
        return pd.NA, "1 seed: no sd"
    within = abs(delta) <= 2 * sd + rounding
    return within, "yes" if within else "no"


def _cell_runs(finished: pd.DataFrame, run_ids: object, setting: str) -> pd.DataFrame:
    """The runs behind one cell: the row's runs, at the setting's n_train where it has one."""
    ids = run_ids.split() if isinstance(run_ids, str) else []
    runs = finished[finished["run_id"].isin(ids)]
    if setting.startswith("n_train=") and "params.n_train" in runs.columns:
        runs = runs[runs["params.n_train"] == int(setting.removeprefix("n_train="))]
    return runs


def reproduction_frame(tables: list[ResultTable], finished: pd.DataFrame) -> pd.DataFrame:
    """Every published value of ``tables`` against our cells, in table order.

    finished: SuiteRuns.finished, the runs the tables were made from (their settings).
    """
    rows = []
    for table in tables:
        for group in table.groups:
            p = group.prefix
            compared = table.frame[table.frame[f"{p}_published"].notna()]
            for _, row in compared.iterrows():
                mean, sd, n, delta = (row[f"{p}_mean"], row[f"{p}_sd"], int(row[f"{p}_n"]),
                                      row[f"{p}_delta"])
                differs = ""
                if n > 0:
                    wanted = published_settings(table.name, group.setting,
                                                row["published_model"])
                    differs = settings_differences(
                        _cell_runs(finished, row["run_ids"], group.setting), wanted)
                within, verdict = _verdict(mean, sd, n, delta, group.measure.rounding, differs)
                rows.append({
                    "table": table.name, "setting": group.setting,
                    "published_model": row["published_model"],
                    "model": row["label"] if row["seeds"] > 0 else "",
                    "metric": group.measure.label, "published": row[f"{p}_published"],
                    "mean": mean, "sd": sd, "n": n, "delta": delta, "within_2sd": within,
                    "differs": differs, "verdict": verdict,
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
               "Ours", "Δ", "Within 2 sd", "Settings that differ"]
    rows = [
        [
            Cell(r.table), Cell(r.setting), Cell(r.published_model), Cell(r.model),
            Cell(r.metric),
            Cell(format_number(r.published, measures[r.metric].published_fmt), sort=r.published),
            Cell(format_mean_sd(r.mean, r.sd, r.n, measures[r.metric].fmt, show_n=True),
                 sort=r.mean),
            Cell(format_number(r.delta, measures[r.metric].fmt, signed=True), sort=r.delta),
            Cell(r.verdict), Cell(r.differs),
        ]
        for r in frame.itertuples(index=False) if r.verdict != "not run"
    ]
    counts = frame["verdict"].value_counts()
    summary = ", ".join(f"{v}: {counts.get(v, 0)}" for v in VERDICTS)
    note = _not_run_note(frame)
    return Grid("Reproduction of the published numbers", headers, rows, "lllllrrrll",
                f"Counted only at the published settings (width 1, the published epochs, "
                f"batch and n_train, protocol, the model after the final epoch, batching "
                f"auto): ours within "
                f"two seed-sds (plus the published rounding) of the published value? "
                f"{summary}.", notes=[note] if note else [],
                empty="No published value has runs of ours to compare with.")
