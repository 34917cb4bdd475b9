"""Optimizers and learning-rate schedules of the original (spec §3.4)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from robustattr.errors import UserInputError

__all__ = ["PiecewiseConstant", "build_optimizer", "epsilon_at", "learning_rate_at"]


class PiecewiseConstant:
    """TF ``piecewise_constant`` as the original builds it from ``step_size_schedule``.

    ``[[0, v0], [b1, v1], [b2, v2]]`` → v0 for s ≤ b1, v1 for b1 < s ≤ b2, v2 for s > b2, where s is the
    global step *before* the update (the number of updates done so far); the first entry's step is
    ignored, as in the original.
    """

    def __init__(self, schedule: Sequence[Sequence[float]]) -> None:
        if not schedule:
            raise UserInputError("step_size_schedule is empty; give a list of [step, learning_rate] pairs")
        self.boundaries = [int(step) for step, _ in schedule][1:]
        self.values = [float(lr) for _, lr in schedule]
        if self.boundaries != sorted(self.boundaries):
            raise UserInputError(f"step_size_schedule steps must increase, got {[int(s) for s, _ in schedule]}")

    def __call__(self, step: int) -> float:
        # bisect_left counts the boundaries strictly below `step`: s == b stays in the earlier piece.
        return self.values[bisect.bisect_left(self.boundaries, step)]


def epsilon_at(cfg: Any, step: int) -> float:
    """Training PGD's radius for the update that follows ``step`` completed updates.

    With ``epsilon_ramp_steps`` = R > 0 it is ε·(step + 1)/R until it reaches ε (a warm-up that short
    robust-training budgets use: at the full radius from the start, training can collapse to a
    constant prediction); R = 0 is the paper's constant ε. A function of the step only, so a
    resumed run continues the ramp exactly.
    """
    ramp = int(getattr(cfg, "epsilon_ramp_steps", 0) or 0)
    epsilon = float(cfg.epsilon)
    return epsilon if ramp <= 0 else epsilon * min(1.0, (step + 1) / ramp)


def learning_rate_at(cfg: Any, step: int) -> float:
    """Learning rate of the update that follows ``step`` completed updates.

    Adam: ``learning_rate`` (the paper's constant rate), or ``learning_rate_schedule`` when set (a
    decay for short budgets; read like ``step_size_schedule``). Momentum: ``step_size_schedule``.
    A function of the step only, so a resumed run continues the schedule exactly.
    """
    if cfg.optimizer == "adam":
        schedule = getattr(cfg, "learning_rate_schedule", None)
        return float(cfg.learning_rate) if not schedule else PiecewiseConstant(schedule)(step)
    return PiecewiseConstant(cfg.step_size_schedule)(step)


def _fused(make: Any, params: list[torch.nn.Parameter], **kw: Any) -> torch.optim.Optimizer:
    # The fused kernels are the same update in one pass over memory: ~15x faster than the per-tensor
    # loop for Adam on CPU (3.3M MNIST-CNN parameters: 5 ms vs 90 ms). Not every device has them.
    try:
        return make(params, fused=True, **kw)
    except (RuntimeError, ValueError, TypeError):
        return make(params, **kw)


def build_optimizer(cfg: Any, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """``adam``: Adam(lr=learning_rate, β=(0.9, 0.999), eps=1e-8), TF's defaults.
    ``momentum``: heavy-ball SGD (dampening 0, not Nesterov) = TF's MomentumOptimizer; its lr is set by
    the loop before every update from the piecewise schedule. Weight decay is never the optimizer's: it
    is a loss term on weights only (objectives._base.weight_decay_term)."""
    params = list(params)
    if cfg.optimizer == "adam":
        return _fused(torch.optim.Adam, params, lr=float(cfg.learning_rate), betas=(0.9, 0.999), eps=1e-8)
    if cfg.optimizer == "momentum":
        return _fused(torch.optim.SGD, params, lr=learning_rate_at(cfg, 0), momentum=float(cfg.momentum),
                      dampening=0.0, nesterov=False, weight_decay=0.0)
    raise UserInputError(f"optimizer='{cfg.optimizer}' is unknown; choose from adam, momentum")
