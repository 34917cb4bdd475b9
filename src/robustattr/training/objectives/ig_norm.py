"""IG-NORM: clean cross-entropy plus λ·‖IG(x, x')‖₁ with x' from PGD on the IG term (spec §3.2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robustattr.training.objectives.registry import ObjectiveInfo, register_objective
from robustattr.training.objectives._base import (
    LossOut, ObjectiveParams, accuracy, adversarial, cross_entropy, loss_cross_entropy, per_example_mean,
    regularizer, weight_decay_share,
)


def ig_norm(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> LossOut:
    """Σ CE(f(x), y) + λ·‖IG(x, x')‖₁ (+ wd·Σ‖w‖²/2), IG over all m points.

    x' = PGD(x) with ``params.loss_func`` (the configs use ``ar_approx``: m/approx_factor points).
    The logged ``ig`` is the full-m term of this update, what the original printed.

    Args:
        x: (B, C, H, W) float in ``params.bounds``; y: (B,) int64.
    """
    x_adv = adversarial(model, x, y, params)
    logits = model(x)
    ce = loss_cross_entropy(logits, y, params)
    reg = regularizer(model, x, x_adv, y, params)
    loss = ce + params.lam * reg + weight_decay_share(model, x, params)
    with torch.no_grad():
        adv_logits = model(x_adv)
    return LossOut(loss, {
        "loss": loss.detach(),
        "nat_acc": accuracy(logits, y),
        "nat_loss": per_example_mean(ce, x.shape[0], params),
        "adv_acc": accuracy(adv_logits, y),
        "adv_loss": cross_entropy(adv_logits, y, "mean"),
        "ig": reg.detach(),
    })


register_objective(ObjectiveInfo(
    order=2, name="ar", slug="ig-norm", display="IG-NORM", function=ig_norm, uses_inner_attack=True, loss_class="IGNorm",
    aliases=("ar",), reference="Chen et al., NeurIPS 2019, eq. 5 (train_ar.py)", large_dataset_reduction="sum",
))
