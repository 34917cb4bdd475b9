"""Cost of the paper's 16 presets at their full settings: seconds and FLOPs per training step and
per evaluated image on this machine, and the projected totals (docs/results.md, "Full settings").

A full step is too slow to time on a CPU for the ResNets (m = 50 path points of double backprop
per example, 40 PGD steps), so each preset is measured on a few synthetic examples of its
dataset's shape and pixel range (the cost of these workloads does not depend on the pixel values
or the training state) and extrapolated linearly:

* training, on a batch of the preset's size for NATURAL and Madry and of ``--batch`` for
  IG-NORM / IG-SUM-NORM: the update (the objective with 0 PGD steps) and one PGD step on the
  training loss, timed separately; a full step = (update + K·PGD step) · batch_size / batch. FLOPs (``torch.utils.flop_counter``) are extrapolated the same way.
* evaluation, per test image: the clean saliency map (IG with the preset's steps) and the
  attribution attack with 2 steps, timed separately; per attack step = (attack − map) / 2; an
  image = map + walks · steps · per attack step (walks: ``attribution_attack_times`` for the random
  attack, 1 for the deterministic ones, as ``attribution_attack`` runs them); plus the PGD of NA/AA (K steps of the preset,
  measured with 2 steps and scaled).

Totals: training = per step · max_num_training_steps; evaluation = per image · the preset's
evaluated test images, in hours of the device measured (``--device cuda`` gives measured GPU hours;
docs/results.md has an H200's). ``gpu_hours_projected`` divides the counted FLOPs by ``--gpu-tflops``,
an *assumed* sustained rate, for a GPU you cannot measure on.

    .venv/bin/python bench/preset_costs.py [--only mnist/ig-norm ...] [--batch 4] [--repeats 2]
    .venv/bin/python bench/preset_costs.py --table CPU.json [GPU.json]   # the Markdown table of docs/results.md
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
from robustattr.attribution import default_chunk_size, integrated_gradients, simple_gradient  # noqa: E402
from robustattr.config import load_config  # noqa: E402
from robustattr.training import ObjectiveParams  # noqa: E402
from robustattr.training.objectives import get_objective  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DATASETS = ("mnist", "fashion-mnist", "gtsrb", "flower17")
METHODS = ("natural", "madry", "ig-norm", "ig-sum-norm")
ATTACK_STEPS = 2  # attack steps timed per image (then scaled to the preset's)


def _timed(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up (allocator, kernels)
    return common.median([common.time_call(fn, device) for _ in range(repeats)])


def measure(dataset: str, method: str, *, batch: int, repeats: int, device: torch.device) -> dict:
    cfg = load_config(CONFIGS / dataset / f"{method}.json", ["device=cpu"])
    info = data.get_info(dataset)
    if batch <= 0 or cfg.training_objective in ("nat", "adv"):  # NATURAL, Madry: cheap enough for the full batch
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

    train_chunk, pgd_chunk = default_chunk_size(cfg.m, device), default_chunk_size(pgd_points, device)

    def update() -> None:  # the step without its PGD (num_steps 0: x' is the random start)
        params = ObjectiveParams.from_config(cfg.replace(num_steps=0), info.value_range, train_chunk, pgd_chunk)
        optimizer.zero_grad(set_to_none=True)
        objective(model, x, y, params).loss.backward()
        optimizer.step()

    def pgd_step() -> None:  # one PGD step on the training loss
        pgd(model, x, y, cfg.epsilon, 1, cfg.step_size, cfg.random_start, cfg.loss_func, info.value_range,
            n_steps=cfg.m, approx_factor=cfg.approx_factor, lam=cfg.lambda_, chunk_size=pgd_chunk)

    k = cfg.num_steps if cfg.training_objective != "nat" else 0
    update_t, update_f = _timed(update, repeats, device), common.count_flops(update)
    pgd_t, pgd_f = (_timed(pgd_step, repeats, device), common.count_flops(pgd_step)) if k else (0.0, 0)
    scale = cfg.training_batch_size / batch
    step_t, step_f = (update_t + k * pgd_t) * scale, (update_f + k * pgd_f) * scale

    # Evaluation: attack labels = the model's own predictions, so the image is "correct" and attacked.
    model.eval()
    x1 = x[:1]
    with torch.no_grad():
        y1 = model(x1).argmax(1)
    ig_chunk = default_chunk_size(cfg.num_IG_steps, device)

    def clean_map() -> None:  # what an attack computes once, besides its steps
        if cfg.saliency_type == "ig":
            integrated_gradients(model, x1, y1, n_steps=cfg.num_IG_steps, chunk_size=ig_chunk)
        else:
            simple_gradient(model, x1, y1)

    def attack_steps() -> None:
        attribution_attack(model, x1, y1, method=cfg.attribution_attack_method,
                           measure=cfg.attribution_attack_measure, epsilon=cfg.epsilon,
                           step_size=cfg.attribution_attack_step_size, steps=ATTACK_STEPS, times=1,
                           k_top=cfg.k_top, eval_k_top=cfg.eval_k_top, saliency=cfg.saliency_type,
                           n_steps=cfg.num_IG_steps, bounds=info.value_range,
                           integer_pixels=hi > 1, chunk_size=ig_chunk)

    map_t, map_f = _timed(clean_map, repeats, device), common.count_flops(clean_map)
    walk_t, walk_f = _timed(attack_steps, repeats, device), common.count_flops(attack_steps)
    per_step_t, per_step_f = max(walk_t - map_t, 0.0) / ATTACK_STEPS, max(walk_f - map_f, 0) / ATTACK_STEPS
    # As attribution_attack: only the random attack restarts; topK and the others are deterministic
    # walks, run once whatever attribution_attack_times says.
    walks = cfg.attribution_attack_times if cfg.attribution_attack_method == "random" else 1
    attr_image_t = walks * cfg.attribution_attack_steps * per_step_t + map_t
    attr_image_f = walks * cfg.attribution_attack_steps * per_step_f + map_f

    def aa() -> None:  # NA/AA: 2 PGD steps of xent on the measured batch
        pgd(model, x, y, cfg.epsilon, 2, cfg.step_size, cfg.random_start, "xent", info.value_range)

    aa_t = _timed(aa, repeats, device) / 2 * cfg.num_steps / batch
    aa_f = common.count_flops(aa) / 2 * cfg.num_steps / batch
    test_images = min(cfg.num_eval_examples, info.split_sizes["test"])
    return {
        "preset": f"configs/{dataset}/{method}.json", "dataset": dataset, "method": method,
        "model": cfg.model or info.default_model, "measured_batch": batch,
        "training_steps": cfg.max_num_training_steps, "batch_size": cfg.training_batch_size,
        "pgd_steps": k, "seconds_update": update_t, "seconds_per_pgd_step": pgd_t,
        "seconds_per_attack_step": per_step_t, "m": cfg.m if cfg.training_objective in ("ar", "adv_ar") else None,
        "seconds_per_training_step": step_t, "gflop_per_training_step": step_f / 1e9,
        "attack": {"method": cfg.attribution_attack_method, "steps": cfg.attribution_attack_steps,
                   "times": cfg.attribution_attack_times, "walks_run": walks, "ig_steps": cfg.num_IG_steps},
        "seconds_clean_map": map_t, "seconds_pgd_per_image": aa_t,
        "seconds_per_evaluated_image": attr_image_t + aa_t, "gflop_per_evaluated_image": (attr_image_f + aa_f) / 1e9,
        "evaluated_images": test_images,
        "hours_training": step_t * cfg.max_num_training_steps / 3600,
        "hours_evaluation": (attr_image_t + aa_t) * test_images / 3600,
        "total_pflop": (step_f * cfg.max_num_training_steps + (attr_image_f + aa_f) * test_images) / 1e15,
    }


def _hours(row: dict) -> str:
    return f"{row['hours_training']:,.1f} + {row['hours_evaluation']:,.1f}"


def markdown_table(measured: list[dict]) -> str:
    """One row per preset, one column group per measured file (device), in file order."""
    by_device = [(m["device"], {r["preset"]: r for r in m["presets"]}) for m in measured]
    presets = list(dict.fromkeys(p for _, rows in by_device for p in rows))
    head = ["preset", "steps × batch", "test images"]
    for device, _ in by_device:
        head += [f"{device}: s/step", "s/image", "hours (train + eval)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for preset in presets:
        first = next(rows[preset] for _, rows in by_device if preset in rows)
        cells = [f"`{preset}`", f"{first['training_steps']:,} × {first['batch_size']}", f"{first['evaluated_images']:,}"]
        for _, rows in by_device:
            row = rows.get(preset)
            cells += ([f"{row['seconds_per_training_step']:.3g}", f"{row['seconds_per_evaluated_image']:.3g}", _hours(row)]
                      if row else ["–", "–", "–"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="DATASET/METHOD", help="e.g. mnist/ig-norm (default: all 16)")
    parser.add_argument("--batch", type=int, default=5,
                        help="examples per measured IG-NORM / IG-SUM-NORM step; 0: the preset's batch (NATURAL and Madry always)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gpu-tflops", type=float, default=20.0,
                        help="ASSUMED sustained fp32 TFLOP/s of a GPU for the projection (not measured)")
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "preset_costs.json")
    parser.add_argument("--table", nargs="+", type=Path, metavar="JSON",
                        help="print the Markdown table of these measurements (files this script wrote) and exit")
    args = parser.parse_args()
    if args.table:
        print(markdown_table([json.loads(p.read_text()) for p in args.table]))
        return
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
              f"{device.type} {row['hours_training'] + row['hours_evaluation']:.3g} h, "
              f"GPU@{args.gpu_tflops:g}TFLOP/s {row['gpu_hours_projected']:.3g} h ({row['measure_seconds']} s)", flush=True)
        out = {"environment": common.environment(), "device": common.device_label(device),
               "gpu_tflops_assumed": args.gpu_tflops, "presets": rows}
        # Rewritten after every preset, so a run cut short keeps what it measured.
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
