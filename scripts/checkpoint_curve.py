"""NA and AA of every checkpoint a run kept: is the model still improving when training stops?

Each checkpoint is evaluated by robustattr's own ``evaluate_pgd`` (the run's config, with the
evaluation settings of a repro recipe laid over it) in a scratch run directory holding only that
checkpoint, on the first ``--examples`` test images. Prints a table and writes
``checkpoint_curve.json`` next to the unit's artifacts when ``--out`` is given.

    .venv/bin/python scripts/checkpoint_curve.py runs/repro/mnist/madry \
        --recipe configs/repro/mnist/madry.json --examples 1000 --out results/mnist/madry
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from robustattr.checkpoints import list_checkpoints
from robustattr.config import load_run_or_config, read_json_file
from robustattr.evaluation import evaluate_pgd
from robustattr.evaluation.results import write_json_atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--recipe", type=Path, help="repro recipe whose 'evaluate' settings to use")
    parser.add_argument("--examples", type=int, default=1000, help="first N test images (NA and AA)")
    parser.add_argument("--out", type=Path, help="folder to write checkpoint_curve.json into")
    args = parser.parse_args()

    evaluate = read_json_file(args.recipe).get("evaluate", {}) if args.recipe else {}
    overrides = {**evaluate, "num_eval_examples": args.examples, "num_adversarial_examples": args.examples}
    rows = []
    for step in list_checkpoints(args.run_dir):
        with tempfile.TemporaryDirectory() as scratch:
            shutil.copy(args.run_dir / "config.json", scratch)
            for suffix in (".json", ".safetensors"):
                name = f"checkpoint-{step:08d}{suffix}"
                shutil.copy(args.run_dir / name, Path(scratch) / name)
            cfg = load_run_or_config(scratch, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])
            result = evaluate_pgd(cfg)
        rows.append({"step": step, "natural_accuracy": result["natural_accuracy"],
                     "adversarial_accuracy": result["adversarial_accuracy"]})
        print(f"step {step:>6}: NA {100 * rows[-1]['natural_accuracy']:.2f}%  AA {100 * rows[-1]['adversarial_accuracy']:.2f}%",
              flush=True)
    if args.out:
        record = {"run_dir": str(args.run_dir), "examples": args.examples,
                  "pgd": {k: overrides.get(k) for k in ("num_steps", "step_size", "random_start", "loss_func")},
                  "checkpoints": rows}
        write_json_atomic(args.out / "checkpoint_curve.json", record)


if __name__ == "__main__":
    main()
