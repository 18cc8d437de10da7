"""Performance of the SEFL layers and models: ``python -m benchmark.perf [--json] [--device ...]``.

A benchmark, not a test. For each layer and size it times forward+backward of the fast path and
of the straightforward per-resolution loop (the oracle) in the same process, interleaved, and
prints their ratio, and one AdamW training step of the whole SEFL model against the same model
built on the loop oracle; then the training throughput of the SEFL models; then the cost of
exactness: SEFL beside the CNN, SESN and DISCO at the same parameter count on MNIST-scale
(training and evaluation img/s, peak memory per training image). Absolute times on shared
machines are noisy; the ratios measured in one run are what to quote.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sefl.layers import ScaleEqMaxPool2d, ScaleEqNonlin1d, ScaleEqNonlin2d
from sefl.models import FourierSE1d, FourierSE2d, FourierSESTL
from sefl.spectral import to_spectrum

__all__ = ["main"]


@dataclass
class LayerRow:
    layer: str
    size: str
    fast_ms: float
    oracle_ms: float

    @property
    def speedup(self) -> float:
        return self.oracle_ms / self.fast_ms


@dataclass
class ThroughputRow:
    model: str
    width: float
    input: str
    batch: int
    train_img_s: float


@dataclass
class CostRow:
    """One model of the cost-of-exactness table (MNIST-scale, 1 x 28 x 28)."""

    model: str
    width: float
    params: int
    train_img_s: dict[int, float]  # batch -> images per second of one training step
    eval_img_s: float  # no grad, batch EVAL_BATCH
    train_mib_per_image: float  # peak memory of one training step / batch


EVAL_BATCH = 128
BASELINES = ("cnn", "sesn_scalar", "disco")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_ms(step: Callable[[], None], device: torch.device, repeats: int) -> float:
    step()  # warm-up: plans, matrices and allocator
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def _compare(
    name: str, size: str, fast: nn.Module, oracle: nn.Module, make_input, device, repeats: int
) -> LayerRow:
    """Forward+backward of both implementations on the same input, interleaved in rounds."""
    oracle.load_state_dict(fast.state_dict())
    spec = make_input().requires_grad_(True)

    def step(layer):
        return lambda: layer(spec).abs().sum().backward()

    fast_ms, oracle_ms = float("inf"), float("inf")
    for _ in range(3):  # rounds, so that a burst of load hits both sides alike
        fast_ms = min(fast_ms, _best_ms(step(fast), device, repeats))
        oracle_ms = min(oracle_ms, _best_ms(step(oracle), device, repeats))
    return LayerRow(name, size, fast_ms, oracle_ms)


def layer_rows(device: torch.device, repeats: int, quick: bool) -> list[LayerRow]:
    batch, channels = 32, 32
    rows = []
    sizes_2d = [28] if quick else [28, 48, 64]
    for n in sizes_2d:

        def make(n=n):
            return to_spectrum(torch.randn(batch, channels, n, n, device=device)).to(torch.cfloat)

        fast = ScaleEqNonlin2d(channels, 6, n).to(device)
        oracle = ScaleEqNonlin2d(channels, 6, n, implementation="loop").to(device)
        rows.append(
            _compare(
                "ScaleEqNonlin2d",
                f"{batch}x{channels}x{n}x{n}",
                fast,
                oracle,
                make,
                device,
                repeats,
            )
        )
    for n in [72] if quick else [72, 256]:

        def make1(n=n):
            return to_spectrum(torch.randn(batch, channels, n, device=device), 1)

        fast = ScaleEqNonlin1d(channels, 12, n).to(device)
        oracle = ScaleEqNonlin1d(channels, 12, n, implementation="loop").to(device)

        class Bound(nn.Module):
            def __init__(self, layer, n=n):
                super().__init__()
                self.layer, self.n = layer, n

            def forward(self, spec):
                return self.layer(spec, self.n)

        rows.append(
            _compare(
                "ScaleEqNonlin1d",
                f"{batch}x{channels}x{n}",
                Bound(fast),
                Bound(oracle),
                make1,
                device,
                repeats,
            )
        )
    if not quick:

        def make_pool():
            return to_spectrum(torch.randn(16, channels, 97, 97, device=device))

        fast = ScaleEqMaxPool2d(channels, 40, 97, 8).to(device)
        oracle = ScaleEqMaxPool2d(channels, 40, 97, 8, implementation="loop").to(device)
        rows.append(
            _compare(
                "ScaleEqMaxPool2d", f"16x{channels}x97x97", fast, oracle, make_pool, device, repeats
            )
        )
    rows.append(whole_model_row(device, repeats, width=0.25 if quick else 1.0, batch=batch))
    return rows


def whole_model_row(device: torch.device, repeats: int, width: float, batch: int) -> LayerRow:
    """One AdamW training step of ``FourierSE2d`` on its fast path against the same model built
    on the nonlinearities' loop oracle (same weights, same batch), interleaved in rounds."""
    fast = FourierSE2d(width=width).to(device).train()
    oracle = FourierSE2d(width=width, implementation="loop").to(device).train()
    oracle.load_state_dict(fast.state_dict())
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    fast_step, oracle_step = _train_step(fast, x, y), _train_step(oracle, x, y)
    # The oracle's step takes seconds at width 1: fewer repeats, still two interleaved rounds.
    repeats = min(repeats, 2)
    fast_ms, oracle_ms = float("inf"), float("inf")
    for _ in range(2):
        fast_ms = min(fast_ms, _best_ms(fast_step, device, repeats))
        oracle_ms = min(oracle_ms, _best_ms(oracle_step, device, repeats))
    return LayerRow(f"FourierSE2d w={width} step", f"{batch}x1x28x28", fast_ms, oracle_ms)


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One AdamW step: a SEFL model's own loss and parameter groups; otherwise cross-entropy."""
    if hasattr(model, "param_groups"):
        opt = torch.optim.AdamW(model.param_groups(3e-2), lr=1e-2)

        def loss() -> torch.Tensor:
            return model.loss(x, y)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=3e-2)

        def loss() -> torch.Tensor:
            return F.cross_entropy(model(x), y)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()

    return step


def throughput_rows(device: torch.device, repeats: int, quick: bool) -> list[ThroughputRow]:
    """Images per second of one AdamW training step (forward, loss, backward, update)."""
    configs = [
        ("FourierSE2d", FourierSE2d, (1, 28, 28), 32),
        ("FourierSE1d", FourierSE1d, (1, 72), 32),
    ]
    if not quick:
        configs.append(("FourierSESTL", FourierSESTL, (3, 97, 97), 8))
    rows = []
    for name, cls, shape, batch in configs:
        for width in (1.0, 0.25):
            model = cls(width=width).to(device).train()
            x = torch.randn(batch, *shape, device=device)
            y = torch.randint(0, 10, (batch,), device=device)
            ms = _best_ms(_train_step(model, x, y), device, repeats)
            rows.append(
                ThroughputRow(name, width, "x".join(map(str, shape)), batch, batch / ms * 1000)
            )
    return rows


def parameter_count(model: nn.Module) -> int:
    """Real numbers in the model's parameters (a complex parameter would count twice)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def matched_width(name: str, target: int, tolerance: float = 0.01) -> tuple[float, int]:
    """The zoo width at which model ``name`` (MNIST-scale) has ``target`` parameters, within
    ``tolerance`` where channel rounding allows: a bisection on the width (the count grows with
    it); returns the width and its count (the closest one seen)."""
    from benchmark.zoo import create_model

    @functools.cache
    def count(width: float) -> int:
        return parameter_count(create_model(name, "mnist_scale", width=width))

    low, high = 0.05, 1.0
    while count(high) < target:
        low, high = high, 2 * high
    best = min((low, high), key=lambda w: abs(count(w) - target))
    for _ in range(20):
        middle = (low + high) / 2
        n = count(middle)
        if abs(n - target) < abs(count(best) - target):
            best = middle
        if abs(n - target) <= tolerance * target:
            break
        low, high = (middle, high) if n < target else (low, middle)
    return best, count(best)


def peak_step_bytes(step: Callable[[], None], device: torch.device) -> int:
    """Peak memory of one training step above what was allocated before it (parameters,
    optimiser state and inputs of a warmed-up step are already there).

    CUDA: ``torch.cuda.max_memory_allocated``. CPU keeps no such counter, so the step runs under
    ``torch.profiler`` with memory profiling and the peak is that of the live tensor bytes of its
    memory timeline (every allocation and free the profiler saw, in time order): the bytes of
    tensors, without the allocator's caching or fragmentation.
    """
    step()  # warm-up: the optimiser's state and the layers' cached matrices exist before
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    with profile(
        activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
    ) as prof:
        step()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "memory.json")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecated in favour of CUDA-only
            prof.export_memory_timeline(path, device="cpu")
        with open(path) as f:
            _, sizes = json.load(f)
    live = [sum(categories) for categories in sizes]
    return max(live) - live[0] if live else 0


def cost_rows(device: torch.device, repeats: int, quick: bool) -> list[CostRow]:
    """SEFL (width 1) and each baseline at SEFL's parameter count: training img/s at each batch
    (interleaved rounds, so that load hits every model alike), evaluation img/s and peak memory
    per training image."""
    from benchmark.zoo import create_model

    torch.manual_seed(0)
    sefl = FourierSE2d(width=1.0)
    target = parameter_count(sefl)
    models = {"sefl": (1.0, target, sefl)}
    for name in BASELINES:
        width, params = matched_width(name, target)
        models[name] = (width, params, create_model(name, "mnist_scale", width=width))
    batches = (32,) if quick else (32, 128)
    train: dict[str, dict[int, float]] = {name: {} for name in models}
    steps = {}
    for name, (_, _, model) in models.items():
        model.to(device).train()
        for batch in batches:
            x = torch.randn(batch, 1, 28, 28, device=device)
            y = torch.randint(0, 10, (batch,), device=device)
            steps[name, batch] = _train_step(model, x, y)
    for _ in range(2):
        for (name, batch), step in steps.items():
            ms = _best_ms(step, device, repeats)
            train[name][batch] = max(train[name].get(batch, 0.0), batch / ms * 1000)
    rows = []
    x_eval = torch.randn(EVAL_BATCH, 1, 28, 28, device=device)
    for name, (width, params, model) in models.items():
        model.eval()
        with torch.no_grad():
            eval_ms = _best_ms(lambda model=model: model(x_eval), device, repeats)
        model.train()
        x = torch.randn(batches[0], 1, 28, 28, device=device)
        y = torch.randint(0, 10, (batches[0],), device=device)
        peak = peak_step_bytes(_train_step(model, x, y), device)
        rows.append(
            CostRow(
                name,
                round(width, 4),
                params,
                train[name],
                EVAL_BATCH / eval_ms * 1000,
                peak / batches[0] / 2**20,
            )
        )
    return rows


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def _print_tables(
    device: torch.device, layers: list[LayerRow], throughput: list[ThroughputRow]
) -> None:
    print(f"device: {device} ({_machine(device)}), torch {torch.__version__}")
    print(f"{'layer or model':<22} {'size':<16} {'fast ms':>9} {'oracle ms':>10} {'speedup':>8}")
    for r in layers:
        print(
            f"{r.layer:<22} {r.size:<16} {r.fast_ms:>9.2f} {r.oracle_ms:>10.2f} {r.speedup:>7.1f}x"
        )
    print()
    print(f"{'model':<14} {'width':>6} {'input':<10} {'batch':>6} {'train img/s':>12}")
    for t in throughput:
        print(f"{t.model:<14} {t.width:>6} {t.input:<10} {t.batch:>6} {t.train_img_s:>12.1f}")


def _print_costs(costs: list[CostRow]) -> None:
    batches = sorted(costs[0].train_img_s)
    train_heads = "".join(f" {f'train img/s b{b}':>17}" for b in batches)
    print("MNIST-scale, 1x28x28, every model at SEFL's parameter count (real numbers):")
    print(
        f"{'model':<12} {'width':>7} {'params':>9}{train_heads} "
        f"{f'eval img/s b{EVAL_BATCH}':>17} {'train MiB/img':>14}"
    )
    for c in costs:
        train = "".join(f" {c.train_img_s[b]:>17.1f}" for b in batches)
        print(
            f"{c.model:<12} {c.width:>7} {c.params:>9}{train} {c.eval_img_s:>17.1f} "
            f"{c.train_mib_per_image:>14.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.perf",
        description="Time the SEFL layers (fast path vs the per-resolution oracle) and models.",
        epilog="example: python -m benchmark.perf --device cpu --json perf.json",
    )
    parser.add_argument(
        "--device",
        action="append",
        choices=["cpu", "cuda"],
        help="device to time on (repeatable; default: cpu, and cuda when available)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement")
    parser.add_argument("--quick", action="store_true", help="only the smallest sizes")
    parser.add_argument(
        "--json", metavar="PATH", help="also write the results as JSON ('-': stdout)"
    )
    args = parser.parse_args(argv)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        print("error: --device cuda was requested but no CUDA GPU is available", file=sys.stderr)
        return 2
    if args.repeats < 1:
        print(f"error: --repeats must be >= 1, got {args.repeats}", file=sys.stderr)
        return 2
    results = {}
    for name in devices:
        device = torch.device(name)
        torch.manual_seed(0)
        layers = layer_rows(device, args.repeats, args.quick)
        throughput = throughput_rows(device, args.repeats, args.quick)
        _print_tables(device, layers, throughput)
        print()
        costs = cost_rows(device, args.repeats, args.quick)
        _print_costs(costs)
        print()
        results[name] = {
            "machine": _machine(device),
            "layers": [asdict(r) | {"speedup": r.speedup} for r in layers],
            "throughput": [asdict(t) for t in throughput],
            "cost_of_exactness": [asdict(c) for c in costs],
        }
    if args.json:
        text = json.dumps({"torch": torch.__version__, "results": results}, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
