"""IG-SUM-NORM: adversarial cross-entropy plus β·‖IG(x, x')‖₁, no clean term (spec §3.2, §10.16)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robustattr.training.objectives.registry import ObjectiveInfo, register_objective
from robustattr.training.objectives._base import (
    LossOut, ObjectiveParams, accuracy, adversarial, cross_entropy, loss_cross_entropy, per_example_mean,
    regularizer, weight_decay_share,
)


def ig_sum_norm(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> LossOut:
    """Σ CE(f(x'), y) + β·‖IG(x, x')‖₁ (+ wd·Σ‖w‖²/2), β = ``params.lam``, IG over all m points.

    x' = PGD(x) with ``params.loss_func`` (the configs use ``adv_ar_approx``).

    Args:
        x: (B, C, H, W) float in ``params.bounds``; y: (B,) int64.
    """
    x_adv = adversarial(model, x, y, params)
    adv_logits = model(x_adv)
    adv_ce = loss_cross_entropy(adv_logits, y, params)
    reg = regularizer(model, x, x_adv, y, params)
    loss = adv_ce + params.lam * reg + weight_decay_share(model, x, params)
    with torch.no_grad():
        nat_logits = model(x)
    return LossOut(loss, {
        "loss": loss.detach(),
        "nat_acc": accuracy(nat_logits, y),
        "nat_loss": cross_entropy(nat_logits, y, "mean"),
        "adv_acc": accuracy(adv_logits, y),
        "adv_loss": per_example_mean(adv_ce, x.shape[0], params),
        "ig": reg.detach(),
    })


register_objective(ObjectiveInfo(
    order=3, name="adv_ar", slug="ig-sum-norm", display="IG-SUM-NORM", function=ig_sum_norm, uses_inner_attack=True,
    loss_class="IGSumNorm", aliases=("adv_ar",), reference="Chen et al., NeurIPS 2019, eq. 6 (train_adv_ar.py)",
    large_dataset_reduction="sum",
))
