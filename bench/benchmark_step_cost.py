"""Seconds per training step of each benchmark recipe's training config, on one thread.

For each ``configs/benchmark/<dataset>/<method>.json`` the training config (preset + ``train``,
``init_from`` dropped: the step costs the same from any weights) runs twice through the real
training loop into a temporary folder: 1 step (a warm-up), 2 steps, then enough steps for about ``--seconds`` of
work; the per-step cost is the difference over the extra steps, so the setup cancels. It is
given both as the process's CPU time (``time.process_time``: what the step needs of one core,
barely touched by other work on the machine) and as wall time. The recipes' step counts come from
the CPU figure (docs/benchmark.md). Prints one JSON line per method.

    OMP_NUM_THREADS=1 .venv/bin/python bench/benchmark_step_cost.py mnist --seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[1] / "configs" / "benchmark"


def measure(dataset: str, method: str, seconds: float, data_root: str | None) -> dict:
    import torch

    from robustattr.config import load_config
    from robustattr.training import train

    torch.set_num_threads(1)
    recipe = json.loads((RECIPES / dataset / f"{method}.json").read_text())
    layer = {k: v for k, v in recipe.get("train", {}).items() if k not in ("init_from", "model_dir")}
    spent: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for steps in (1, 2, None):  # the 1-step run warms up (the first load of the dataset fills its cache)
            if steps is None:  # enough steps for ~seconds of work, at the 2-step run's pace
                steps = max(5, 2 + int(seconds / spent[2][0] * 2))
            sets = [f"model_dir={json.dumps(str(Path(tmp) / method))}", f"max_num_training_steps={steps}",
                    "num_checkpoint_steps=1000000", "num_output_steps=1000000", "num_summary_steps=1000000",
                    "device=\"cpu\""] + ([f"data_root={json.dumps(data_root)}"] if data_root else [])
            cfg = load_config(recipe["preset"], sets, layers=[(layer, "train")])
            cpu, wall = time.process_time(), time.perf_counter()
            train(cfg, overwrite=True, progress=False)
            spent[steps] = (time.process_time() - cpu, time.perf_counter() - wall)
    (n,) = [k for k in spent if k not in (1, 2)]
    return {"dataset": dataset, "method": method, "steps": n,
            "cpu_seconds_per_step": round((spent[n][0] - spent[2][0]) / (n - 2), 4),
            "wall_seconds_per_step": round((spent[n][1] - spent[2][1]) / (n - 2), 4),
            "load_average_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    from robustattr.training.objectives import REGISTRY

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset")
    p.add_argument("--methods", nargs="+", default=None, help="default: every method with a recipe")
    p.add_argument("--seconds", type=float, default=30.0, help="work per measurement (default 30 s)")
    p.add_argument("--data-root", default=None)
    args = p.parse_args()
    methods = args.methods or [i.slug for i in REGISTRY.values() if (RECIPES / args.dataset / f"{i.slug}.json").is_file()]
    for method in methods:
        print(json.dumps(measure(args.dataset, method, args.seconds, args.data_root)), flush=True)


if __name__ == "__main__":
    main()
