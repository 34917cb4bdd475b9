"""Fixtures for trained runs (owned by the training layer).

``natural_mnist_run``: a run directory (``config.json``, checkpoints, ``metrics.jsonl``) of the MNIST
CNN trained NATURALLY on real MNIST for 300 steps (Adam 1e-4, batch 50, CPU), once per session. It
reaches about 92% test accuracy. Load it with ``load_run_or_config(run_dir)`` and
``robustattr.checkpoints.load_run_model(cfg)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["natural_mnist_run", "NATURAL_MNIST_STEPS"]

NATURAL_MNIST_STEPS = 300


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
