"""The paper's tables as numbers: one row per model configuration, mean ± sd over seeds.

A row groups the finished runs of one task whose flattened trial params are equal except for
the seed. Each cell group keeps ``<prefix>_mean``, ``_sd`` (sample sd, ddof 1; NaN for one
seed), ``_n`` (seeds behind the cell), ``_published`` and ``_delta`` (ours minus published),
all in display units (accuracy and consistency in %). Published models none of whose zoo
variants ran get a row of their own with every one of our cells missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import pandas as pd

from reports import schema
from reports.load import metric_column
from reports.published import (
    PUBLISHED_EQUIV_BLOCK,
    PUBLISHED_PROTOCOL,
    published_model,
    published_results,
    published_value,
)
from reports.render import Cell, Grid, format_count, format_mean_sd, format_number

__all__ = [
    "ACCURACY",
    "CONSISTENCY",
    "EQUIVARIANCE",
    "EQUIVARIANCE_FIRST",
    "SUMMARY_MEASURES",
    "TASK_TITLES",
    "CellGroup",
    "Measure",
    "ResultTable",
    "config_columns",
    "data_efficiency_table",
    "equivariance_note",
    "summary_table",
]


@dataclass(frozen=True)
class Measure:
    """A metric as a table shows it: ``scale`` turns fractions into display units.

    published: the column of published_results.csv; published_fmt: how the paper printed it
    (in display units), which also says how much it was rounded; block: for an equivariance
    error, which block ("first" or "last"): only the block the paper measured on a task
    (``PUBLISHED_EQUIV_BLOCK``) is compared with its published value.
    """

    key: str
    label: str
    metric: str
    scale: float
    higher_is_better: bool
    fmt: str
    published: str | None
    published_fmt: str = ".2f"
    block: str | None = None

    @property
    def rounding(self) -> float:
        """Half the last printed digit of the published values, in display units."""
        return 0.5 * 10.0 ** -int(self.published_fmt.strip(".f"))


# Published accuracies and consistencies are fractions to 4 decimals (0.01 %), equivariance
# errors are printed to 2 decimals.
ACCURACY = Measure("acc", "Accuracy (%)", schema.TEST_ACC, 100.0, True, ".2f", "accuracy")
CONSISTENCY = Measure("consistency", "Scale consistency (%)", schema.SCALE_CONSISTENCY, 100.0,
                      True, ".2f", "scale_consistency")
EQUIVARIANCE_FIRST = Measure("equiv_err_first", "Equiv. error (first block)",
                             schema.EQUIV_ERR_FIRST, 1.0, False, ".3g", "equivariance_error",
                             block="first")
EQUIVARIANCE = Measure("equiv_err", "Equiv. error (last block)", schema.EQUIV_ERR, 1.0, False,
                       ".3g", "equivariance_error", block="last")
SUMMARY_MEASURES = (ACCURACY, CONSISTENCY, EQUIVARIANCE_FIRST, EQUIVARIANCE)

TASK_TITLES = {
    "mnist_scale": "MNIST-scale",
    "stl10_scale": "STL-10-scale",
    "mnist1d_scale": "MNIST-1D-scale",
    "data_efficiency": "MNIST-scale data efficiency",
}

_KEY_HEADERS = {"params.protocol": "Protocol", "params.n_train": "Train images",
                "params.width": "Width"}
_N_TRAIN = "params.n_train"
_PROTOCOL = "params.protocol"
_EXTRA_MEANS = {"train_img_s": schema.TRAIN_IMG_S, "eval_img_s": schema.EVAL_IMG_S,
                "train_s": schema.TRAIN_S}


@dataclass(frozen=True)
class CellGroup:
    """Columns ``<prefix>_mean/_sd/_n/_published/_delta`` of one measure in one setting."""

    prefix: str
    label: str
    measure: Measure
    setting: str


@dataclass(frozen=True)
class ResultTable:
    """A table's numbers (``frame``, written as CSV) and how to show them.

    keys: the row-key columns shown beside the model (params that tell rows of one model
    apart); caption: the params every row shares; notes: shown under the table.
    """

    name: str
    title: str
    keys: list[str]
    groups: list[CellGroup]
    frame: pd.DataFrame
    caption: str
    notes: list[str] = field(default_factory=list)

    def grid(self) -> Grid:
        """The table as cells: best mean per group bold, seeds shown, missing cells marked."""
        headers = ["Model", *(_header(k) for k in self.keys)]
        if "params" in self.frame.columns:
            headers.append("Params")
        headers.append("Seeds")
        for group in self.groups:
            headers += [group.label, "pub.", "Δ"]
        best = {g.prefix: _best(self.frame[f"{g.prefix}_mean"], g.measure) for g in self.groups}
        rows = [self._row(row, best) for _, row in self.frame.iterrows()]
        align = "l" * (1 + len(self.keys)) + "r" * (len(headers) - 1 - len(self.keys))
        return Grid(self.title, headers, rows, align, self.caption, list(self.notes))

    def run_labels(self) -> dict[str, str]:
        """Run id -> the label of the row the run is averaged into."""
        labels: dict[str, str] = {}
        for row in self.frame.itertuples():
            if isinstance(row.run_ids, str):  # published-only rows have no runs
                labels.update(dict.fromkeys(row.run_ids.split(), row.label))
        return labels

    def _row(self, row: pd.Series, best: dict[str, float]) -> list[Cell]:
        cells = [Cell(str(row["model"]))]
        cells += [Cell(_key_text(row[k])) for k in self.keys]
        if "params" in self.frame.columns:
            cells.append(Cell(format_count(row["params"]), sort=row["params"]))
        seeds = int(row["seeds"])
        cells.append(Cell(str(seeds), sort=seeds))
        for group in self.groups:
            p, fmt = group.prefix, group.measure.fmt
            mean, n = row[f"{p}_mean"], int(row[f"{p}_n"])
            text = format_mean_sd(mean, row[f"{p}_sd"], n, fmt, show_n=0 < n < seeds)
            cells += [
                Cell(text, bold=not math.isnan(mean) and mean == best[p], sort=mean),
                Cell(format_number(row[f"{p}_published"], group.measure.published_fmt),
                     sort=row[f"{p}_published"]),
                Cell(format_number(row[f"{p}_delta"], fmt, signed=True), sort=row[f"{p}_delta"]),
            ]
        return cells


def _header(key: str) -> str:
    return _KEY_HEADERS.get(key, key.removeprefix("params."))


def _key_text(value: object) -> str:
    if pd.isna(value):
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _best(means: pd.Series, measure: Measure) -> float:
    values = means.dropna()
    if values.empty:
        return math.nan
    return float(values.max() if measure.higher_is_better else values.min())


def config_columns(runs: pd.DataFrame) -> list[str]:
    """The trial params that define a configuration: every param except seeds."""
    return [c for c in runs.columns if c.startswith("params.") and "seed" not in c]


def _distinguishing(runs: pd.DataFrame, columns: list[str]) -> list[str]:
    # A param shown as a column only when one model has several values of it: params that
    # follow from the model (its optimiser, its width in a suite) would only add noise.
    if runs.empty:
        return []
    per_model = runs.groupby("model")[columns].nunique(dropna=False)
    return [c for c in columns if per_model[c].max() > 1]


def _caption(runs: pd.DataFrame, shown: list[str]) -> str:
    parts = []
    for key in _KEY_HEADERS:
        if key in runs.columns and key not in shown:
            values = sorted({_key_text(v) for v in runs[key]} - {""})
            if values:
                parts.append(f"{_header(key).lower()}: {', '.join(values)}")
    return "; ".join(parts)


def _cell(values: pd.Series, measure: Measure, prefix: str, published: float) -> dict:
    values = values.dropna() * measure.scale
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    sd = float(values.std(ddof=1)) if n >= 2 else math.nan
    shown = published * measure.scale
    return {f"{prefix}_mean": mean, f"{prefix}_sd": sd, f"{prefix}_n": n,
            f"{prefix}_published": shown, f"{prefix}_delta": mean - shown}


def _metric(part: pd.DataFrame, name: str) -> pd.Series:
    column = metric_column(name)
    return part[column] if column in part.columns else pd.Series(dtype=float)


def _compared(table: str, model: str, protocol: object) -> str | None:
    # Runs under another protocol than the published one are not compared with it.
    wanted = PUBLISHED_PROTOCOL.get(table)
    if wanted is not None and not pd.isna(protocol) and protocol != wanted:
        return None
    return published_model(table, model)


def _label(model: str, keys: dict[str, object]) -> str:
    extra = ", ".join(f"{_header(k).lower()} {_key_text(v)}" for k, v in keys.items())
    return f"{model} ({extra})" if extra else model


def _configurations(runs: pd.DataFrame, table: str, config: list[str], shown: list[str]
                    ) -> Iterator[tuple[dict, pd.DataFrame]]:
    """Each configuration's runs, with the start of its row: label, model, the shown keys,
    the published model it is compared with and its run ids."""
    for key, part in runs.groupby(["model", *config], dropna=False, sort=False):
        values = dict(zip(["model", *config], key))
        model = str(values["model"])
        yield {"label": _label(model, {k: values[k] for k in shown}), "model": model,
               **{k: values[k] for k in shown},
               "published_model": _compared(table, model, values.get(_PROTOCOL)),
               "run_ids": " ".join(part["run_id"])}, part


def _published_only(table: str, rows: list[dict], groups: list[CellGroup]) -> list[dict]:
    results = published_results()
    settings = {g.setting for g in groups}
    names = results[(results["table"] == table) & results["setting"].isin(settings)]
    covered = {row["published_model"] for row in rows}
    extra = []
    for name in dict.fromkeys(names["model"]):
        if name in covered:
            continue
        row = {"label": name, "model": name, "published_model": name, "seeds": 0}
        for group in groups:
            pub = _published_fraction(table, group, name)
            row.update(_cell(pd.Series(dtype=float), group.measure, group.prefix, pub))
        extra.append(row)
    return extra


def _published_fraction(table: str, group: CellGroup, name: str | None) -> float:
    block = group.measure.block
    if name is None or group.measure.published is None:
        return math.nan
    if block is not None and PUBLISHED_EQUIV_BLOCK.get(table) != block:
        return math.nan  # the paper measured the other block here
    return published_value(table, group.setting, name, group.measure.published)


def _frame(rows: list[dict], keys: list[str], groups: list[CellGroup], extra: list[str]):
    columns = ["label", "model", *keys, "published_model", *extra, "seeds"]
    for group in groups:
        columns += [f"{group.prefix}_{s}" for s in ("mean", "sd", "n", "published", "delta")]
    frame = pd.DataFrame(rows, columns=[*columns, "run_ids"])
    frame["seeds"] = frame["seeds"].astype(int)
    for group in groups:
        frame[f"{group.prefix}_n"] = frame[f"{group.prefix}_n"].astype(int)
    return frame.sort_values(["model", *keys], kind="stable", na_position="first").reset_index(
        drop=True)


def _largest_n_train(runs: pd.DataFrame) -> pd.DataFrame:
    # The paper's main table is at the full training size; smaller n_train are the
    # data-efficiency table's.
    if _N_TRAIN not in runs.columns or runs.empty:
        return runs
    by = runs[_PROTOCOL] if _PROTOCOL in runs.columns else pd.Series("", index=runs.index)
    largest = runs.groupby(by, dropna=False)[_N_TRAIN].transform("max")
    return runs[runs[_N_TRAIN].isna() | (runs[_N_TRAIN] == largest)]


def summary_table(finished: pd.DataFrame, task: str) -> ResultTable:
    """Model, params, accuracy, scale consistency and equivariance error for ``task``.

    finished: SuiteRuns.finished. Extra columns of the frame (not shown in the paper layout):
    label, published_model, train_img_s, eval_img_s, train_s (means) and run_ids.
    """
    runs = _largest_n_train(finished[finished["task"] == task])
    config = config_columns(runs)
    shown = _distinguishing(runs, config)
    groups = [CellGroup(m.key, m.label, m, "ideal") for m in SUMMARY_MEASURES]
    rows = []
    for row, part in _configurations(runs, task, config, shown):
        row.update({"seeds": len(part), "params": _metric(part, schema.PARAMS_COUNT).mean()})
        row.update({col: _metric(part, m).mean() for col, m in _EXTRA_MEANS.items()})
        for group in groups:
            pub = _published_fraction(task, group, row["published_model"])
            row.update(_cell(_metric(part, group.measure.metric), group.measure, group.prefix,
                             pub))
        rows.append(row)
    rows += _published_only(task, rows, groups)
    frame = _frame(rows, shown, groups, ["params", *_EXTRA_MEANS])
    return ResultTable(task, TASK_TITLES.get(task, task), shown, groups, frame,
                       _caption(runs, shown), [equivariance_note(task)])


def equivariance_note(task: str) -> str:
    """What the equivariance columns of ``task``'s table hold and which one "pub." compares."""
    ours = ("Equiv. error: the energy pooled over channels, sum_c ||a_c - b_c||^2 / "
            "sum_c ||a_c||^2, averaged over images and lower resolutions (sefl.equivariance), "
            "at the first and at the last block.")
    block = PUBLISHED_EQUIV_BLOCK.get(task)
    if block is None:
        return f"{ours} No equivariance error is published for this task."
    title = TASK_TITLES.get(task, task)
    return (f"{ours} Its pub. column is beside the {block} block: on {title} the authors "
            f"measured the {block} block.")


def _published_n_train() -> list[int]:
    results = published_results()
    settings = results.loc[results["table"] == "data_efficiency", "setting"]
    return [int(s.removeprefix("n_train=")) for s in settings.unique()]


def data_efficiency_table(finished: pd.DataFrame, task: str = "mnist_scale") -> ResultTable:
    """Accuracy at each training-set size (published 5000 / 2500 / 1000 and any we ran).

    One cell group ``acc_<n>`` per size; a row's seeds are the most seeds behind any cell.
    """
    runs = finished[finished["task"] == task]
    runs = runs[runs[_N_TRAIN].notna()] if _N_TRAIN in runs.columns else runs.iloc[0:0]
    sizes = sorted({*_published_n_train(), *(int(n) for n in runs.get(_N_TRAIN, []))},
                   reverse=True)
    groups = [CellGroup(f"acc_{n}", f"Accuracy, {n} train (%)", ACCURACY, f"n_train={n}")
              for n in sizes]
    config = [c for c in config_columns(runs) if c != _N_TRAIN]
    shown = _distinguishing(runs, config)
    table = "data_efficiency"
    rows = []
    for row, part in _configurations(runs, table, config, shown):
        for group, n in zip(groups, sizes):
            at_n = part[part[_N_TRAIN] == n]
            row.update(_cell(_metric(at_n, schema.TEST_ACC), ACCURACY, group.prefix,
                             _published_fraction(table, group, row["published_model"])))
        row["seeds"] = max(row[f"{g.prefix}_n"] for g in groups)
        rows.append(row)
    rows += _published_only(table, rows, groups)
    frame = _frame(rows, shown, groups, [])
    return ResultTable(table, TASK_TITLES[table], shown, groups, frame, _caption(runs, shown))
