"""Seconds per training step of each objective at the MNIST paper settings, and peak memory.

Settings (spec §3, §6.1): batch 50, PGD ε=0.3, 40 steps × 0.01, m=50, approx_factor 5 (IG losses),
Adam 1e-4; real MNIST training batches. Each objective runs in its own subprocess so that the peak
resident memory (``ru_maxrss``; ``max_memory_allocated`` on CUDA) is that objective's alone.
Prints one JSON line per objective, then a table with ratios against NATURAL measured in the same
run (spec §8 predicts Madry ≈ 41×, IG-NORM ≈ 1,350× a natural step).

    .venv/bin/python bench/train_step_cost.py --data-root ~/.cache/robustattr --steps 1
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SETTINGS = {  # objective -> (loss_func, lambda), the MNIST configs
    "nat": ("xent", 1.0), "adv": ("xent", 1.0), "ar": ("ar_approx", 1.0), "adv_ar": ("adv_ar_approx", 0.1),
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(objective: str, steps: int, warmup: int, data_root: str | None, device: str,
           memory_budget_mb: int | None) -> dict:
    import torch

    from robustattr import data, models
    from robustattr.attribution import activation_bytes_per_image, default_chunk_size
    from robustattr.training import OBJECTIVES, ObjectiveParams
    from robustattr.training.data_order import BatchOrder

    dev = torch.device(device)
    split = data.load("mnist", "train", root=data_root)
    torch.manual_seed(4557077)
    model = models.create("mnist_cnn").to(dev).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    loss_func, lam = SETTINGS[objective]
    # As the training loop chunks: ~3x activations per double-backprop point under the budget, and
    # ~128 path points per pass on a CPU.
    act = 3 * activation_bytes_per_image(model, split.batch(slice(0, 1))[0].to(dev)) if memory_budget_mb else 0
    chunk = default_chunk_size(50, dev, memory_budget_mb, act)
    pgd_chunk = default_chunk_size(10 if loss_func != "xent" else 1, dev, memory_budget_mb, act)
    params = ObjectiveParams(reduction="sum", lam=lam, m=50, approx_factor=5, epsilon=0.3, num_steps=40,
                             step_size=0.01, loss_func=loss_func, chunk_size=chunk, pgd_chunk_size=pgd_chunk)
    order = BatchOrder(len(split), 50, seed=4557077)

    def step() -> None:
        x, y = split.batch(order.next())
        x, y = x.to(dev), y.to(dev)
        optimizer.zero_grad(set_to_none=True)
        out = OBJECTIVES[objective](model, x, y, params)
        out.loss.backward()
        optimizer.step()
        float(out.loss.detach())  # wait for the device

    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    base = _rss_mb()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    result = {"objective": objective, "device": str(dev), "threads": torch.get_num_threads(),
              "seconds_per_step": seconds, "steps_timed": steps, "warmup": warmup,
              "peak_rss_mb": _rss_mb(), "peak_rss_increase_mb": _rss_mb() - base, "chunk_size": chunk,
              "pgd_chunk_size": pgd_chunk}
    if dev.type == "cuda":
        result["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=2, help="timed steps per objective")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--memory-budget-mb", type=int, default=None)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.warmup, args.data_root, args.device,
                                args.memory_budget_mb)))
        return
    results = []
    for objective in args.objectives:
        cmd = [sys.executable, __file__, "--worker", objective, "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--device", args.device]
        if args.data_root:
            cmd += ["--data-root", args.data_root]
        if args.memory_budget_mb is not None:
            cmd += ["--memory-budget-mb", str(args.memory_budget_mb)]
        line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results.append(json.loads(line))
        print(line, flush=True)
    reference = next((r["seconds_per_step"] for r in results if r["objective"] == "nat"), None)
    print(f"\n{'objective':<9} {'s/step':>9} {'x natural':>10} {'peak RSS MB':>12} {'RSS increase MB':>16}")
    for r in results:
        ratio = f"{r['seconds_per_step'] / reference:10.1f}" if reference else f"{'-':>10}"
        print(f"{r['objective']:<9} {r['seconds_per_step']:9.3f} {ratio} {r['peak_rss_mb']:12.0f} "
              f"{r['peak_rss_increase_mb']:16.0f}")


if __name__ == "__main__":
    main()
