"""IG-SUM-NORM: adversarial cross-entropy plus β·‖IG(x, x')‖₁, no clean term (spec §3.2, §10.16)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robustattr.training.objectives._base import (
    LossOut, ObjectiveParams, accuracy, adversarial, cross_entropy, regularizer, weight_decay_term,
)


def ig_sum_norm(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> LossOut:
    """Σ CE(f(x'), y) + β·‖IG(x, x')‖₁ (+ wd·Σ‖w‖²/2), β = ``params.lam``, IG over all m points.

    x' = PGD(x) with ``params.loss_func`` (the configs use ``adv_ar_approx``).

    Args:
        x: (B, C, H, W) float in ``params.bounds``; y: (B,) int64.
    """
    x_adv = adversarial(model, x, y, params)
    adv_logits = model(x_adv)
    adv_ce = cross_entropy(adv_logits, y, params.reduction)
    reg = regularizer(model, x, x_adv, y, params)
    loss = adv_ce + params.lam * reg + weight_decay_term(model, params)
    with torch.no_grad():
        nat_logits = model(x)
    per_example = x.shape[0] if params.reduction == "sum" else 1
    return LossOut(loss, {
        "loss": loss.detach(),
        "nat_acc": accuracy(nat_logits, y),
        "nat_loss": cross_entropy(nat_logits, y, "mean"),
        "adv_acc": accuracy(adv_logits, y),
        "adv_loss": adv_ce.detach() / per_example,
        "ig": reg.detach(),
    })
