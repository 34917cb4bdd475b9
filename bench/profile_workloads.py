"""Where the time goes: torch.profiler tables of the two dominant workloads (spec §8).

1. One IG-NORM training step at the MNIST paper settings with 2 PGD steps (PGD on ``ar_approx``,
   10 path points per step, then the update with m = 50, double backprop, and Adam).
2. The attribution attack (IG saliency, topK, Kendall) on 8 MNIST images, n = 50, 3 steps.

Not part of ``make bench`` (it prints tables, not figures); docs/performance.md quotes its output.

    .venv/bin/python bench/profile_workloads.py [--rows 15] [--chunk N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import common  # noqa: E402
from robustattr import data, models  # noqa: E402
from robustattr.attacks import attribution_attack  # noqa: E402
from robustattr.training import ObjectiveParams  # noqa: E402
from robustattr.training.objectives import ig_norm  # noqa: E402


def show(title: str, fn, rows: int) -> None:
    fn()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
    print(f"\n### {title}: {seconds:.2f} s ({torch.get_num_threads()} threads)\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=48))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--chunk", type=int, default=0, help="examples per double-backprop pass (0: whole batch)")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    chunk = args.chunk or None

    x, y = data.load("mnist", "train", root=args.data_root).batch(slice(0, 50))
    torch.manual_seed(0)
    model = models.create("mnist_cnn").train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    params = ObjectiveParams(reduction="sum", lam=1.0, m=50, approx_factor=5, epsilon=0.3, num_steps=2,
                             step_size=0.01, loss_func="ar_approx", chunk_size=chunk, pgd_chunk_size=chunk)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        ig_norm(model, x, y, params).loss.backward()
        opt.step()

    show(f"IG-NORM step, batch 50, PGD 2 steps, update m=50, chunk {chunk}", step, args.rows)

    trained, _ = common.trained_mnist_cnn(torch.device("cpu"), data_root=args.data_root)
    xt, yt = data.load("mnist", "test", root=args.data_root).batch(slice(0, 8))
    show(f"attribution attack, 8 images, n=50, 3 steps, chunk {chunk}",
         lambda: attribution_attack(trained, xt, yt, epsilon=0.3, step_size=0.01, steps=3, k_top=200, eval_k_top=100,
                                    n_steps=50, chunk_size=chunk), args.rows)


if __name__ == "__main__":
    main()
