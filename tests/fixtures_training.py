"""Fixtures for trained runs (owned by the training layer).

``natural_mnist_run``: a run directory (``config.json``, checkpoints, ``metrics.jsonl``) of the MNIST
CNN trained NATURALLY on real MNIST for 300 steps (Adam 1e-4, batch 50, CPU), once per session. It
reaches about 92% test accuracy. Load it with ``load_run_or_config(run_dir)`` and
``robustattr.checkpoints.load_run_model(cfg)``.

``tiny_config``: writes a config for a run of seconds (3 steps of batch 10, evaluations of a few
images with one-step attacks), for tests of the run directory's machinery rather than of learning.
``wait_for_checkpoint(proc, run_dir)``: wait until a training subprocess has written a checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

__all__ = ["natural_mnist_run", "NATURAL_MNIST_STEPS", "TINY_MNIST", "tiny_config", "write_tiny_config",
           "wait_for_checkpoint"]

NATURAL_MNIST_STEPS = 300
TINY_MNIST = {"dataset": "mnist", "device": "cpu", "training_batch_size": 10, "max_num_training_steps": 3,
              "num_checkpoint_steps": 3, "num_output_steps": 1, "num_eval_examples": 8,
              "num_adversarial_examples": 4, "num_steps": 1, "num_attribution_examples": 2,
              "attribution_attack_steps": 1, "attribution_attack_times": 1, "num_IG_steps": 4}


def write_tiny_config(path: Path, data_root: Path, **overrides: Any) -> Path:
    """Write :data:`TINY_MNIST` (with ``data_root`` and ``overrides``) to ``path``; return ``path``."""
    path.write_text(json.dumps({**TINY_MNIST, "data_root": str(data_root), **overrides}))
    return path


@pytest.fixture
def tiny_config(tmp_path: Path, mnist_root: Path) -> Callable[..., Path]:
    """``tiny_config(**overrides)`` writes a :data:`TINY_MNIST` config into ``tmp_path``."""
    return lambda **overrides: write_tiny_config(tmp_path / "tiny.json", mnist_root, **overrides)


def wait_for_checkpoint(proc: subprocess.Popen, run_dir: Path, timeout: float = 120.0) -> None:
    """Return once ``run_dir`` holds a complete checkpoint; fail if ``proc`` ends or time runs out."""
    from robustattr.checkpoints import list_checkpoints

    deadline = time.monotonic() + timeout
    while not list_checkpoints(run_dir):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


@pytest.fixture(scope="session")
def natural_mnist_run(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    """Path of a NATURAL MNIST run trained for ``NATURAL_MNIST_STEPS`` steps (checkpoint at the end)."""
    from robustattr.config import load_config
    from robustattr.training import train

    run_dir = tmp_path_factory.mktemp("natural-mnist-run")
    cfg = load_config(None, base={
        "dataset": "mnist", "training_objective": "nat", "data_root": str(mnist_root), "model_dir": str(run_dir),
        "device": "cpu", "max_num_training_steps": NATURAL_MNIST_STEPS, "num_checkpoint_steps": NATURAL_MNIST_STEPS,
        "num_output_steps": 100, "training_batch_size": 50, "optimizer": "adam", "learning_rate": 1e-4,
    })
    train(cfg, progress=False)
    return run_dir
