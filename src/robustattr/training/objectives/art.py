"""ART (Singh et al., ECCV 2020, attributional robustness training):
CE(f(x′), y) + γ·softplus(d_ap − d_an).

d(x, c) = 1 − cos(x, ∇ₓ g_c(x)) is the distance between an image and its gradient map for class c,
on the softplus surrogate g (same weights). d_ap is the true class's, the larger of its values at
x and x′ (the hardest positive); d_an that of the strongest other class j* = argmax_{j≠y} f_j(x)
(clean logits), the smaller of its values at x and x′ (the hardest negative). x′ comes from ART's
alignment attack: from x + U(−ε, ε), ``art_steps`` sign steps of size ``art_step_size`` that ascend
d(x′, y), each moving only the ``art_top_k`` pixels of largest |gradient| (its own keys: the
shared ``num_steps`` / ``step_size`` remain those of the PGD evaluation). The triplet term keeps
its graph through the gradient maps (double backprop on the surrogate).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustattr import keys
from robustattr.attacks.successors import alignment_attack, alignment_distance
from robustattr.training.objectives._base import (
    LossOut, ObjectiveParams, accuracy, cross_entropy, loss_cross_entropy, per_example_mean, weight_decay_share,
)
from robustattr.training.objectives._successors import Smooth, reduce_examples, uniform_draw
from robustattr.training.objectives.registry import ObjectiveInfo, objective_key, register_objective

__all__ = ["ARTParams", "art", "art_regularizer", "strongest_other_class"]


@dataclass(frozen=True)
class ARTParams:
    gamma: float = objective_key(1.0, "ART's weight gamma of softplus(d_ap - d_an)", keys.FLOAT, keys.NONNEG)
    top_k: int = objective_key(200, "pixels each step of ART's alignment attack moves (the largest |gradient|)",
                               keys.INT, keys.ONE, key="art_top_k")
    steps: int = objective_key(3, "sign steps of ART's alignment attack (num_steps stays the PGD evaluation's)",
                               keys.INT, keys.NONNEG, key="art_steps")
    step_size: float = objective_key(0.1, "step size of ART's alignment attack, pixel units", keys.FLOAT, keys.POS,
                                     key="art_step_size")


def strongest_other_class(logits: Tensor, y: Tensor) -> Tensor:
    """argmax_{j≠y} logits_j per example: (B, C), (B,) → (B,) int64."""
    return logits.detach().masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).argmax(1)


def art_regularizer(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, gamma: float,
                    negative: Tensor | None = None) -> Tensor:
    """γ·softplus(max(d(x, y), d(x′, y)) − min(d(x, j*), d(x′, j*))) per example, (B,).

    Args:
        x, x_adv: (B, C, H, W); y: (B,) int64.
        negative: j* (B,); by default the strongest other class of ``model``'s clean logits.
    """
    if negative is None:
        with torch.no_grad():
            negative = strongest_other_class(model(x), y)
    smooth = Smooth(model)
    both = torch.cat([x.detach(), x_adv.detach()])
    d_pos = alignment_distance(smooth, both, torch.cat([y, y]), create_graph=True).view(2, -1)
    d_neg = alignment_distance(smooth, both, torch.cat([negative, negative]), create_graph=True).view(2, -1)
    return gamma * F.softplus(d_pos.amax(0) - d_neg.amin(0))


def art(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> LossOut:
    """CE(f(x′), y) + γ·Σ softplus(d_ap − d_an) (+ wd·Σ‖w‖²/2), x′ from ART's alignment attack.

    Args:
        x: (B, C, H, W) float in ``params.bounds``; y: (B,) int64.
    """
    hp = params.hyper or ARTParams()
    with torch.no_grad():
        nat_logits = model(x)
    start = x + uniform_draw(x, params.epsilon, params) if params.random_start else x
    x_adv = alignment_attack(Smooth(model), x, y, start, params.epsilon, hp.steps, hp.step_size, hp.top_k,
                             params.bounds)
    adv_logits = model(x_adv)
    adv_ce = loss_cross_entropy(adv_logits, y, params)
    reg_each = art_regularizer(model, x, x_adv, y, hp.gamma, negative=strongest_other_class(nat_logits, y))
    reg = reduce_examples(reg_each, params)
    loss = adv_ce + reg + weight_decay_share(model, x, params)
    return LossOut(loss, {
        "loss": loss.detach(), "nat_acc": accuracy(nat_logits, y), "nat_loss": cross_entropy(nat_logits, y, "mean"),
        "adv_acc": accuracy(adv_logits, y), "adv_loss": per_example_mean(adv_ce, x.shape[0], params),
        "reg": reg.detach(),
    })


register_objective(ObjectiveInfo(
    order=14, name="art", slug="art", display="ART", function=art, uses_inner_attack=True, params=ARTParams,
    loss_class="ART", aliases=("attributional-robustness-training",),
    reference="Singh et al., ECCV 2020 (attributional robustness training, arXiv:1911.13073)", paper_steps=100_000,
))
