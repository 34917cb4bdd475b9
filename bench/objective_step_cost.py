"""Seconds per training step of every objective at its MNIST preset, as ratios to IG-NORM and Madry.

Each objective's step is the training loop's (``configs/mnist/<slug>.json``: batch 50, its inner
attack and regulariser settings, the loop's chunk sizes for this device), one Adam update on the
same real MNIST batches, from the same initial weights. The steps are timed interleaved in one
process (a, b, c, ..., then reversed), so load on the machine hits every objective alike, and the
ratios to IG-NORM's and to Madry's step (the paper's two robust baselines) are measured in the same
run. The entry's value is the slowest later objective's seconds per step, its reference IG-NORM's.

    .venv/bin/python bench/objective_step_cost.py --repeats 2 --warmup 1
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

#: reference objectives first, then the later work (registry slugs; presets configs/mnist/<slug>.json)
REFERENCES = ("ig-norm", "madry")
SUCCESSORS = ("trades", "igr", "lga", "ssr", "art")
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "mnist"


def _stepper(slug: str, device: torch.device, data_root: str | None, split, log) -> tuple:
    from robustattr import models
    from robustattr.attribution import default_chunk_size
    from robustattr.config import load_config
    from robustattr.training.data_order import BatchOrder
    from robustattr.training.objectives import ObjectiveParams, get_objective

    sets = [f"device={device.type}"] + ([f"data_root={data_root}"] if data_root else [])
    cfg = load_config(CONFIGS / f"{slug}.json", sets)
    # The loop's chunk sizes (training.loop._chunk_sizes without a memory budget).
    uses_ig = cfg.loss_func not in ("xent", "cw")
    pgd_points = (math.ceil(cfg.m / cfg.approx_factor) if cfg.loss_func.endswith("_approx") else cfg.m) if uses_ig else 1
    chunk, pgd_chunk = default_chunk_size(cfg.m, device), default_chunk_size(pgd_points, device)
    params = ObjectiveParams.from_config(cfg, split.info.value_range, chunk, pgd_chunk)
    torch.manual_seed(cfg.random_seed)
    model = models.create("mnist_cnn").to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    order = BatchOrder(len(split), cfg.training_batch_size, seed=cfg.np_random_seed)
    objective = get_objective(cfg.training_objective)

    def step() -> None:
        x, y = split.batch(order.next())
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        out = objective(model, x, y, params)
        out.loss.backward()
        optimizer.step()
        float(out.loss.detach())  # wait for the device

    settings = {"objective": cfg.training_objective, "batch": cfg.training_batch_size, "epsilon": cfg.epsilon,
                "num_steps": cfg.num_steps, "step_size": cfg.step_size, "m": cfg.m, "lambda": cfg.lambda_,
                "chunk_size": chunk, "pgd_chunk_size": pgd_chunk, **dict(cfg.objective_settings)}
    log(f"{slug}: {settings}")
    return step, settings


def run(args) -> dict:
    from robustattr import data

    device = torch.device(args.device)
    log = common.logger(args.quiet)
    split = data.load("mnist", "train", root=args.data_root)
    steppers, presets = {}, {}
    for slug in REFERENCES + SUCCESSORS:
        steppers[slug], presets[slug] = _stepper(slug, device, args.data_root, split, log)
    times = common.interleaved(steppers, repeats=args.repeats, warmup=args.warmup, device=device, log=log)
    seconds = {slug: common.median(t) for slug, t in times.items()}
    table = {slug: {"seconds_per_step": s, "x_ig_norm": s / seconds["ig-norm"], "x_madry": s / seconds["madry"]}
             for slug, s in seconds.items()}
    print(f"\n{'objective':<10} {'s/step':>9} {'x IG-NORM':>10} {'x Madry':>9}")
    for slug, row in table.items():
        print(f"{slug:<10} {row['seconds_per_step']:9.3f} {row['x_ig_norm']:10.3f} {row['x_madry']:9.2f}")
    print()
    slowest = max(SUCCESSORS, key=seconds.get)
    return common.entry(
        name="objective_step_cost", value=seconds[slowest], reference=seconds["ig-norm"], goal=1.0,
        higher_is_better=False, unit="s/step (slowest later objective vs IG-NORM)", device=device,
        settings={"slowest": slowest, "per_objective": table, "presets": presets,
                  "raw_seconds": {k: [round(v, 4) for v in t] for k, t in times.items()},
                  "repeats": args.repeats, "warmup": args.warmup},
    )


def main() -> None:
    parser = common.common_args(__doc__.splitlines()[0])
    args = parser.parse_args()
    common.run_and_report(run, args)


if __name__ == "__main__":
    main()
