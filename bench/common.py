"""Shared helpers of the benchmarks: timing, medians, the result entry, the table and a cached model.

Every benchmark script imports this module (``bench/`` is put on ``sys.path`` by the scripts), runs
its workload after a warm-up, takes the median of several repeats, and writes one entry::

    {"name", "value", "reference", "ratio", "goal", "met", "unit", "device", "settings"}

``reference`` is measured in the same process, interleaved with ``value`` (ours, reference, ours,
reference, ...) so that a change of machine load hits both sides alike. ``settings`` records the
workload, the thread count, the torch version and the raw timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def environment() -> dict:
    """Device, threads and versions, recorded in every entry's ``settings``."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min_at_start": None if load is None else round(load, 2),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call of ``fn``, the device synchronised before and after."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], object]], *, repeats: int, warmup: int,
                device: torch.device, log: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Time each of ``fns`` ``repeats`` times after ``warmup`` untimed calls, taking turns.

    The order alternates every round (a, b, b, a, ...) so neither side always runs right after the
    other's allocations. Returns name -> list of seconds.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            seconds = time_call(fns[name], device)
            times[name].append(seconds)
            if log:
                log(f"  {name}: {seconds:.3f} s")
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def entry(*, name: str, value: float, reference: float, goal: float, unit: str, device: torch.device,
          settings: dict, higher_is_better: bool = True, extra_goal: str | None = None,
          extra_met: bool | None = None) -> dict:
    """One result: ``ratio`` = value / reference, compared with ``goal`` (ratio ≥ goal)."""
    ratio = value / reference if reference else float("nan")
    met = ratio >= goal if higher_is_better else ratio <= goal
    goal_text = f"ratio {'>=' if higher_is_better else '<='} {goal:g}"
    if extra_goal:
        goal_text += f", {extra_goal}"
        met = bool(met and extra_met)
    return {
        "name": name,
        "value": value,
        "reference": reference,
        "ratio": ratio,
        "goal": goal_text,
        "met": bool(met),
        "unit": unit,
        "device": device_label(device),
        "settings": {**settings, **environment()},
    }


def write_entry(result: dict, path: Path | None = None) -> Path:
    """Write one benchmark's entry to ``bench/results/<name>.json`` (or ``path``)."""
    path = path or RESULTS_DIR / f"{result['name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def format_table(results: Sequence[dict]) -> str:
    """The entries as a fixed-width table (one row each)."""
    head = f"{'name':<26} {'value':>11} {'reference':>11} {'ratio':>7} {'goal':<40} {'met':<4} {'unit':<22} device"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r['name']:<26} {_num(r['value']):>11} {_num(r['reference']):>11} {r['ratio']:7.2f} "
            f"{r['goal']:<40} {'yes' if r.get('met') else 'NO':<4} {r['unit']:<22} {r['device']}"
        )
    return "\n".join(lines)


def _num(v: float) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1e5 or (0 < abs(v) < 1e-2):
        return f"{v:.3e}"
    return f"{v:.3f}"


def common_args(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per side (median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per side first")
    parser.add_argument("--data-root", default=None, help="robustattr data cache (default $ROBUSTATTR_DATA or ~/.cache/robustattr)")
    parser.add_argument("--out", type=Path, default=None, help="entry JSON path (default bench/results/<name>.json)")
    parser.add_argument("--quiet", action="store_true")
    return parser


def logger(quiet: bool) -> Callable[[str], None]:
    def log(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    return log


def cache_dir(data_root: str | None) -> Path:
    root = Path(data_root or os.environ.get("ROBUSTATTR_DATA") or Path.home() / ".cache" / "robustattr")
    return root / "bench"


def trained_mnist_cnn(device: torch.device, *, data_root: str | None = None, steps: int = 200,
                      batch: int = 50, lr: float = 1e-3, seed: int = 0,
                      log: Callable[[str], None] | None = None) -> tuple[torch.nn.Module, dict]:
    """The MNIST CNN after ``steps`` natural Adam steps on real MNIST (cached on disk after the first call).

    A briefly trained model (~97-98 % test accuracy) makes adversarial accuracy and attribution-attack
    numbers meaningful; a run dir is not needed. Returns (model in eval mode, description).
    """
    import torch.nn.functional as F

    from robustattr import data, models

    path = cache_dir(data_root) / f"mnist_cnn-nat-{steps}steps-b{batch}-lr{lr:g}-seed{seed}.pt"
    torch.manual_seed(seed)
    model = models.create("mnist_cnn")
    info = {"model": "mnist_cnn", "training": f"{steps} natural Adam steps, lr {lr:g}, batch {batch}, seed {seed}",
            "cache": str(path)}
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        info["trained_now"] = False
    else:
        split = data.load("mnist", "train", root=data_root)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.to(device).train()
        start = time.perf_counter()
        for _ in range(steps):
            idx = torch.randint(len(split), (batch,), generator=gen)
            x, y = split.batch(idx)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x.to(device)), y.to(device)).backward()
            opt.step()
        info["trained_now"] = True
        info["training_seconds"] = round(time.perf_counter() - start, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, path)
        if log:
            log(f"trained {info['training']} in {info['training_seconds']} s -> {path}")
    return model.to(device).eval(), info


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker: its module hooks put backward hooks on
    tensors, which ``torch.autograd.grad`` on a leaf (PGD, IG) refuses. Only the total is needed."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (matmuls and convolutions, forward and all backward orders) of one call of ``fn``."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    with counter:
        fn()
    return int(counter.get_total_flops())


def run_and_report(run: Callable[[argparse.Namespace], dict], args: argparse.Namespace) -> dict:
    """Run one benchmark, print its table row and write its entry (``args.out``)."""
    result = run(args)
    print(format_table([result]))
    write_entry(result, args.out)
    return result
