"""Cost of the paper's 16 presets at their full settings: seconds and FLOPs per training step and
per evaluated image on this machine, and the projected totals (docs/results.md, "Full settings").

A full step is too slow to time on a CPU for the ResNets (m = 50 path points of double backprop
per example, 40 PGD steps), so each preset is measured on a few synthetic examples of its
dataset's shape and pixel range (the cost of these workloads does not depend on the pixel values
or the training state) and extrapolated linearly:

* training: one step with 1 PGD step and one with 2, same batch (the preset's for NATURAL and
  Madry, ``--batch`` for IG-NORM / IG-SUM-NORM); PGD-step cost = t(2) − t(1), update cost =
  t(1) − PGD-step cost; a full step = (update + K·PGD step) · batch_size / measured batch. FLOPs (``torch.utils.flop_counter``) are extrapolated the same way.
* evaluation, per test image: the attribution attack (the preset's method, saliency and IG
  steps) with 1 and 2 attack steps → per-step cost; an image = times · (steps · per-step +
  rest); plus the PGD of NA/AA (K steps of the preset, measured with 2 steps and scaled).

Totals: training = per step · max_num_training_steps; evaluation = per image · the preset's
evaluated test images. The GPU projection divides the counted FLOPs by ``--gpu-tflops`` (an
*assumed* sustained rate, not a measurement: no GPU was available when this was written).

    .venv/bin/python bench/preset_costs.py [--only mnist/ig-norm ...] [--batch 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from robustattr import data, models  # noqa: E402
from robustattr.attacks.attribution_attack import attribution_attack  # noqa: E402
from robustattr.attacks import pgd  # noqa: E402
from robustattr.attribution import default_chunk_size  # noqa: E402
from robustattr.config import load_config  # noqa: E402
from robustattr.training import ObjectiveParams  # noqa: E402
from robustattr.training.objectives import get_objective  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DATASETS = ("mnist", "fashion-mnist", "gtsrb", "flower17")
METHODS = ("natural", "madry", "ig-norm", "ig-sum-norm")


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, kernels)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return common.median(times)


def measure(dataset: str, method: str, *, batch: int, repeats: int, device: torch.device) -> dict:
    cfg = load_config(CONFIGS / dataset / f"{method}.json", ["device=cpu"])
    info = data.get_info(dataset)
    if cfg.training_objective in ("nat", "adv"):  # cheap enough to time at the preset's own batch
        batch = cfg.training_batch_size
    lo, hi = info.value_range
    torch.manual_seed(0)
    model = models.create(cfg.model or info.default_model, info.num_classes).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    x = (torch.rand(batch, *info.image_shape, device=device) * (hi - lo) + lo)
    y = torch.randint(0, info.num_classes, (batch,), device=device)
    objective = get_objective(cfg.training_objective)
    uses_ig = cfg.loss_func not in ("xent", "cw")
    pgd_points = (-(-cfg.m // cfg.approx_factor) if cfg.loss_func.endswith("_approx") else cfg.m) if uses_ig else 1

    def train_step(k: int):
        params = ObjectiveParams.from_config(cfg.replace(num_steps=k), info.value_range,
                                             default_chunk_size(cfg.m, device), default_chunk_size(pgd_points, device))

        def run() -> None:
            optimizer.zero_grad(set_to_none=True)
            objective(model, x, y, params).loss.backward()
            optimizer.step()
        return run

    has_pgd = cfg.training_objective != "nat"
    t1, f1 = _timed(train_step(1), repeats), common.count_flops(train_step(1))
    if has_pgd:
        t2, f2 = _timed(train_step(2), repeats), common.count_flops(train_step(2))
        pgd_t, pgd_f = max(t2 - t1, 0.0), max(f2 - f1, 0)
        update_t, update_f = max(t1 - pgd_t, 0.0), f1 - pgd_f
        step_t = (update_t + cfg.num_steps * pgd_t) * cfg.training_batch_size / batch
        step_f = (update_f + cfg.num_steps * pgd_f) * cfg.training_batch_size / batch
    else:
        step_t, step_f = t1 * cfg.training_batch_size / batch, f1 * cfg.training_batch_size / batch

    # Evaluation: attack labels = the model's own predictions, so every image is "correct" and attacked.
    model.eval()
    with torch.no_grad():
        y_pred = model(x[:1]).argmax(1)

    def attack(steps: int):
        def run() -> None:
            attribution_attack(model, x[:1], y_pred, method=cfg.attribution_attack_method,
                               measure=cfg.attribution_attack_measure, epsilon=cfg.epsilon,
                               step_size=cfg.attribution_attack_step_size, steps=steps, times=1,
                               k_top=cfg.k_top, eval_k_top=cfg.eval_k_top, saliency=cfg.saliency_type,
                               ig_steps=cfg.num_IG_steps, bounds=info.value_range,
                               integer_pixels=hi > 1, chunk_size=default_chunk_size(cfg.num_IG_steps, device))
        return run

    a1, a2 = _timed(attack(1), max(1, repeats - 1)), _timed(attack(2), max(1, repeats - 1))
    fa1, fa2 = common.count_flops(attack(1)), common.count_flops(attack(2))
    per_attack_step, per_attack_step_f = max(a2 - a1, 0.0), max(fa2 - fa1, 0)
    attr_image_t = cfg.attribution_attack_times * (cfg.attribution_attack_steps * per_attack_step + max(a1 - per_attack_step, 0.0))
    attr_image_f = cfg.attribution_attack_times * (cfg.attribution_attack_steps * per_attack_step_f + (fa1 - per_attack_step_f))

    def aa(k: int):
        return lambda: pgd(model, x, y, cfg.epsilon, k, cfg.step_size, cfg.random_start, "xent", info.value_range)

    aa_t = _timed(aa(2), repeats) / 2 * cfg.num_steps / batch
    aa_f = common.count_flops(aa(2)) / 2 * cfg.num_steps / batch
    test_images = min(cfg.num_eval_examples, info.split_sizes["test"])
    return {
        "preset": f"configs/{dataset}/{method}.json", "dataset": dataset, "method": method,
        "model": cfg.model or info.default_model, "measured_batch": batch,
        "training_steps": cfg.max_num_training_steps, "batch_size": cfg.training_batch_size,
        "pgd_steps": cfg.num_steps if has_pgd else 0, "m": cfg.m if cfg.training_objective in ("ar", "adv_ar") else None,
        "seconds_per_training_step": step_t, "gflop_per_training_step": step_f / 1e9,
        "attack": {"steps": cfg.attribution_attack_steps, "times": cfg.attribution_attack_times, "ig_steps": cfg.num_IG_steps},
        "seconds_per_evaluated_image": attr_image_t + aa_t, "gflop_per_evaluated_image": (attr_image_f + aa_f) / 1e9,
        "evaluated_images": test_images,
        "cpu_hours_training": step_t * cfg.max_num_training_steps / 3600,
        "cpu_hours_evaluation": (attr_image_t + aa_t) * test_images / 3600,
        "total_pflop": (step_f * cfg.max_num_training_steps + (attr_image_f + aa_f) * test_images) / 1e15,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="DATASET/METHOD", help="e.g. mnist/ig-norm (default: all 16)")
    parser.add_argument("--batch", type=int, default=5,
                        help="examples per measured IG-NORM / IG-SUM-NORM step (NATURAL and Madry: the preset's batch)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gpu-tflops", type=float, default=20.0,
                        help="ASSUMED sustained fp32 TFLOP/s of a GPU for the projection (not measured)")
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "preset_costs.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    units = args.only or [f"{d}/{m}" for d in DATASETS for m in METHODS]
    rows = []
    for unit in units:
        dataset, method = unit.split("/")
        began = time.perf_counter()
        row = measure(dataset, method, batch=args.batch, repeats=args.repeats, device=device)
        row["gpu_hours_projected"] = row["total_pflop"] * 1e15 / (args.gpu_tflops * 1e12) / 3600
        row["measure_seconds"] = round(time.perf_counter() - began, 1)
        rows.append(row)
        print(f"{unit}: {row['seconds_per_training_step']:.3g} s/step, {row['seconds_per_evaluated_image']:.3g} s/image, "
              f"CPU {row['cpu_hours_training'] + row['cpu_hours_evaluation']:.3g} h, "
              f"GPU@{args.gpu_tflops:g}TFLOP/s {row['gpu_hours_projected']:.3g} h ({row['measure_seconds']} s)", flush=True)
    out = {"environment": common.environment(), "device": common.device_label(device),
           "gpu_tflops_assumed": args.gpu_tflops, "presets": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
