"""``python -m reports.features``: feature maps across resolutions, the picture of
scale-equivariance.

One test image at the top resolution and its ideal down-scaled copies at every test resolution
of the task; each model's feature map at one block (one channel or the channel mean) for each;
written as a PNG grid (rows = resolutions, columns = input then each model; beside each feature
panel that resolution's equivariance error e(x, r) from ``sefl.equivariance``) and a GIF that
cycles through the resolutions. The errors are printed as a table too. Models come freshly
initialised with a fixed seed (``--models``) or trained, from an MLflow run's ``model.pt``
(``--run-id``). 1D tasks give line plots. Unknown models, runs, blocks, channels or images:
one message, exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from torch import Tensor, nn

from reports.feature_maps import Channel, ChoiceError, FeatureMaps, feature_maps
from reports.feature_models import FeatureInputError, LoadedModel, model_at_init, model_from_run
from reports.feature_plots import render_grid, write_animation, write_grid

__all__ = ["DEFAULT_MODELS", "FeatureFigures", "draw_features", "error_table", "figure_stem",
           "load_models", "main", "task_image"]

# A SEFL model and the plain CNN it is contrasted with, per task.
DEFAULT_MODELS = {"mnist_scale": ("sefl", "cnn"), "mnist1d_scale": ("sefl", "cnn1d"),
                  "stl10_scale": ("sefl", "wrn_16_8")}
DEFAULT_OUT = Path("reports") / "out" / "features"


@dataclass(frozen=True)
class FeatureFigures:
    """The maps drawn and the files written."""

    maps: FeatureMaps
    png: Path
    gif: Path


def task_image(task, index: int) -> Tensor:
    """Test image ``index`` of ``task.equivariance_images`` (the harness's fixed, seeded order):
    ``[C, N, N]`` (1D ``[C, N]``) at the top resolution N."""
    size = len(task.splits["test"])
    if not 0 <= index < size:
        raise FeatureInputError(f"--image-index {index}: the test split of {task.name} has "
                                f"images 0..{size - 1}")
    return task.equivariance_images(index + 1, seed=0)[index]


def figure_stem(task: str, image_index: int, block: int, channel: Channel) -> str:
    """The files' name without suffix: ``<task>_image<K>_block<I>_<mean|channel<C>>``."""
    shown = "mean" if channel == "mean" else f"channel{channel}"
    return f"{task}_image{image_index}_block{block}_{shown}"


def draw_features(models: Mapping[str, nn.Module], image: Tensor, resolutions: Sequence[int],
                  out_dir: Path, stem: str, block: int = 1,
                  channel: Channel = "mean") -> FeatureFigures:
    """Compute the maps (``reports.feature_maps.feature_maps``) and write ``<stem>.png`` and
    ``<stem>.gif`` under ``out_dir``.

    models: label -> model in eval mode; image: ``[C, N, N]`` or ``[C, N]``.
    """
    maps = feature_maps(models, image, resolutions, block, channel)
    out_dir.mkdir(parents=True, exist_ok=True)
    pixels = render_grid(maps)
    png = write_grid(pixels, out_dir / f"{stem}.png")
    gif = write_animation(pixels, maps, out_dir / f"{stem}.gif")
    return FeatureFigures(maps, png, gif)


def error_table(maps: FeatureMaps) -> str:
    """e(x, r) per lower resolution (rows) and model (columns), as printed by the CLI; "-"
    where the block was left out (its map under 3 points per axis)."""
    labels = [c.label for c in maps.columns]
    width = max(12, *(len(label) for label in labels))
    lines = ["resolution" + "".join(f"  {label:>{width}}" for label in labels)]
    for r in maps.resolutions[1:]:
        lines.append(f"{r:>10}" + "".join(
            f"  {c.errors[r]:>{width}.4e}" if r in c.errors else f"  {'-':>{width}}"
            for c in maps.columns))
    means = [sum(c.errors.values()) / len(c.errors) if c.errors else math.nan
             for c in maps.columns]
    lines.append(f"{'mean':>10}" + "".join(f"  {m:>{width}.4e}" for m in means))
    return "\n".join(lines)


def load_models(task: str, names: Sequence[str], run_ids: Sequence[str], tracking_uri: str,
                width: float = 1.0, seed: int = 0) -> list[LoadedModel]:
    """The columns: each run of ``run_ids`` (trained) takes the place of its model's name in
    ``names``; the other names are fresh models; runs whose model is not named come last.

    Raises FeatureInputError for unknown models or runs, a run of another task, or a column
    given twice.
    """
    runs = [model_from_run(run_id, tracking_uri) for run_id in run_ids]
    for run_id, run in zip(run_ids, runs):
        if run.trial["task"] != task:
            raise FeatureInputError(f"--run-id {run_id}: a {run.trial['task']} run; --task is "
                                    f"{task}")
    columns: list[LoadedModel] = []
    for name in names:
        trained = [run for run in runs if run.trial["model"] == name]
        columns += trained or [model_at_init(name, task, width, seed)]
    columns += [run for run in runs if run.trial["model"] not in names]
    labels = [column.label for column in columns]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise FeatureInputError(f"--models/--run-id: {', '.join(twice)} given twice")
    return columns


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other bad input (no usage block).
        self.exit(2, f"error: {message} (see --help)\n")


def _channel(text: str) -> Channel:
    if text == "mean":
        return "mean"
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a channel number >= 0 or 'mean', got {text!r}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m reports.features",
        description="Draw one test image at every test resolution next to the feature maps "
                    "models make of it (PNG grid and GIF), with the equivariance error of each "
                    "resolution.",
        epilog="example: python -m reports.features --task mnist_scale --models sefl,cnn "
               "--block 1 --out reports/out/features",
    )
    models = parser.add_argument_group("task and models")
    models.add_argument("--task", required=True, help="task name, e.g. mnist_scale or "
                        "mnist1d_scale (its test images and resolutions)")
    models.add_argument("--models", default=None,
                        help="comma-separated zoo names, freshly initialised (default: "
                             "sefl and the task's plain CNN, unless --run-id is given)")
    models.add_argument("--run-id", action="extend", nargs="+", default=[],
                        help="MLflow trial run(s) whose trained weights (model.pt) to use")
    models.add_argument("--width", type=float, default=1.0,
                        help="width multiplier of the fresh models (default 1)")
    models.add_argument("--seed", type=int, default=0, help="init seed of the fresh models")
    picture = parser.add_argument_group("picture")
    picture.add_argument("--image-index", type=int, default=0,
                         help="which test image (the harness's equivariance order; default 0)")
    picture.add_argument("--block", type=int, default=1, help="block, from 1 (default 1)")
    picture.add_argument("--channel", type=_channel, default="mean",
                         help="channel number, or 'mean' over channels (default)")
    sources = parser.add_argument_group("data and tracking")
    sources.add_argument("--data-dir", default=None,
                         help="data folder (default: $SEFL_DATA_DIR, else ./data)")
    sources.add_argument("--tracking-uri", default=None,
                         help="MLflow store of --run-id (default: $MLFLOW_TRACKING_URI, else "
                              "sqlite:///mlflow.db)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default {DEFAULT_OUT})")
    return parser


def _run(args: argparse.Namespace) -> FeatureFigures:
    from benchmark.tasks import get_task, list_tasks
    from benchmark.tracking import DEFAULT_TRACKING_URI

    if args.task not in list_tasks():
        raise FeatureInputError(f"--task {args.task}: unknown; tasks: {', '.join(list_tasks())}")
    if args.width <= 0:
        raise FeatureInputError(f"--width {args.width}: must be > 0")
    if args.models is not None:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
    else:
        names = [] if args.run_id else list(DEFAULT_MODELS[args.task])
    if not names and not args.run_id:
        raise FeatureInputError("--models: give at least one model name or --run-id")
    tracking_uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI",
                                                       DEFAULT_TRACKING_URI)
    columns = load_models(args.task, names, args.run_id, tracking_uri, args.width, args.seed)
    # The tasks warn when missing data reduced their split sizes; one test image is all this
    # picture takes, so that warning would only bury the table.
    tasks_log = logging.getLogger("benchmark.tasks")
    level = tasks_log.level
    tasks_log.setLevel(logging.ERROR)
    try:
        task = get_task(args.task, args.data_dir)
    except ValueError as err:
        raise FeatureInputError(f"--task {args.task}: {err}") from err
    finally:
        tasks_log.setLevel(level)
    image = task_image(task, args.image_index)
    stem = figure_stem(args.task, args.image_index, args.block, args.channel)
    models = {column.label: column.model for column in columns}
    try:
        return draw_features(models, image, task.resolutions, args.out, stem, args.block,
                             args.channel)
    except ChoiceError as err:
        raise FeatureInputError(f"--{err}") from err


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 done, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        figures = _run(args)
    except FeatureInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    maps = figures.maps
    block = maps.columns[0].block
    print(f"equivariance error e(x, r) at block {block} of test image {args.image_index} of "
          f"{args.task} (sefl.equivariance, ideal down-scaling from {maps.top}):")
    print(error_table(maps))
    print(f"wrote {figures.png} and {figures.gif}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
