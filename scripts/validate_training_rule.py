"""The benchmark's shared training rule, re-checked on the validation split (issue 24, item 1).

Every benchmark unit but NATURAL fine-tunes from NATURAL at Adam 1e-3, with the training PGD radius
ramped from 0 over the first 1,000 steps and a 7-step training PGD (docs/benchmark.md, "One training
rule for every other method"). Those settings came from the repro's probes, some of which read
test-set AA. This script re-runs the decisive comparison with Madry on MNIST (the cheapest method
with an inner attack) and reads only **validation** images (the first 5,000 training images, which
the ``train`` split excludes): each variant trains from the benchmark's NATURAL run for a short,
equal-cost probe and is scored by NA on the 5,000 validation images and AA (the benchmark's PGD:
40 steps of 0.01 at ε 0.3, random start) on the first 1,000.

Variants (one setting changed from the shared rule each):
    shared       Adam 1e-3, ramp over the first 1000/6400 of the probe, PGD 7 x 0.1
    no_ramp      the full radius from step 0
    rate_1e-4    Adam 1e-4
    preset_pgd   the preset's PGD, 40 x 0.01, for as many steps as cost the same (8/41 of them)

One variant per process, one torch thread each (two side by side on the 2-core machine), resumable
(a trained probe and a current evaluation are reused):

    OMP_NUM_THREADS=1 .venv/bin/python scripts/validate_training_rule.py --variant shared
    .venv/bin/python scripts/validate_training_rule.py --summary

Outputs: the runs under ``runs/validation/mnist-madry/<variant>/``; ``results/validation/training-rule/
<variant>.json`` (the settings, NA, AA, training CPU seconds); ``--summary`` prints the table and
writes ``summary.md`` there.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from robustattr.evaluation import evaluate_pgd
from robustattr.evaluation.accuracy import PGD_RESULT_FILE
from robustattr.evaluation.results import read_result, write_json_atomic
from robustattr.pipelines.benchmark import read_benchmark_recipe
from robustattr.pipelines.stages import pgd_is_current, train_or_resume

PROBE_STEPS = 1200
UNIT_STEPS, UNIT_RAMP = 6400, 1000  # the benchmark unit's steps and ramp (configs/benchmark/mnist/madry.json)
PGD_COST = {7: 8, 40: 41}  # forward-backward passes per training step: the attack's steps + the update
VARIANTS = {
    "shared": {},
    "no_ramp": {"epsilon_ramp_steps": 0},
    "rate_1e-4": {"learning_rate": 1e-4},
    "preset_pgd": {"num_steps": 40, "step_size": 0.01},
}
RUNS, RESULTS = Path("runs/validation/mnist-madry"), Path("results/validation/training-rule")


def probe_steps(variant: dict) -> int:
    """Training steps of equal cost: PROBE_STEPS at the shared rule's 7-step PGD."""
    return round(PROBE_STEPS * PGD_COST[7] / PGD_COST[variant.get("num_steps", 7)])


def run(name: str) -> dict:
    unit = read_benchmark_recipe(Path("configs/benchmark"), "mnist", "madry", None)
    change = VARIANTS[name]
    steps = probe_steps(change)
    ramp = {"epsilon_ramp_steps": round(steps * UNIT_RAMP / UNIT_STEPS)}
    train_cfg = unit.train.replace(model_dir=str(RUNS / name), max_num_training_steps=steps,
                                   num_checkpoint_steps=steps, **{**ramp, **change})
    started = time.process_time()
    status = train_or_resume(train_cfg)
    train_cpu = time.process_time() - started if status != "reused" else None
    eval_cfg = unit.evaluate.replace(model_dir=str(RUNS / name), max_num_training_steps=steps,
                                     eval_split="validation", num_eval_examples=5000, num_adversarial_examples=1000)
    result = read_result(RUNS / name / PGD_RESULT_FILE) if pgd_is_current(eval_cfg) else evaluate_pgd(eval_cfg)
    out = RESULTS / f"{name}.json"
    earlier = json.loads(out.read_text()) if out.is_file() else {}
    record = {"variant": name, "changed": change, "train_steps": steps, **ramp, **change,
              "learning_rate": train_cfg.learning_rate, "training_pgd": [train_cfg.num_steps, train_cfg.step_size],
              "train_cpu_seconds": train_cpu if train_cpu is not None else earlier.get("train_cpu_seconds"),
              "eval_split": "validation", "natural_accuracy": result["natural_accuracy"],
              "num_eval_examples": result.get("num_examples"),
              "adversarial_accuracy": result["adversarial_accuracy"],
              "num_adversarial_examples": result.get("num_adversarial_examples")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, record)
    return record


def summary() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    lines = ["| variant | steps | ramp | Adam rate | training PGD | training CPU s | validation NA % (5,000) | "
             "validation AA % (1,000) |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: list(VARIANTS).index(r["variant"])):
        cpu = f"{r['train_cpu_seconds']:.0f}" if r.get("train_cpu_seconds") else "?"
        lines.append(f"| {r['variant']} | {r['train_steps']} | {r['epsilon_ramp_steps']} | {r['learning_rate']:g} | "
                     f"{r['training_pgd'][0]} x {r['training_pgd'][1]:g} | {cpu} | {100 * r['natural_accuracy']:.2f} | "
                     f"{100 * r['adversarial_accuracy']:.2f} |")
    text = "\n".join(lines)
    (RESULTS / "summary.md").write_text(text + "\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=list(VARIANTS))
    parser.add_argument("--summary", action="store_true", help="print the table of the finished variants")
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run(args.variant), indent=1))
    if args.summary or not args.variant:
        print(summary())


if __name__ == "__main__":
    main()
