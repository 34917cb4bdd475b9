"""SIGKILL, again and again, some of them in the middle of a checkpoint write: every restart resumes,
the stale ``.partial`` files go, and the final weights and optimizer state equal an uninterrupted
run's bit for bit. (``scripts/soak_kill_resume.py`` does the same with many more kills.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from robustattr.checkpoints import latest_checkpoint, list_checkpoints, load_checkpoint, load_optimizer_state

@pytest.fixture
def config_file(tiny_config) -> Path:
    return tiny_config(num_checkpoint_steps=2, keep_checkpoints=2)


def _start(config_file: Path, run: Path) -> subprocess.Popen:
    argv = ["train", config_file, "--set", f"model_dir={run}", "--set", "max_num_training_steps=100000"]
    if (run / "config.json").exists():
        argv += ["--set", "continue_train=true"]
    return subprocess.Popen([sys.executable, "-m", "robustattr", *map(str, argv)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.001)
    proc.kill()
    proc.communicate()


def _train_to(config_file: Path, run: Path, steps: int, *sets: str) -> None:
    argv = ["train", config_file, "--set", f"model_dir={run}", "--set", f"max_num_training_steps={steps}", *sets]
    done = subprocess.run([sys.executable, "-m", "robustattr", *map(str, argv)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_sigkill_loop_resumes_to_the_uninterrupted_weights(config_file, tmp_path) -> None:
    run, straight = tmp_path / "killed", tmp_path / "straight"
    kills, left_partial = 0, False
    while kills < 3 or (not left_partial and kills < 8):
        proc = _start(config_file, run)
        before = max(list_checkpoints(run), default=-1)
        if kills % 2 == 0:  # mid-write: the checkpoint's temporary file exists
            _kill_when(proc, lambda: any(run.glob(".checkpoint-*.partial")))
            left_partial |= any(run.glob(".checkpoint-*.partial"))
        else:  # between writes, once a new checkpoint is complete
            _kill_when(proc, lambda: max(list_checkpoints(run), default=-1) > before)
        kills += 1
    target = max(list_checkpoints(run), default=0) + 3
    # Both finish in a 1-thread child as the killed runs did: a CPU's float results may depend on
    # the thread count, and bit-equality is only promised for the same arithmetic.
    _train_to(config_file, run, target, "--set", "continue_train=true")
    _train_to(config_file, straight, target)
    assert not list(run.glob(".*.partial"))  # the restarts removed what the kills left
    (weights_a, meta_a), (weights_b, meta_b) = load_checkpoint(run), load_checkpoint(straight)
    assert meta_a["step"] == meta_b["step"] == target
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_b)
    optim_a = load_optimizer_state(latest_checkpoint(run))["state"]
    optim_b = load_optimizer_state(latest_checkpoint(straight))["state"]
    assert all(torch.equal(optim_a[i][slot], optim_b[i][slot]) for i in optim_b for slot in optim_b[i])
