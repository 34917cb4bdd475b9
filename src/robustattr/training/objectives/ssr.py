"""SSR (Wang et al., NeurIPS 2020, "Smoothed geometry for robust attribution"):
(1 − α)·CE(f(x), y) + α·s·λ_max(∇²ₓ CE), no inner maximisation.

For a piecewise-linear network the input Hessian of the cross-entropy is W A Wᵀ exactly (almost
everywhere), W the (d × C) input Jacobian of the logits and A = diag(p) − ppᵀ the softmax
covariance. Its largest eigenvalue is computed from a C × C form instead of the d × d one:
A = RᵀR with R = (I − qqᵀ) diag(q), q = √p (I − qqᵀ is a projection, Σp = 1), so the non-zero
eigenvalues of W A Wᵀ = (RWᵀ)ᵀ(RWᵀ) are those of R (WᵀW) Rᵀ, symmetric C × C: ``eigvalsh`` gives it
and its gradient. W costs C backward passes with their graphs (double backprop).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustattr import keys
from robustattr.training.objectives._base import (
    LossOut, ObjectiveParams, accuracy, loss_cross_entropy, per_example_mean, weight_decay_share,
)
from robustattr.training.objectives._successors import reduce_examples
from robustattr.training.objectives.registry import ObjectiveInfo, objective_key, register_objective

__all__ = ["SSRParams", "ssr", "ssr_regularizer", "top_curvature"]

_UNIT_CLOSED = keys.rule(lambda v, r: 0 <= v <= 1, "must be in [0, 1]")


@dataclass(frozen=True)
class SSRParams:
    alpha: float = objective_key(0.3, "SSR's alpha in (1 - alpha)*CE + alpha*scale*lambda_max (authors: 0.3 on "
                                 "CIFAR-10)", keys.FLOAT, _UNIT_CLOSED, key="ssr_alpha")
    scale: float = objective_key(1.0, "SSR's scale s of the largest Hessian eigenvalue", keys.FLOAT, keys.NONNEG,
                                 key="ssr_scale")


def top_curvature(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """(λ_max(W A Wᵀ) per example (B,), the logits (B, C)), both with their graphs.

    Args:
        model: (N, C_in, H, W) → logits (N, C); x: (B, C_in, H, W).
    """
    leaf = x.detach().requires_grad_(True)
    logits = model(leaf)
    classes = logits.shape[1]
    # W's rows one class at a time: each logit depends on its own example only, so the gradient of
    # the batch sum of class c is every example's ∇ₓ f_c.
    rows = [torch.autograd.grad(logits[:, c].sum(), leaf, create_graph=True)[0].flatten(1) for c in range(classes)]
    jac = torch.stack(rows, dim=1)  # (B, C, d)
    gram = jac @ jac.transpose(1, 2)  # (B, C, C) = WᵀW
    q = torch.exp(0.5 * F.log_softmax(logits, dim=1))  # √p, stable
    eye = torch.eye(classes, dtype=x.dtype, device=x.device)
    r = (eye - q.unsqueeze(2) * q.unsqueeze(1)) * q.unsqueeze(1)  # (I − qqᵀ) diag(q)
    form = r @ gram @ r.transpose(1, 2)
    form = 0.5 * (form + form.transpose(1, 2))  # exact symmetry for eigvalsh
    return torch.linalg.eigvalsh(form)[:, -1], logits


def ssr_regularizer(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, alpha: float, scale: float) -> Tensor:
    """α·s·λ_max of the input Hessian of CE at ``x_adv`` per example, (B,) (SSR has no x′: its loss
    passes x′ = x; ``x`` and ``y`` are unused — the Hessian of CE does not depend on the label)."""
    del x, y
    return alpha * scale * top_curvature(model, x_adv)[0]


def ssr(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> LossOut:
    """(1 − α)·CE(f(x), y) + α·s·Σ λ_max (+ wd·Σ‖w‖²/2).

    Args:
        x: (B, C, H, W) float in ``params.bounds``; y: (B,) int64.
    """
    hp = params.hyper or SSRParams()
    curvature, logits = top_curvature(model, x)
    ce = loss_cross_entropy(logits, y, params)
    reg = reduce_examples(hp.alpha * hp.scale * curvature, params)
    loss = (1.0 - hp.alpha) * ce + reg + weight_decay_share(model, x, params)
    return LossOut(loss, {
        "loss": loss.detach(), "nat_acc": accuracy(logits, y), "nat_loss": per_example_mean(ce, x.shape[0], params),
        "reg": reg.detach(), "lambda_max": curvature.detach().mean(),
    })


register_objective(ObjectiveInfo(
    order=13, name="ssr", slug="ssr", display="SSR", function=ssr, uses_inner_attack=False, params=SSRParams,
    loss_class="SSR", aliases=("smoothed-geometry",),
    reference="Wang et al., NeurIPS 2020 (smoothed geometry, arXiv:2006.06643; train_smooth_cifar.py)",
    paper_steps=100_000,
))
