"""The reproduction section: each published value against ours, like with like."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reports.render import to_markdown
from reports.reproduction import published_settings, reproduction_frame, reproduction_grid
from reports.tables import data_efficiency_table, summary_table

# conftest.RUNS train 3 epochs (published 60, STL 1000), at width 0.25 except SEFL, before the
# split sizes and the model selection were recorded: none of them is at the published settings.
CNN_DIFFERS = ("width 0.25 (published 1); epochs 3 (published 60); n_train not recorded "
               "(published 10000); select best_val (published last)")


@pytest.fixture(scope="module")
def reproduction(report_dir: Path) -> pd.DataFrame:
    return pd.read_csv(report_dir / "tables" / "reproduction.csv", keep_default_na=False)


def test_runs_at_other_settings_are_listed_with_what_differs(reproduction: pd.DataFrame) -> None:
    ran = reproduction[reproduction["verdict"] != "not run"]
    assert len(ran) == 12 and set(ran["verdict"]) == {"settings differ"}
    differs = {(r.table, r.published_model, r.metric): r.differs for r in ran.itertuples()}
    assert differs[("mnist_scale", "cnn", "Accuracy (%)")] == CNN_DIFFERS
    assert differs[("mnist_scale", "sefl", "Accuracy (%)")] == (
        "epochs 3 (published 60); n_train not recorded (published 10000); select best_val "
        "(published last)")
    assert differs[("stl10_scale", "wrn_16_8", "Accuracy (%)")].startswith(
        "width 0.25 (published 1); epochs 3 (published 1000); n_train not recorded "
        "(published 7000)")


def test_every_published_value_has_a_line(reproduction: pd.DataFrame) -> None:
    # 21 MNIST-scale values (9 accuracies, 9 consistencies, 3 errors), 27 data-efficiency
    # accuracies, 24 STL-10-scale values: all listed, the 60 without runs as "not run".
    assert len(reproduction) == 21 + 27 + 24
    assert (reproduction["verdict"] == "not run").sum() == 60


def test_markdown_section(report_dir: Path) -> None:
    text = (report_dir / "tables" / "reproduction.md").read_text()
    assert ("| mnist_scale | ideal | cnn | cnn (protocol fourier) | Accuracy (%) | 97.37 | "
            f"95.50 ± 0.71 (n=2) | -1.87 | settings differ | {CNN_DIFFERS} |") in text
    assert "yes: 0, no: 0, 1 seed: no sd: 0, settings differ: 12, not run: 60." in text
    assert "Published but not run here: mnist_scale (ideal): disco, fourier_cnn," in text


def test_published_settings_follow_the_protocol_of_each_table() -> None:
    assert published_settings("mnist_scale", "ideal", "cnn") == {
        "width": 1.0, "epochs": 60, "batch_size": 128, "n_train": 10_000,
        "protocol": "fourier", "select": "last", "batching": "auto"}
    assert published_settings("data_efficiency", "n_train=2500", "sefl")["n_train"] == 2500
    stl = published_settings("stl10_scale", "ideal", "sefl")
    assert (stl["epochs"], stl["batch_size"], stl["n_train"], stl["protocol"]) == (
        200, 16, 7000, None)
    assert published_settings("stl10_scale", "ideal", "wrn_16_8")["epochs"] == 1000


# (model, seed, width, epochs, n_train written, n_train built, select, accuracy, batching): the
# cells below, by hand.
RUNS = [
    # cnn at the published settings: 96.70 and 97.20 -> 96.95 ± 0.35, published 97.37: 0.42
    # off, more than one sd but within two: yes.
    ("cnn", 0, 1.0, None, 10_000, 10_000, "last", 0.967, "auto"),
    ("cnn", 1, 1.0, None, 10_000, 10_000, "last", 0.972, "auto"),
    # The same model at half width: settings differ.
    ("cnn", 0, 0.5, None, 10_000, 10_000, "last", 0.990, "auto"),
    # sefl at the published settings, 98.00 and 98.10 -> 98.05 ± 0.07, published 98.89: no.
    ("sefl", 0, 1.0, None, 10_000, 10_000, "last", 0.980, "auto"),
    ("sefl", 1, 1.0, None, 10_000, 10_000, "last", 0.981, "auto"),
    # One seed at the published settings (60 epochs written: the published number).
    ("si_convnet", 0, 1.0, 60, 10_000, 10_000, "last", 0.97, "auto"),
    # Best-validation weights: settings differ.
    ("dss_scalar", 0, 1.0, None, 10_000, 10_000, "best_val", 0.97, "auto"),
    ("dss_scalar", 1, 1.0, None, 10_000, 10_000, "best_val", 0.97, "auto"),
    # One resolution per training batch, where the benchmark's reading of the protocol (auto)
    # mixes them for canvas models: settings differ.
    ("ss_cnn", 0, 1.0, None, 10_000, 10_000, "last", 0.95, "one_resolution"),
    ("ss_cnn", 1, 1.0, None, 10_000, 10_000, "last", 0.95, "auto"),
    # Data efficiency: 1000 written but 142 built (a silently reduced old run); and 2500 as
    # written, 94.00 and 93.80 -> 93.90 ± 0.14 against 93.89: yes.
    ("cnn", 0, 1.0, None, 1000, 142, "last", 0.60, "auto"),
    ("cnn", 0, 1.0, None, 2500, 2500, "last", 0.940, "auto"),
    ("cnn", 1, 1.0, None, 2500, 2500, "last", 0.938, "auto"),
]


def _finished() -> pd.DataFrame:
    rows = []
    for i, (model, seed, width, epochs, n_train, built, select, acc, batching) in enumerate(RUNS):
        rows.append({
            "run_id": f"r{i}", "task": "mnist_scale", "model": model, "seed": seed,
            "params.model": model, "params.seed": seed, "params.width": width,
            "params.epochs": epochs, "params.batch_size": None, "params.n_train": n_train,
            "params.protocol": "fourier", "params.select": select, "params.batching": batching,
            "metrics.test/acc": acc, "metrics.scale/consistency": 0.6,
            "metrics.equiv/err": 0.3, "metrics.params/count": 1000.0,
            "metrics.data/n_train": float(built),
        })
    frame = pd.DataFrame(rows)
    # Unset epochs count as the protocol's, as MLflow's "None" is read back.
    frame["params.epochs"] = pd.to_numeric(frame["params.epochs"])
    return frame


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    finished = _finished()
    tables = [summary_table(finished, "mnist_scale"), data_efficiency_table(finished)]
    frame = reproduction_frame(tables, finished)
    return frame[(frame["verdict"] != "not run") & (frame["metric"] == "Accuracy (%)")]


def _line(frame: pd.DataFrame, table: str, model: str, setting: str = "ideal") -> pd.DataFrame:
    return frame[(frame["table"] == table) & (frame["model"].str.startswith(model))
                 & (frame["setting"] == setting)]


def test_only_runs_at_the_published_settings_get_a_verdict(synthetic: pd.DataFrame) -> None:
    cnn = _line(synthetic, "mnist_scale", "cnn")
    assert sorted(cnn["verdict"]) == ["settings differ", "yes"]
    ok = cnn[cnn["verdict"] == "yes"].iloc[0]
    assert (ok["mean"], ok["sd"], ok["n"], ok["published"]) == pytest.approx(
        (96.95, 0.5 ** 0.5 / 2, 2, 97.37))
    assert bool(ok["within_2sd"]) and ok["differs"] == ""
    assert cnn[cnn["verdict"] == "settings differ"].iloc[0]["differs"] == (
        "width 0.5 (published 1)")
    sefl = _line(synthetic, "mnist_scale", "sefl").iloc[0]
    assert sefl["verdict"] == "no" and not bool(sefl["within_2sd"])
    assert _line(synthetic, "mnist_scale", "si_convnet").iloc[0]["verdict"] == "1 seed: no sd"
    dss = _line(synthetic, "mnist_scale", "dss_scalar").iloc[0]
    assert (dss["verdict"], dss["differs"]) == (
        "settings differ", "select best_val (published last)")
    ss_cnn = _line(synthetic, "mnist_scale", "ss_cnn")
    assert sorted(zip(ss_cnn["verdict"], ss_cnn["differs"])) == [
        ("1 seed: no sd", ""), ("settings differ", "batching one_resolution (published auto)")]


def test_data_efficiency_compares_the_n_train_that_was_built(synthetic: pd.DataFrame) -> None:
    reduced = _line(synthetic, "data_efficiency", "cnn", "n_train=1000").iloc[0]
    assert (reduced["verdict"], reduced["differs"]) == (
        "settings differ", "n_train 142 (published 1000)")
    written = _line(synthetic, "data_efficiency", "cnn", "n_train=2500").iloc[0]
    assert (written["verdict"], written["n"]) == ("yes", 2)
    assert written["mean"] == pytest.approx(93.9)


def test_grid_shows_what_differs(synthetic: pd.DataFrame) -> None:
    text = to_markdown(reproduction_grid(synthetic))
    assert "| Within 2 sd | Settings that differ |" in text
    assert "| settings differ | width 0.5 (published 1) |" in text
    assert "yes: 2, no: 1, 1 seed: no sd: 2, settings differ: 4, not run: 0." in text
