"""Performance of the SEFL layers and models: ``python -m benchmark.perf [--json] [--device ...]``.

A benchmark, not a test. For each layer and size it times forward+backward of the fast path and
of the straightforward per-resolution loop (the oracle) in the same process, interleaved, and
prints their ratio; then the training throughput of the SEFL models. Absolute times on shared
machines are noisy; the ratios measured in one run are what to quote.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
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
    fast = FourierSE2d(width=0.25).to(device)
    oracle = FourierSE2d(width=0.25, implementation="loop").to(device)
    oracle.load_state_dict(fast.state_dict())
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    fast_ms = _best_ms(lambda: fast.loss(x, y).backward(), device, repeats)
    oracle_ms = _best_ms(lambda: oracle.loss(x, y).backward(), device, repeats)
    rows.append(LayerRow("FourierSE2d w=0.25", f"{batch}x1x28x28", fast_ms, oracle_ms))
    return rows


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.AdamW(model.param_groups(3e-2), lr=1e-2)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model.loss(x, y).backward()
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
        results[name] = {
            "machine": _machine(device),
            "layers": [asdict(r) | {"speedup": r.speedup} for r in layers],
            "throughput": [asdict(t) for t in throughput],
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
