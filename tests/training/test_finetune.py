"""IG-NORM really regularises: fine-tuning the NATURAL run with IG-NORM lowers the IG term on held-out
test images (against the same PGD, fixed seed), well below continuing NATURAL training for as long.

The fine-tune uses momentum SGD, not a fresh Adam: Adam's first bias-corrected steps move every weight
by about ±lr whatever its gradient, which over 24 steps is mostly noise (the effect then flipped sign
between seeds). With SGD, batch 24, m=2: IG-NORM/before 0.61-0.77 and IG-NORM/NATURAL 0.61-0.84 over
seeds 1-6, accuracy 81-86% (NATURAL 91-96%), measured on one CPU thread."""

from __future__ import annotations

import pytest

from pathlib import Path

import torch

from robustattr import data
from robustattr.attacks import pgd
from robustattr.attribution import ig_regularizer
from robustattr.checkpoints import load_run_model
from robustattr.config import load_config, load_run_or_config
from robustattr.training import train

EPS = 0.1


def _ig_term(run_dir: Path, x: torch.Tensor, y: torch.Tensor) -> float:
    """‖IG(x, x')‖₁ over the batch, x' = PGD on the approximate IG term from a fixed random start."""
    model, _ = load_run_model(load_run_or_config(run_dir, ["device=cpu"]))
    x_adv = pgd(model, x, y, EPS, 10, EPS / 10, loss="ar_approx", n_steps=10, approx_factor=5,
                generator=torch.Generator().manual_seed(0))
    return ig_regularizer(model, x, x_adv, y, 10).item()


def _fine_tune(objective: str, init: Path, run_dir: Path, mnist_root: Path) -> None:
    cfg = load_config(None, base={
        "dataset": "mnist", "training_objective": objective, "init_from": str(init), "model_dir": str(run_dir),
        "data_root": str(mnist_root), "device": "cpu", "max_num_training_steps": 24, "training_batch_size": 24,
        "optimizer": "momentum", "momentum": 0.9, "step_size_schedule": [[0, 3e-5]], "weight_decay": 0.0,
        "m": 2, "approx_factor": 2, "loss_func": "ar_approx", "lambda": 1.0, "random_seed": 1, "np_random_seed": 1,
        "epsilon": EPS, "num_steps": 3, "step_size": EPS / 4, "num_checkpoint_steps": 24, "num_output_steps": 8,
    })
    summary = train(cfg, progress=False)
    assert summary["steps"] == 24 and summary["resumed_from"] is None


@pytest.mark.slow
def test_ig_norm_fine_tune_lowers_the_ig_term_on_test_images(natural_mnist_run, mnist_root, tmp_path) -> None:
    x, y = data.load("mnist", "test", root=mnist_root).batch(slice(0, 100))
    before = _ig_term(natural_mnist_run, x, y)
    _fine_tune("ar", natural_mnist_run, tmp_path / "ig_norm", mnist_root)
    _fine_tune("nat", natural_mnist_run, tmp_path / "natural", mnist_root)
    ig_norm, natural = _ig_term(tmp_path / "ig_norm", x, y), _ig_term(tmp_path / "natural", x, y)
    # Seed 1 here: before 935, IG-NORM 624, NATURAL 834.
    assert ig_norm < 0.85 * before, (before, ig_norm)
    assert ig_norm < 0.9 * natural, (natural, ig_norm)
    model, meta = load_run_model(load_run_or_config(tmp_path / "ig_norm", ["device=cpu"]))
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.7  # still a classifier, not a flat function
    assert meta["step"] == 24


@pytest.mark.slow
def test_natural_fixture_is_accurate(natural_mnist_run, mnist_root) -> None:
    model, meta = load_run_model(load_run_or_config(natural_mnist_run, ["device=cpu"]))
    x, y = data.load("mnist", "test", root=mnist_root).batch(slice(0, 2000))
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert meta["step"] == 300 and accuracy > 0.9, accuracy
