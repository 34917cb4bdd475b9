"""LGA (Joo et al., AAAI 2023, local gradient alignment): CE plus a gradient-alignment term, no inner
maximisation — the cheapest of the attribution-robust objectives.

Gradient variant (``lga_variant=gradient``): x′ = clip(x + z), z ~ U(−ε, ε), and
    CE(f(x), y) + λ_l2·‖g(x) − g(x′)‖² + λ_cos·(1 − cos(g(x), g(x′)))/2
with g = ∇ₓ f_y the input gradient of the true-class logit, g(x) a constant (detached, the authors'
default; ``lga_detach_source_grad=false`` differentiates it too, their other setting) and g(x′)
differentiated to second order.

Hessian variant (``lga_variant=hessian``): CE(f(x), y) + λ_h·‖∇ₓ(vᵀ∇ₓ f_y(x))‖², v ~ N(0, I), a
Hessian-vector product, on the softplus surrogate (a ReLU network's Hessian is zero almost
everywhere). To keep the public ``regularizer(model, x, x_adv, y)`` deterministic, v travels as
x′ = x + v (unclipped): the regulariser reads v = x′ − x.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustattr import keys
from robustattr.training.objectives._base import (
    LossOut, ObjectiveParams, accuracy, cross_entropy, loss_cross_entropy, per_example_mean, weight_decay_share,
)
from robustattr.training.objectives._successors import (
    Smooth, cosine, gaussian_from_uniform, logit_gradient, reduce_examples, uniform_draw,
)
from robustattr.training.objectives.registry import ObjectiveInfo, objective_key, register_objective

__all__ = ["LGAParams", "lga", "lga_regularizer", "lga_point"]


@dataclass(frozen=True)
class LGAParams:
    variant: str = objective_key("gradient", "LGA's regulariser: gradient (l2 + cosine alignment of the input "
                                 "gradient at x and x+z, z ~ U(-epsilon, epsilon)) or hessian (||H v||^2, v ~ N(0, I))",
                                 keys.choice("gradient", "hessian"), key="lga_variant")
    lam_l2: float = objective_key(0.1, "LGA's weight of ||g(x) - g(x+z)||^2", keys.FLOAT, keys.NONNEG)
    lam_cos: float = objective_key(1.0, "LGA's weight of (1 - cos(g(x), g(x+z)))/2", keys.FLOAT, keys.NONNEG)
    lam_hessian: float = objective_key(1.0, "LGA's weight of ||grad_x(v . grad_x f_y)||^2 (lga_variant=hessian)",
                                       keys.FLOAT, keys.NONNEG)
    detach_source: bool = objective_key(
        True, "LGA (gradient variant): treat g(x) as a constant, as the authors' default "
        "(detach_source_grad); false differentiates both gradients", keys.BOOL, key="lga_detach_source_grad")


def lga_point(x: Tensor, params: ObjectiveParams, variant: str) -> Tensor:
    """x′ of one step: clip(x + U(−ε, ε)) (gradient variant) or x + N(0, I) (Hessian variant: v = x′ − x),
    both from the step's one U(−ε, ε) draw (``_successors``)."""
    u = uniform_draw(x, params.epsilon, params)
    if variant == "hessian":
        return x + gaussian_from_uniform(u, params.epsilon)
    return (x + u).clamp(*params.bounds)


def lga_regularizer(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, hp: LGAParams) -> Tensor:
    """The weighted LGA term per example, (B,), differentiable w.r.t. the parameters.

    Gradient variant: λ_l2·‖g(x) − g(x′)‖² + λ_cos·(1 − cos(g(x), g(x′)))/2, g(x) detached unless
    ``hp.detach_source`` is false.
    Hessian variant: λ_h·‖∇ₓ(vᵀ∇ₓ f_y(x))‖² with v = x′ − x, on the softplus surrogate.
    """
    if hp.variant == "hessian":
        smooth = Smooth(model)
        v = (x_adv - x).detach()
        leaf = x.detach().requires_grad_(True)
        grad, _ = logit_gradient(smooth, leaf, y, create_graph=True)
        (hv,) = torch.autograd.grad((grad * v).sum(), leaf, create_graph=True)
        return hp.lam_hessian * hv.flatten(1).square().sum(1)
    # With g(x) a constant the update is not the gradient of any one function of the weights (the
    # target moves with them); differentiating both makes it one (docs/objectives.md, LGA).
    clean, _ = logit_gradient(model, x.detach(), y, create_graph=not hp.detach_source)
    moved, _ = logit_gradient(model, x_adv.detach(), y, create_graph=True)
    diff = (clean - moved).flatten(1).square().sum(1)
    return hp.lam_l2 * diff + hp.lam_cos * (1.0 - cosine(clean, moved)) / 2.0


def lga(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> LossOut:
    """CE(f(x), y) + Σ LGA term (+ wd·Σ‖w‖²/2); the gradient variant logs ``adv_*`` of its x′ (noise,
    not an attack), the Hessian variant none (its x + v is no image).

    Args:
        x: (B, C, H, W) float in ``params.bounds``; y: (B,) int64.
    """
    hp = params.hyper or LGAParams()
    x_adv = lga_point(x, params, hp.variant)
    logits = model(x)
    ce = loss_cross_entropy(logits, y, params)
    reg = reduce_examples(lga_regularizer(model, x, x_adv, y, hp), params)
    loss = ce + reg + weight_decay_share(model, x, params)
    logs = {"loss": loss.detach(), "nat_acc": accuracy(logits, y),
            "nat_loss": per_example_mean(ce, x.shape[0], params)}
    if hp.variant == "gradient":
        with torch.no_grad():
            adv_logits = model(x_adv)
        logs.update(adv_acc=accuracy(adv_logits, y), adv_loss=cross_entropy(adv_logits, y, "mean"))
    return LossOut(loss, {**logs, "reg": reg.detach()})


# uses_inner_attack: LGA maximises nothing, but it draws one U(−ε, ε) per step exactly as a PGD
# start does; declaring it makes the data-parallel loop share that draw among the ranks.
register_objective(ObjectiveInfo(
    order=12, name="lga", slug="lga", display="LGA", function=lga, uses_inner_attack=False, draws_noise=True,
    params=LGAParams,
    loss_class="LGA", aliases=("local-gradient-alignment",),
    reference="Joo et al., AAAI 2023 (local gradient alignment)", paper_steps=100_000,
))
