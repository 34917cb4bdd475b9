"""Inner maximisations of the later objectives: TRADES's KL PGD and ART's alignment attack.

Both are L∞ sign-gradient ascents inside the ε-ball ∩ pixel range, like :func:`~robustattr.attacks.pgd`,
but of other quantities, and both take their start point from the caller (the objective owns its
random draws, so that data-parallel shards and resumed runs repeat them):

- :func:`kl_pgd` (Zhang et al., ICML 2019, TRADES): ascend Σ KL(f(x) ‖ f(x′)), f(x)'s softmax a constant.
- :func:`alignment_attack` (Singh et al. 2020, ART): ascend Σ (1 − cos(x′, ∇ₓ′ g_y(x′))) with ``g`` a smooth
  network (the softplus surrogate), each step moving only the k pixels of largest |gradient|.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustattr.attacks._common import attack_mode, input_gradient
from robustattr.attacks.threat_model import check_bounds, check_epsilon, feasible_box
from robustattr.errors import UserInputError

__all__ = ["kl_pgd", "alignment_attack", "alignment_distance"]


def _check(epsilon: float, bounds: tuple[float, float], steps: int) -> tuple[float, tuple[float, float]]:
    if int(steps) < 0:
        raise UserInputError(f"steps={steps} must be >= 0")
    return check_epsilon(epsilon), check_bounds(bounds)


def kl_pgd(model: nn.Module, x: Tensor, start: Tensor, epsilon: float, steps: int, step_size: float,
           bounds: tuple[float, float] = (0.0, 1.0), *, chunk_size: int | None = None) -> Tensor:
    """TRADES's inner maximisation: x′ maximising Σ KL(softmax f(x) ‖ softmax f(x′)) over the ball.

    Args:
        model: (N, C, H, W) → logits; run in eval mode with frozen parameters (restored on return).
        x: (B, C, H, W) natural images inside ``bounds``.
        start: (B, C, H, W) first iterate (TRADES: x + 0.001·N(0, I)); not clipped before the first
            gradient, as the original's start (at x′ = x the KL gradient is zero).
        epsilon, step_size: in x's units; steps: sign steps (0 returns the clipped start).
        chunk_size: examples per gradient evaluation (the loss is a sum over examples).
    Returns:
        (B, C, H, W) detached, |x′ − x|∞ ≤ ε, inside ``bounds``.
    """
    eps, low_high = _check(epsilon, bounds, steps)
    x = x.detach()
    n = x.shape[0]
    chunk = n if not chunk_size or chunk_size >= n else int(chunk_size)
    with attack_mode(model), torch.enable_grad():
        with torch.no_grad():
            target = F.log_softmax(model(x), dim=1)  # the clean distribution, a constant
        lower, upper = feasible_box(x, eps, low_high)
        x_adv = start.detach()
        for _ in range(int(steps)):
            grads = []
            for lo in range(0, n, chunk):
                leaf = x_adv[lo:lo + chunk].detach().requires_grad_(True)
                kl = F.kl_div(F.log_softmax(model(leaf), dim=1), target[lo:lo + chunk], reduction="sum",
                              log_target=True)
                grads.append(input_gradient(kl, leaf))
            grad = grads[0] if len(grads) == 1 else torch.cat(grads)
            x_adv = torch.add(x_adv, grad.sign(), alpha=step_size).clamp_(lower, upper)
        x_adv = x_adv.clamp(lower, upper)
    return x_adv.detach()


def alignment_distance(smooth: nn.Module, x: Tensor, target: Tensor, *, create_graph: bool) -> Tensor:
    """1 − cos(x, ∇ₓ g_target(x)) per example, both flattened: (B, C, H, W), (B,) → (B,).

    ART's distance between an image and its gradient map; ``smooth`` is the network whose logit
    ``g`` is differentiated (the softplus surrogate). ``create_graph`` keeps the gradient's graph
    (to x when it requires grad, and to the parameters).
    """
    leaf = x if x.requires_grad else x.detach().requires_grad_(True)
    logit = smooth(leaf).gather(1, target.unsqueeze(1)).sum()
    (grad,) = torch.autograd.grad(logit, leaf, create_graph=create_graph)
    a, b = leaf.flatten(1), grad.flatten(1)
    return 1.0 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-30)


def alignment_attack(smooth: nn.Module, x: Tensor, y: Tensor, start: Tensor, epsilon: float, steps: int,
                     step_size: float, top_k: int, bounds: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """ART's attack: x′ maximising Σ (1 − cos(x′, ∇ₓ′ g_y(x′))) over the ball, sparse sign steps.

    Each step moves, per example, only the ``top_k`` pixels where the ascent gradient is largest in
    magnitude (all of them when top_k ≥ C·H·W) by ``step_size``·sign, then projects.

    Args:
        smooth: the smooth network (softplus surrogate); run in eval mode, parameters frozen.
        x: (B, C, H, W) natural images inside ``bounds``; y: (B,) int64 true classes.
        start: (B, C, H, W) first iterate (x + U(−ε, ε), or x), not clipped before the first gradient.
    Returns:
        (B, C, H, W) detached, |x′ − x|∞ ≤ ε, inside ``bounds``.
    """
    eps, low_high = _check(epsilon, bounds, steps)
    if int(top_k) < 1:
        raise UserInputError(f"top_k={top_k} must be >= 1")
    x, y = x.detach(), y.detach()
    with attack_mode(smooth), torch.enable_grad():
        lower, upper = feasible_box(x, eps, low_high)
        x_adv = start.detach()
        for _ in range(int(steps)):
            leaf = x_adv.detach().requires_grad_(True)
            grad = input_gradient(alignment_distance(smooth, leaf, y, create_graph=True).sum(), leaf)
            flat = grad.flatten(1)
            k = min(int(top_k), flat.shape[1])
            mask = torch.zeros_like(flat).scatter_(1, flat.abs().topk(k, dim=1).indices, 1.0)
            x_adv = torch.add(x_adv, (flat.sign() * mask).view_as(x_adv), alpha=step_size).clamp_(lower, upper)
        x_adv = x_adv.clamp(lower, upper)
    return x_adv.detach()
