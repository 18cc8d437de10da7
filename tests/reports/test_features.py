"""Feature maps across resolutions: the maps, the PNG grid and GIF, the printed errors (against
``sefl.equivariance``), trained weights from MLflow runs, the leaderboard embedding, and the
bad inputs (exit 2, one message).

MNIST-scale is built from small files in the real IDX format (smooth blobs), so the tests do
not depend on the real data; MNIST-1D is generated locally.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.tasks import get_task
from benchmark.tasks.mnist_source import write_mnist_split
from benchmark.tracking import Tracker
from benchmark.trial import normalize_trial
from benchmark.zoo import create_model
from reports.feature_maps import feature_maps
from reports.feature_plots import LAYOUTS
from reports.features import main
from reports.generate import build_report
from sefl.canvas import crop_footprint, pad_to_canvas
from sefl.equivariance import downscale, equivariance_error

WIDTH = 0.25
SUITE = "features"
# Runs of the store: (task, model, seed, test accuracy, seed of the saved weights or None).
RUNS = [("mnist_scale", "sefl", 0, 0.90, 4), ("mnist_scale", "sefl", 1, 0.95, 6),
        ("mnist_scale", "cnn", 0, 0.80, 5), ("mnist1d_scale", "sefl", 0, 0.70, None)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    rng = np.random.default_rng(0)
    blobs = np.zeros((210, 28, 28))
    yy, xx = np.mgrid[:28, :28]
    for image, (cy, cx, s) in zip(blobs, rng.uniform((8, 8, 2), (20, 20, 5), (210, 3))):
        image += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    folder = tmp_path_factory.mktemp("data")
    write_mnist_split(folder / "mnist", "test", 255 * blobs, rng.integers(0, 10, 210))
    return str(folder)


def _weights(task: str, model: str, seed: int) -> dict:
    torch.manual_seed(seed)
    return create_model(model, task, width=WIDTH).state_dict()


def _record(tracker: Tracker, parent: str, folder: Path, run: tuple) -> str:
    task, model, seed, acc, weights_seed = run
    trial = normalize_trial({"task": task, "model": model, "seed": seed, "width": WIDTH})
    run_id = tracker.start_trial(parent, trial, f"{task}/{model}/{seed}")
    metrics = {"test/acc": acc, "params/count": 1.0, "scale/consistency": 0.5, "equiv/err": 0.1}
    if weights_seed is None:  # a run recorded before weights were saved
        for name, value in metrics.items():
            tracker.client.log_metric(run_id, name, value)
        tracker.client.set_terminated(run_id, "FINISHED")
        return run_id
    folder.mkdir()
    torch.save(_weights(task, model, weights_seed), folder / "model.pt")
    (folder / "result.json").write_text(json.dumps({
        "trial": trial, "metrics": metrics, "info": {"epochs_trained": 1, "device": "test"},
        "per_resolution": [{"resolution": 28, "n_test": 1, "test_acc": acc}]}))
    tracker.finish_trial(run_id, f"{task}/{model}/{seed}", folder)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, list[str]]:
    """An MLflow store written like the harness writes it: (uri, run id per RUNS entry)."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracker = Tracker(uri, SUITE, "0.1.0")
    tracker.client.create_experiment(f"sefl-bench/{SUITE}", str(root / "artifacts"))
    parent = tracker.start_parent("test")
    run_ids = [_record(tracker, parent, root / f"run{i}", run) for i, run in enumerate(RUNS)]
    tracker.end_parent(parent, "FINISHED", {})
    return uri, run_ids


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as stop:  # argparse's errors
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _printed_errors(out: str) -> dict[str, dict[int, float]]:
    """The CLI's table -> {column label: {resolution: error}} ("-": left out, no entry)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("resolution"))
    labels = [label.strip() for label in lines[start][len("resolution"):].split("  ")
              if label.strip()]
    table: dict[str, dict[int, float]] = {label: {} for label in labels}
    for line in lines[start + 1:]:
        first, *values = line.split()
        if first == "mean":
            break
        for label, value in zip(labels, values):
            if value != "-":
                table[label][int(first)] = float(value)
    return table


def _expected_errors(task, model: torch.nn.Module, image_index: int,
                     block: int) -> dict[int, float]:
    image = task.equivariance_images(image_index + 1)[image_index:image_index + 1]
    return equivariance_error(model.eval(), image, task.resolutions).per_block_resolution[block - 1]


def _fresh(task: str, name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, task, width=WIDTH).eval()


@pytest.mark.parametrize(("task_name", "models", "block", "channel"), [
    ("mnist_scale", ["sefl", "cnn"], 1, "mean"),
    ("mnist_scale", ["cnn"], 2, "5"),
    ("mnist1d_scale", ["sefl", "cnn1d"], 2, "mean"),
])
def test_grid_animation_and_printed_errors(capsys, tmp_path, data_dir, task_name, models, block,
                                           channel):
    code, out, _ = _cli(capsys, "--task", task_name, "--models", ",".join(models), "--width",
                        str(WIDTH), "--image-index", "3", "--block", str(block), "--channel",
                        channel, "--data-dir", data_dir, "--out", str(tmp_path))
    assert code == 0
    task = get_task(task_name, data_dir)
    printed = _printed_errors(out)
    assert list(printed) == [f"{name} (init)" for name in models]
    for name in models:
        expected = _expected_errors(task, _fresh(task_name, name), 3, block)
        assert sorted(printed[f"{name} (init)"]) == sorted(expected)
        for r, value in expected.items():
            assert printed[f"{name} (init)"][r] == pytest.approx(value, rel=1e-3, abs=1e-30)

    layout, rows, cols = LAYOUTS[task.ndim], len(task.resolutions), 1 + len(models)
    stem = f"{task_name}_image3_block{block}_{'mean' if channel == 'mean' else 'channel5'}"
    grid = np.asarray(Image.open(tmp_path / f"{stem}.png").convert("RGB"))
    assert grid.shape[1::-1] == layout.size(rows, cols)
    for row in range(rows):
        for col in range(cols):
            x0, y0, x1, y1 = layout.panel_box(row, col)
            assert (grid[y0:y1, x0:x1] != 255).any(), (row, col)  # a panel is drawn there
            # The error is written beside each feature panel, nothing beside the input (2 px
            # margins: the 1D panels' frames are drawn on their edges).
            note = grid[y0:y1, x1 + 2:x1 + layout.note - 2]
            assert (note != 255).any() == (col > 0), (row, col)
    with Image.open(tmp_path / f"{stem}.gif") as gif:
        assert gif.n_frames == rows
        assert gif.size == layout.size(1, cols)
        assert gif.info["loop"] == 0


@pytest.mark.parametrize("r", [9, 14, 28])
def test_maps_are_the_compared_maps(r):
    # sefl sees the image at its own size; cnn sees it on the 28 canvas, and shows its footprint.
    image = torch.randn(1, 28, 28)
    sefl, cnn = _fresh("mnist_scale", "sefl"), _fresh("mnist_scale", "cnn")
    maps = feature_maps({"sefl": sefl, "cnn": cnn}, image, [8, r, 28], block=2, channel=3)
    x = image[None] if r == 28 else downscale(image[None], r)
    with torch.no_grad():
        expected_sefl = sefl.features(x)[1][0, 3]
        expected_cnn = crop_footprint(cnn.features(pad_to_canvas(x, 28))[1], r, 28)[0, 3]
    assert maps.resolutions == sorted({8, r, 28}, reverse=True)
    torch.testing.assert_close(maps.inputs[r], x[0, 0])
    torch.testing.assert_close(maps.columns[0].maps[r], expected_sefl)
    torch.testing.assert_close(maps.columns[1].maps[r], expected_cnn)
    # The centred footprint of 7 r / 28 points (2.25, 3.5, 7) on the 7x7 map: odd sizes only.
    assert maps.columns[1].maps[r].shape == ({9: 3, 14: 3, 28: 7}[r],) * 2


def test_run_weights_replace_the_fresh_model(capsys, tmp_path, data_dir, store):
    uri, run_ids = store
    code, out, _ = _cli(capsys, "--task", "mnist_scale", "--models", "sefl,cnn", "--run-id",
                        run_ids[2], "--width", str(WIDTH), "--tracking-uri", uri,
                        "--data-dir", data_dir, "--out", str(tmp_path))
    assert code == 0
    printed = _printed_errors(out)
    label = f"cnn (run {run_ids[2][:8]})"
    assert list(printed) == ["sefl (init)", label]
    task = get_task("mnist_scale", data_dir)
    trained = _expected_errors(task, _fresh("mnist_scale", "cnn", seed=5), 0, 1)
    at_init = _expected_errors(task, _fresh("mnist_scale", "cnn", seed=0), 0, 1)
    assert printed[label] == pytest.approx(trained, rel=1e-3)
    assert printed[label] != pytest.approx(at_init, rel=1e-3)


def test_leaderboard_embeds_best_runs(tmp_path, data_dir, store):
    uri, run_ids = store
    build_report(SUITE, uri, tmp_path, "http://127.0.0.1:5000", data_dir)
    page = (tmp_path / "index.html").read_text()
    section = page[page.index("<h2>Feature maps across resolutions</h2>"):]
    # Best SEFL run: seed 1 (95 %), not seed 0; best baseline: cnn.
    assert (f"MNIST-scale: sefl (run {run_ids[1][:8]}) vs cnn (run {run_ids[2][:8]})"
            in section)
    assert run_ids[0][:8] not in section
    assert section.count("data:image/gif;base64,") == 1
    assert section.count("data:image/png;base64,") == 1
    assert (f"MNIST-1D-scale: run mnist1d_scale/sefl/s0 ({run_ids[3][:8]}) recorded no weights "
            "(model.pt), so it is not drawn") in section
    png = tmp_path / "plots" / "features_mnist_scale_image0_block1_mean.png"
    with Image.open(png) as grid:
        assert grid.size == LAYOUTS[2].size(21, 3)
    assert f"(plots/{png.name})" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize(("argv", "message"), [
    (["--task", "nope"],
     "error: --task nope: unknown; tasks: mnist1d_scale, mnist_scale, stl10_scale\n"),
    (["--task", "mnist_scale", "--models", "nope"],
     "error: --models nope: no such model for task mnist_scale; models: cnn, "),
    (["--task", "mnist1d_scale", "--models", "cnn"],
     "error: --models cnn: no such model for task mnist1d_scale; models: cnn1d, "),
    (["--task", "mnist_scale", "--models", "cnn", "--block", "4"],
     "error: --block 4: model cnn (init) has blocks 1..3\n"),
    (["--task", "mnist_scale", "--models", "sefl", "--block", "0"],
     "error: --block 0: model sefl (init) has blocks 1..4\n"),
    (["--task", "mnist_scale", "--models", "cnn", "--channel", "99"],
     "error: --channel 99: block 1 of model cnn (init) has channels 0..7 (or 'mean')\n"),
    (["--task", "mnist_scale", "--channel", "x"],
     ("error: argument --channel: expected a channel number >= 0 or 'mean', got 'x' "
      "(see --help)\n")),
    (["--task", "mnist_scale", "--models", "cnn", "--image-index", "100000"],
     "error: --image-index 100000: the test split of mnist_scale has images 0..149\n"),
    (["--task", "mnist_scale", "--run-id", "0123abcd"], "error: --run-id 0123abcd: no such run "),
    (["--task", "mnist_scale", "--run-id", "RUN3"],
     ("error: --run-id RUN3: the run did not record its weights (artifacts model.pt and "
      "trial.json)\n")),
    (["--task", "mnist1d_scale", "--run-id", "RUN2"],
     "error: --run-id RUN2: a mnist_scale run; --task is mnist1d_scale\n"),
    (["--task", "mnist_scale", "--models", "cnn,cnn"],
     "error: --models/--run-id: cnn (init) given twice\n"),
])
def test_bad_input_exits_2_with_one_message(capsys, tmp_path, data_dir, store, argv, message):
    uri, run_ids = store
    argv = [arg.replace("RUN3", run_ids[3]).replace("RUN2", run_ids[2]) for arg in argv]
    message = message.replace("RUN3", run_ids[3]).replace("RUN2", run_ids[2])
    out = tmp_path / "out"
    code, stdout, stderr = _cli(capsys, *argv, "--width", str(WIDTH), "--data-dir", data_dir,
                                "--tracking-uri", uri, "--out", str(out))
    assert code == 2
    assert stderr.startswith(message) and stderr.count("\n") == 1
    assert stdout == ""
    assert not out.exists()


def test_missing_store_is_not_created(capsys, tmp_path):
    store = tmp_path / "absent.db"
    code, _, stderr = _cli(capsys, "--task", "mnist_scale", "--run-id", "0123abcd",
                           "--tracking-uri", f"sqlite:///{store}")
    assert code == 2
    assert stderr == (f"error: --tracking-uri sqlite:///{store}: no MLflow store there; point "
                      "--tracking-uri at the store the runs were recorded in\n")
    assert not store.exists()


def test_module_entry_point_exit_code(tmp_path):
    done = subprocess.run([sys.executable, "-m", "reports.features", "--task", "mnist_scale",
                           "--models", "nope"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --models nope: no such model for task mnist_scale")
    assert done.stderr.count("\n") == 1 and done.stdout == ""
