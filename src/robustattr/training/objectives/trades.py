"""TRADES (Zhang et al., ICML 2019): CE(f(x), y) + β·KL(f(x) ‖ f(x′)), x′ from PGD on the KL term.

The authors' ``trades.py``: the start is x + 0.001·N(0, I), K sign steps of the KL (clean softmax a
constant) inside the ε-ball ∩ [0, 1], then the clean CE plus β times the KL, whose clean side keeps
its gradient. Our reductions: the CE under ``params.reduction``, the KL summed (``sum``) or
averaged (``mean``, the authors' ``batchmean``) alike. docs/objectives.md gives the choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustattr import keys
from robustattr.attacks.successors import kl_pgd
from robustattr.training.objectives._base import (
    LossOut, ObjectiveParams, accuracy, cross_entropy, loss_cross_entropy, per_example_mean, weight_decay_share,
)
from robustattr.training.objectives._successors import (
    gaussian_from_uniform, kl_per_example, reduce_examples, uniform_draw,
)
from robustattr.training.objectives.registry import ObjectiveInfo, objective_key, register_objective

__all__ = ["TRADESParams", "trades", "trades_adversarial", "trades_regularizer"]

BETA_DOC = "TRADES's weight beta of KL(f(x) || f(x')) (authors: 1.0 on MNIST, 6.0 on CIFAR-10)"
START_DOC = ("std of TRADES's Gaussian PGD start, a fraction of the pixel range (authors: 0.001); "
             "random_start=false starts at x")


@dataclass(frozen=True)
class TRADESParams:
    beta: float = objective_key(1.0, BETA_DOC, keys.FLOAT, keys.NONNEG)
    start_std: float = objective_key(0.001, START_DOC, keys.FLOAT, keys.NONNEG, key="trades_start_std")


def trades_adversarial(model: nn.Module, x: Tensor, params: ObjectiveParams, start_std: float) -> Tensor:
    """x′ = KL-PGD from x + std·(high − low)·N(0, I) (from x when ``params.random_start`` is false).

    The Gaussian comes from the step's one U(−ε, ε) draw (``_successors``), so data-parallel shards
    start where a single process does.
    """
    low, high = params.bounds
    start = x
    if params.random_start:
        noise = gaussian_from_uniform(uniform_draw(x, params.epsilon, params), params.epsilon)
        start = x + (start_std * (high - low)) * noise
    return kl_pgd(model, x, start, params.epsilon, params.num_steps, params.step_size, params.bounds,
                  chunk_size=params.pgd_chunk_size)


def trades_regularizer(model: nn.Module, x: Tensor, x_adv: Tensor, beta: float,
                       logits: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """β·KL(f(x) ‖ f(x′)) per example (B,), both sides differentiable; also the clean and the
    adversarial logits (``logits`` reused when given)."""
    logits = model(x) if logits is None else logits
    adv_logits = model(x_adv)
    return beta * kl_per_example(logits, adv_logits), logits, adv_logits


def trades(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> LossOut:
    """CE(f(x), y) + β·KL(f(x) ‖ f(x′)) (+ wd·Σ‖w‖²/2), both terms summed (or averaged) over the batch.

    Args:
        x: (B, C, H, W) float in ``params.bounds``; y: (B,) int64.
    """
    hp = params.hyper or TRADESParams()
    x_adv = trades_adversarial(model, x, params, hp.start_std)
    reg_each, logits, adv_logits = trades_regularizer(model, x, x_adv, hp.beta)
    ce = loss_cross_entropy(logits, y, params)
    reg = reduce_examples(reg_each, params)
    loss = ce + reg + weight_decay_share(model, x, params)
    with torch.no_grad():
        adv_loss = cross_entropy(adv_logits, y, "mean")
    return LossOut(loss, {
        "loss": loss.detach(), "nat_acc": accuracy(logits, y), "nat_loss": per_example_mean(ce, x.shape[0], params),
        "adv_acc": accuracy(adv_logits, y), "adv_loss": adv_loss, "reg": reg.detach(),
    })


register_objective(ObjectiveInfo(
    order=10, name="trades", slug="trades", display="TRADES", function=trades, uses_inner_attack=True,
    params=TRADESParams, loss_class="TRADES", aliases=("trades-kl",),
    reference="Zhang et al., ICML 2019 (github.com/yaodongyu/TRADES, train_trades_mnist.py)",
    paper_steps=100_000,
))
