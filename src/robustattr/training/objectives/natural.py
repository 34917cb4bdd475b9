"""NATURAL training: the cross-entropy of the clean batch (spec §3.2, ``train_nat.py``)."""

from __future__ import annotations

from torch import Tensor, nn

from robustattr.training.objectives._base import (
    LossOut, ObjectiveParams, accuracy, cross_entropy, weight_decay_term,
)


def natural(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> LossOut:
    """Σ (or mean) CE(f(x), y) + wd·Σ‖w‖²/2.

    Args:
        x: (B, C, H, W) float in ``params.bounds``; y: (B,) int64.
    """
    logits = model(x)
    ce = cross_entropy(logits, y, params.reduction)
    loss = ce + weight_decay_term(model, params)
    mean_ce = ce.detach() / x.shape[0] if params.reduction == "sum" else ce.detach()
    return LossOut(loss, {"loss": loss.detach(), "nat_acc": accuracy(logits, y), "nat_loss": mean_ce})
