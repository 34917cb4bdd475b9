"""Soak test: SIGKILL a training run many times at random moments (some in the middle of a
checkpoint write), resume it each time, and check that the final weights and optimizer state
equal those of an uninterrupted run bit for bit, and that no ``.partial`` file is left.

Outside the test suite (it takes minutes); ``tests/training/test_kill_resume.py`` is its short
version. Example:

    .venv/bin/python scripts/soak_kill_resume.py --kills 40 --objective adv

Exit status 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from robustattr.checkpoints import latest_checkpoint, list_checkpoints, load_checkpoint, load_optimizer_state


def _train(config: Path, run: Path, steps: int, *, resume: bool) -> subprocess.Popen:
    argv = [sys.executable, "-m", "robustattr", "train", str(config), "--set", f"model_dir={run}",
            "--set", f"max_num_training_steps={steps}"]
    if resume:
        argv += ["--set", "continue_train=true"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _same_state(a: Path, b: Path) -> list[str]:
    """Differences between the latest checkpoints of two runs (empty: bit-identical)."""
    (wa, ma), (wb, mb) = load_checkpoint(a), load_checkpoint(b)
    problems = [] if ma["step"] == mb["step"] else [f"steps {ma['step']} != {mb['step']}"]
    problems += [f"weights {k}" for k in wb if not torch.equal(wa[k], wb[k])]
    oa, ob = load_optimizer_state(latest_checkpoint(a))["state"], load_optimizer_state(latest_checkpoint(b))["state"]
    problems += [f"optimizer {i}.{s}" for i in ob for s in ob[i] if not torch.equal(torch.as_tensor(oa[i][s]),
                                                                                   torch.as_tensor(ob[i][s]))]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--objective", default="nat", choices=("nat", "adv", "ar", "adv_ar"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--data-root", help="dataset cache (default $ROBUSTATTR_DATA)")
    parser.add_argument("--workdir", help="where the runs go (default a temporary folder)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="soak-kill-resume-"))
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.json"
    loss = {"nat": "xent", "adv": "xent", "ar": "ar_approx", "adv_ar": "adv_ar_approx"}[args.objective]
    config.write_text(json.dumps({
        "dataset": "mnist", "device": "cpu", "data_root": args.data_root, "training_batch_size": 10,
        "training_objective": args.objective, "loss_func": loss, "m": 4, "approx_factor": 2, "num_steps": 3,
        "step_size": 0.05, "num_checkpoint_steps": 2, "num_output_steps": 1, "keep_checkpoints": 2}))
    run, straight = work / "killed", work / "straight"
    mid_write = 0
    for kill in range(args.kills):
        proc = _train(config, run, 10**6, resume=(run / "config.json").exists())
        deadline = time.monotonic() + 300
        if kill % 3 == 2:  # wait for a checkpoint write to be under way
            while not any(run.glob(".checkpoint-*.partial")) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
        else:
            time.sleep(rng.uniform(2.5, 8.0))  # start-up takes ~2 s on a CPU
        if proc.poll() is not None:
            print(f"kill {kill}: the run ended by itself: {proc.communicate()[1][-500:]}")
            return 1
        proc.kill()
        proc.communicate()
        mid_write += any(run.glob(".checkpoint-*.partial"))
        print(f"kill {kill + 1}/{args.kills}: checkpoints {list_checkpoints(run)}", flush=True)
    target = max(list_checkpoints(run), default=0) + 5
    for folder, resume in ((run, True), (straight, False)):
        proc = _train(config, folder, target, resume=resume)
        if proc.wait() != 0:
            print(f"training {folder} failed: {proc.communicate()[1][-2000:]}")
            return 1
    problems = _same_state(run, straight)
    if list(run.glob(".*.partial")):
        problems.append(f"partial files left: {sorted(p.name for p in run.glob('.*.partial'))}")
    print(f"{args.kills} kills ({mid_write} left a half-written checkpoint behind), resumed to step {target}: "
          + ("bit-identical to the uninterrupted run" if not problems else "DIFFERENT: " + ", ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
