"""Madry et al.'s PGD adversarial training: CE of the PGD examples only, no clean term (spec §3.2, §10.16)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robustattr.training.objectives.registry import ObjectiveInfo, register_objective
from robustattr.training.objectives._base import (
    LossOut, ObjectiveParams, accuracy, adversarial, cross_entropy, loss_cross_entropy, per_example_mean,
    weight_decay_share,
)


def madry(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> LossOut:
    """Σ (or mean) CE(f(x'), y) + wd·Σ‖w‖²/2 with x' = PGD(x) under ``params.loss_func``.

    Args:
        x: (B, C, H, W) float in ``params.bounds``; y: (B,) int64.
    """
    x_adv = adversarial(model, x, y, params)
    adv_logits = model(x_adv)
    adv_ce = loss_cross_entropy(adv_logits, y, params)
    loss = adv_ce + weight_decay_share(model, x, params)
    with torch.no_grad():  # for the logs only: one forward against the 41 of the step
        nat_logits = model(x)
    return LossOut(loss, {
        "loss": loss.detach(),
        "nat_acc": accuracy(nat_logits, y),
        "nat_loss": cross_entropy(nat_logits, y, "mean"),
        "adv_acc": accuracy(adv_logits, y),
        "adv_loss": per_example_mean(adv_ce, x.shape[0], params),
    })


register_objective(ObjectiveInfo(
    order=1, name="adv", slug="madry", display="Madry", function=madry, uses_inner_attack=True, loss_class="Madry",
    aliases=("adv", "pgd", "madry-pgd"), reference="Madry et al., ICLR 2018 (train_adv.py)",
))
