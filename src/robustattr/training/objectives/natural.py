"""NATURAL training: the cross-entropy of the clean batch (spec §3.2, ``train_nat.py``)."""

from __future__ import annotations

from torch import Tensor, nn

from robustattr.training.objectives.registry import ObjectiveInfo, register_objective
from robustattr.training.objectives._base import (
    LossOut, ObjectiveParams, accuracy, loss_cross_entropy, per_example_mean, weight_decay_share,
)


def natural(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> LossOut:
    """Σ (or mean) CE(f(x), y) + wd·Σ‖w‖²/2.

    Args:
        x: (B, C, H, W) float in ``params.bounds``; y: (B,) int64.
    """
    logits = model(x)
    ce = loss_cross_entropy(logits, y, params)
    loss = ce + weight_decay_share(model, x, params)
    mean_ce = per_example_mean(ce, x.shape[0], params)
    return LossOut(loss, {"loss": loss.detach(), "nat_acc": accuracy(logits, y), "nat_loss": mean_ce})


register_objective(ObjectiveInfo(
    order=0, name="nat", slug="natural", display="NATURAL", function=natural, uses_inner_attack=False,
    aliases=("nat",), reference="standard training (the paper's baseline, train_nat.py)", paper_steps=25_000,
))
