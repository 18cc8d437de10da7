"""Train and evaluate one trial; knows nothing of Ray or MLflow (DESIGN.md "Trial").

``run_trial(trial)`` builds the task and the model from a trial dict, trains with the trial's
optimiser and schedule (the published protocol's where the trial leaves them unset), validates
every epoch, then measures the selected weights (the trial's ``select``: "last", those after the
final epoch as the SEFL authors' code does, or "best_val", those of the best validation
accuracy, as SESN's code does)
on the test split: accuracy
overall and per resolution, the equivariance error per block and per resolution (ideal
down-scaling, and bicubic as a second column) on a fixed subset of test images, scale
consistency, the parameter count, training time (``time/train_s``: the epochs, validation
included), the time of this final evaluation (``time/eval_s``), throughput and the split sizes
built (``data/n_train``, ``data/n_val``, ``data/n_test``).

Training batches (trial field ``batching``, default "auto"): a "native" model's hold one
resolution each (its inputs differ in size); a "canvas" model's are drawn from every resolution
at once, as the baselines were published (SESN's MNIST-scale: each 28 x 28 image at its own
scale). One resolution per batch gives batch norm single-scale statistics that do not match
testing and cost the CNN 5 to 15 points at n_train 1000-5000 (measured; README "Tasks");
``batching = "one_resolution"`` trains a canvas model that way all the same, and "mixed" on a
native model is refused. Validation and test batches hold one resolution each, for the
per-resolution accuracy.

Per-epoch metrics leave through ``on_epoch(metrics, state)``; ``state`` is everything needed to
continue (``save_state``/``load_state`` write and read it), and ``run_trial(..., resume=state)``
continues where it stopped, giving the same weights as an uninterrupted run. A NaN or infinite
loss raises ``FloatingPointError``.

Epochs are counted from 1 (the metrics of epoch e are logged at step e); blocks likewise
(``equiv/err/block_1`` is the first block). ``equiv/err`` is the last block's error (the
headline), ``equiv/err/first`` the first block's; ``/res_<r>`` and ``/first/res_<r>`` per
resolution, the same under ``equiv/err_bicubic``. A block whose map at a resolution is under 3
points per axis is left out there (``sefl.equivariance``); ``info["equiv_measured_resolutions"]``
(trial.json) lists each block's resolutions, and a block measured nowhere logs no metric.
"""

from __future__ import annotations

import copy
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.trial import normalize_trial
from sefl.equivariance import EquivarianceError, equivariance_error, scale_consistency

__all__ = [
    "EpochCallback",
    "TrainingPlan",
    "TrialResult",
    "build_model",
    "build_task",
    "describe_device",
    "load_state",
    "protocol_defaults",
    "resolve_plan",
    "run_trial",
    "save_state",
]

EpochCallback = Callable[[dict[str, float], dict[str, Any]], None]

EQUIV_CHUNK = 64  # images per equivariance batch: bounds memory, the mean is unchanged

_OWN_LOSS = {"optimizer": "adamw", "lr": 1e-2, "weight_decay": 3e-2, "momentum": 0.9,
             "schedule": "step", "step_size": 20, "milestones": [20, 40], "gamma": 0.1,
             "epochs": 60, "batch_size": 128}
_CROSS_ENTROPY = {"optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0, "momentum": 0.9,
                  "schedule": "multistep", "step_size": 20, "milestones": [20, 40],
                  "gamma": 0.1, "epochs": 60, "batch_size": 128}
# (task, model has its own loss) -> the published protocol (specs/sefl-method.md section 4,
# specs/baselines.md sections 0.2 and 0.3). The 1D task has no published protocol: it follows
# MNIST-scale.
_PROTOCOLS: dict[tuple[str, bool], dict[str, Any]] = {
    ("mnist_scale", True): _OWN_LOSS,
    ("mnist_scale", False): _CROSS_ENTROPY,
    ("mnist1d_scale", True): _OWN_LOSS,
    ("mnist1d_scale", False): _CROSS_ENTROPY,
    ("stl10_scale", True): {**_OWN_LOSS, "weight_decay": 1e-2, "step_size": 100, "epochs": 200,
                            "batch_size": 16},
    ("stl10_scale", False): {"optimizer": "sgd", "lr": 0.1, "weight_decay": 5e-4,
                             "momentum": 0.9, "schedule": "multistep", "step_size": 300,
                             "milestones": [300, 400, 600, 800], "gamma": 0.2,
                             "epochs": 1000, "batch_size": 128},
}


@dataclass(frozen=True)
class TrainingPlan:
    """The optimiser and schedule a trial trains with, every default resolved.

    ``sgd`` uses Nesterov momentum (as the STL-10 baselines were published); ``step`` multiplies
    the learning rate by ``gamma`` every ``step_size`` epochs, ``multistep`` at ``milestones``.
    """

    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float
    momentum: float
    schedule: str
    step_size: int
    milestones: list[int]
    gamma: float


@dataclass
class TrialResult:
    """What one trial produced.

    metrics: the final metrics, named as in the MLflow schema (``test/acc``, ...);
    per_resolution: one row per test resolution (resolution, n_test, test_acc, equiv_err,
    equiv_err_bicubic of the last block, equiv_err_first, equiv_err_first_bicubic of the first;
    an error is None at the top resolution and where its block was left out);
    history: the per-epoch metrics; info: the resolved plan, the selection and the epoch it
    tested, best epoch, task metadata, device; state_dict: the tested weights (on the CPU).
    """

    metrics: dict[str, float]
    per_resolution: list[dict[str, Any]]
    history: list[dict[str, float]]
    info: dict[str, Any]
    state_dict: dict[str, Tensor] = field(repr=False)


def protocol_defaults(task: str, own_loss: bool) -> dict[str, Any]:
    """The published protocol's training settings for ``task`` (see ``_PROTOCOLS``)."""
    if (task, own_loss) not in _PROTOCOLS:
        raise ValueError(f"no training protocol for task {task!r}; tasks: "
                         f"{', '.join(sorted({t for t, _ in _PROTOCOLS}))}")
    return copy.deepcopy(_PROTOCOLS[(task, own_loss)])


def resolve_plan(trial: Mapping[str, Any], own_loss: bool) -> TrainingPlan:
    """The trial's settings, its unset ones (None or "auto") from the published protocol of its
    task for models with their own loss (SEFL) or trained with cross-entropy (baselines)."""
    plan = protocol_defaults(trial["task"], own_loss)
    plan.update({k: trial[k] for k in plan if trial.get(k) not in (None, "auto")})
    return TrainingPlan(**plan)


def build_task(trial: Mapping[str, Any], data_dir: str | None = None,
               cache_dir: str | None = None, download: bool = False):
    """The trial's task: ``get_task`` with its protocol, seed, split sizes and task options;
    cache_dir: where built tasks are cached (None: the tasks' default, beside the data);
    ``download`` fetches missing data first (where the task can)."""
    from benchmark.tasks import get_task

    options = {k: trial[k] for k in ("protocol", "n_train", "n_val", "n_test")
               if trial[k] is not None}
    if download:
        options["download"] = True
    return get_task(trial["task"], data_dir=data_dir, cache_dir=cache_dir, seed=trial["seed"],
                    **options, **trial["task_options"])


def build_model(trial: Mapping[str, Any]) -> nn.Module:
    """The trial's model from the zoo (or ``module:factory``), initialised from its seed."""
    from benchmark.zoo import create_model

    torch.manual_seed(trial["seed"])
    model = create_model(trial["model"], trial["task"], width=trial["width"],
                         **trial["model_options"])
    if not callable(getattr(model, "features", None)):
        raise TypeError(f"model {trial['model']!r} has no features(x) method; the model "
                         "protocol (DESIGN.md) needs it for the equivariance error")
    return model


def describe_device(device: torch.device) -> str:
    """A one-line description of the hardware a trial ran on."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    return f"{_cpu_name()}, {torch.get_num_threads()} threads of {os.cpu_count()} cores"


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def save_state(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write a training state (from ``on_epoch``) to ``path``."""
    torch.save(dict(state), path)


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training state written by ``save_state`` (tensors and plain values only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _count_parameters(model: nn.Module) -> int:
    # A complex parameter holds two real numbers; count real degrees of freedom.
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters()
               if p.requires_grad)


def _optimizer(model: nn.Module, plan: TrainingPlan) -> torch.optim.Optimizer:
    # SEFL models decay their per-resolution norms by (r / top)^2 and not their spectral weights
    # (those are regularised in the loss): they hand over their own parameter groups.
    if callable(getattr(model, "param_groups", None)):
        params: Iterable = model.param_groups(plan.weight_decay)
    else:
        params = [p for p in model.parameters() if p.requires_grad]
    if plan.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=plan.lr, weight_decay=plan.weight_decay)
    if plan.optimizer == "adam":
        return torch.optim.Adam(params, lr=plan.lr, weight_decay=plan.weight_decay)
    if plan.optimizer == "sgd":
        return torch.optim.SGD(params, lr=plan.lr, weight_decay=plan.weight_decay,
                               momentum=plan.momentum, nesterov=plan.momentum > 0)
    raise ValueError(f"optimizer {plan.optimizer!r}: expected adam, adamw or sgd")


def _scheduler(optimizer: torch.optim.Optimizer, plan: TrainingPlan):
    if plan.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, plan.step_size, plan.gamma)
    if plan.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, plan.milestones, plan.gamma)
    if plan.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ValueError(f"schedule {plan.schedule!r}: expected step, multistep or constant")


def _loss_and_logits(model: nn.Module, x: Tensor, y: Tensor,
                     weight_decay: float) -> tuple[Tensor, Tensor]:
    """The training loss and the logits of the prediction (for the training accuracy).

    Models with a ``loss(x, y, weight_decay)`` method (SEFL: cross-entropy summed over levels,
    monotone penalty, regulariser) train with it; its per-level logits are caught on their way
    out of ``forward_levels`` so the training accuracy costs no second forward pass.
    """
    if not callable(getattr(model, "loss", None)):
        logits = model(x)
        return F.cross_entropy(logits, y), logits
    levels: list[Tensor] = []
    forward_levels = model.forward_levels

    def recording(inputs: Tensor) -> Tensor:
        levels.append(forward_levels(inputs))
        return levels[-1]

    model.forward_levels = recording
    try:
        loss = model.loss(x, y, weight_decay)
    finally:
        del model.forward_levels
    # The prediction is the top level: [B, n_levels, classes] -> [B, classes].
    return loss, levels[-1][:, -1].detach()


def _to_device(device: torch.device, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Batches to ``device``; to a GPU through pinned memory, the copy not blocking the host."""
    if device.type != "cuda":
        return tensors
    return tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)


@torch.no_grad()
def _correct_per_resolution(model: nn.Module, batches: Iterable,
                            device: torch.device) -> tuple[dict[int, list[int]], int]:
    """{resolution: [correct, total]} over ``batches`` and the number of images."""
    model.eval()
    counts: dict[int, list[int]] = {}
    for x, y, r in batches:
        (x,) = _to_device(device, x)
        pred = model(x).argmax(-1).cpu()
        entry = counts.setdefault(int(r), [0, 0])
        entry[0] += int((pred == y).sum())
        entry[1] += int(y.numel())
    return counts, sum(total for _, total in counts.values())


def _accuracy(counts: Mapping[int, list[int]]) -> float:
    total = sum(t for _, t in counts.values())
    if total == 0:
        raise ValueError("the evaluation split has no images")
    return sum(c for c, _ in counts.values()) / total


@torch.no_grad()
def _equivariance(model: nn.Module, images: Tensor, resolutions: list[int],
                  device: torch.device) -> tuple[dict[str, EquivarianceError], float]:
    """Equivariance errors (ideal, bicubic) and scale consistency on ``images``, in chunks."""
    model.eval()
    chunks = [c.to(device) for c in images.split(EQUIV_CHUNK)]
    weights = [len(c) / len(images) for c in chunks]
    errors = {}
    for mode in ("ideal", "bicubic"):
        parts = [equivariance_error(model, c, resolutions, mode) for c in chunks]
        table = [
            {r: sum(w * p.per_block_resolution[i][r] for w, p in zip(weights, parts))
             for r in parts[0].per_block_resolution[i]}
            for i in range(len(parts[0].per_block_resolution))
        ]
        errors[mode] = EquivarianceError(per_block_resolution=table, mode=mode)
    consistency = sum(w * scale_consistency(model, c, resolutions) for w, c in zip(weights, chunks))
    return errors, consistency


def _equivariance_metrics(name: str, err: EquivarianceError) -> dict[str, float]:
    """``name`` (last block), ``name/first``, ``name/block_<i>``, ``name/res_<r>`` (last
    block) and ``name/first/res_<r>``. A block measured at no resolution has none of its names
    (trial.json's ``equiv_measured_resolutions`` says where each block was measured)."""
    metrics = {name: err.error, f"{name}/first": err.first_error}
    metrics.update({f"{name}/block_{i + 1}": e for i, e in enumerate(err.per_block)})
    metrics.update({f"{name}/res_{r}": e for r, e in sorted(err.per_resolution.items())})
    metrics.update({f"{name}/first/res_{r}": e
                    for r, e in sorted(err.first_per_resolution.items())})
    return {k: v for k, v in metrics.items() if not math.isnan(v)}


def _final_metrics(counts: Mapping[int, list[int]], errors: Mapping[str, EquivarianceError],
                   consistency: float) -> dict[str, float]:
    metrics = {"test/acc": _accuracy(counts)}
    metrics.update({f"test/acc/res_{r}": c / t for r, (c, t) in sorted(counts.items())})
    metrics.update(_equivariance_metrics("equiv/err", errors["ideal"]))
    metrics.update(_equivariance_metrics("equiv/err_bicubic", errors["bicubic"]))
    metrics["scale/consistency"] = consistency
    return metrics


def _measured_resolutions(err: EquivarianceError) -> dict[str, list[int]]:
    """``{"block_<i>": [resolutions]}``: where each block's map was compared."""
    return {f"block_{i + 1}": rs for i, rs in enumerate(err.measured)}


def _per_resolution_rows(resolutions: list[int], counts: Mapping[int, list[int]],
                         errors: Mapping[str, EquivarianceError]) -> list[dict[str, Any]]:
    ideal, bicubic = errors["ideal"], errors["bicubic"]
    rows = []
    for r in sorted(set(resolutions) | set(counts)):
        correct, total = counts.get(r, (0, 0))
        rows.append({"resolution": r, "n_test": total,
                     "test_acc": correct / total if total else None,
                     "equiv_err": ideal.per_resolution.get(r),
                     "equiv_err_bicubic": bicubic.per_resolution.get(r),
                     "equiv_err_first": ideal.first_per_resolution.get(r),
                     "equiv_err_first_bicubic": bicubic.first_per_resolution.get(r)})
    return rows


def _fresh_state() -> dict[str, Any]:
    return {"epoch": 0, "history": [], "best_val_acc": -1.0, "best_epoch": 0, "best_model": None,
            "train_s": 0.0, "train_step_s": 0.0, "train_images": 0}


def _mixed_training(batching: str, input_mode: str) -> bool:
    """Whether a trial's training batches mix resolutions (trial field ``batching``)."""
    if batching == "mixed" and input_mode != "canvas":
        raise ValueError(
            f"trial field 'batching' = 'mixed' needs a canvas model, and this model's "
            f"input_mode is {input_mode!r} (images at their native sizes cannot share a "
            f"batch); use batching = 'auto' or 'one_resolution'")
    return batching == "mixed" or (batching == "auto" and input_mode == "canvas")


def run_trial(
    trial: Mapping[str, Any],
    *,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    device: str | torch.device = "cpu",
    on_epoch: EpochCallback | None = None,
    resume: Mapping[str, Any] | None = None,
    task=None,
) -> TrialResult:
    """Train and evaluate one trial (see the module docstring).

    trial: a trial dict (normalised here); data_dir: the task's data directory (None:
    ``$SEFL_DATA_DIR`` or ``./data``); cache_dir: where built tasks are cached (None: beside
    the data); on_epoch(metrics, state): called after every epoch;
    resume: a state from ``on_epoch`` to continue from; task: an already built task for this
    trial (tests), else built from the trial.
    """
    trial = normalize_trial(trial)
    device = torch.device(device)
    task = task if task is not None else build_task(trial, data_dir, cache_dir)
    model = build_model(trial).to(device)
    own_loss = callable(getattr(model, "loss", None))
    plan = resolve_plan(trial, own_loss)
    optimizer = _optimizer(model, plan)
    scheduler = _scheduler(optimizer, plan)
    mode = getattr(model, "input_mode", "native")
    state = _fresh_state()
    if resume is not None:
        state = dict(resume)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])

    mixed_training = _mixed_training(trial["batching"], mode)

    def batches(split: str, limit: int | None, epoch: int = 0) -> Iterable:
        return task.loader(split, plan.batch_size, input_mode=mode, seed=trial["seed"],
                           epoch=epoch, limit=limit, mixed=mixed_training and split == "train")

    for epoch in range(state["epoch"], plan.epochs):
        started = time.perf_counter()
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for step, (x, y, _) in enumerate(batches("train", trial["train_batches"], epoch)):
            x, y = _to_device(device, x, y)
            loss, logits = _loss_and_logits(model, x, y, plan.weight_decay)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss.item()} at epoch {epoch + 1}, batch {step + 1} of trial "
                    f"{trial['task']}/{trial['model']}/s{trial['seed']}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(-1) == y).sum())
            seen += len(y)
        step_s = time.perf_counter() - started
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        val_counts, _ = _correct_per_resolution(model, batches("val", trial["eval_batches"]),
                                                device)
        val_acc = _accuracy(val_counts)
        epoch_s = time.perf_counter() - started
        metrics = {"epoch": epoch + 1, "train/loss": loss_sum / seen, "train/acc": correct / seen,
                   "val/acc": val_acc, "lr": lr, "time/epoch_s": epoch_s}
        if val_acc > state["best_val_acc"]:
            state["best_val_acc"], state["best_epoch"] = val_acc, epoch + 1
            if trial["select"] == "best_val":
                state["best_model"] = {k: v.detach().to("cpu", copy=True)
                                       for k, v in model.state_dict().items()}
        state.update(epoch=epoch + 1, history=[*state["history"], metrics],
                     train_s=state["train_s"] + epoch_s,
                     train_step_s=state["train_step_s"] + step_s,
                     train_images=state["train_images"] + seen,
                     model=model.state_dict(), optimizer=optimizer.state_dict(),
                     scheduler=scheduler.state_dict(), rng=torch.get_rng_state())
        if on_epoch is not None:
            on_epoch(metrics, state)

    tested_epoch = state["epoch"]
    if trial["select"] == "best_val" and state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
        tested_epoch = state["best_epoch"]
    started = time.perf_counter()
    test_counts, n_test = _correct_per_resolution(model, batches("test", trial["eval_batches"]),
                                                  device)
    test_s = time.perf_counter() - started
    images = task.equivariance_images(trial["equiv_images"], seed=0)
    errors, consistency = _equivariance(model, images, list(task.resolutions), device)
    metrics = _final_metrics(test_counts, errors, consistency)
    metrics.update({
        "params/count": float(_count_parameters(model)),
        "time/train_s": state["train_s"],
        "time/eval_s": time.perf_counter() - started,
        "throughput/train_img_s": state["train_images"] / max(state["train_step_s"], 1e-9),
        "throughput/eval_img_s": n_test / max(test_s, 1e-9),
    })
    # The split sizes built (a partial pool shrinks the ones left to the protocol), so that a
    # report can tell a run at the published sizes from one at reduced sizes.
    metrics.update({f"data/n_{split}": float(len(data)) for split, data in task.splits.items()})
    info = {"plan": asdict(plan), "own_loss": own_loss, "input_mode": mode,
            "training_batches": "mixed resolutions" if mixed_training else "one resolution",
            "select": trial["select"], "tested_epoch": tested_epoch,
            "best_epoch": state["best_epoch"], "best_val_acc": state["best_val_acc"],
            "epochs_trained": state["epoch"], "device": describe_device(device),
            "equiv_measured_resolutions": _measured_resolutions(errors["ideal"]),
            "task_metadata": getattr(task, "metadata", {})}
    return TrialResult(metrics=metrics, history=list(state["history"]), info=info,
                       per_resolution=_per_resolution_rows(list(task.resolutions), test_counts,
                                                           errors),
                       state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()})
