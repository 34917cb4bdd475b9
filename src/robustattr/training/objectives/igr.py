"""IGR (Wang & Kong, NeurIPS 2022): a robust base plus λ·(1 − cos(IG(x), IG(x′))).

"Exploiting the relationship between Kendall's rank correlation and cosine similarity for
attribution protection": the base is TRADES (CE(f(x)) + β·KL, x′ from KL-PGD) or Madry's CE(f(x′))
(x′ from CE-PGD), chosen by ``igr_base``. IG is that of the true-class logit from a zero baseline
with the config's ``m`` right-Riemann points k/m, flattened over channels; IG(x) is a constant
(detached) and IG(x′) is differentiated to second order (its path gradients keep their graph), so
the regulariser reaches the parameters through IG(x′) — the one public replication computes
IG(x′) without a graph, which leaves the term no gradient at all. λ is the config's ``lambda``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustattr import keys
from robustattr.attacks import pgd
from robustattr.attribution import integrated_gradients
from robustattr.training.objectives._base import (
    LossOut, ObjectiveParams, accuracy, cross_entropy, loss_cross_entropy, per_example_mean, weight_decay_share,
)
from robustattr.training.objectives._successors import chunked_term, cosine, reduce_examples
from robustattr.training.objectives.registry import ObjectiveInfo, objective_key, register_objective
from robustattr.training.objectives.trades import BETA_DOC, START_DOC, trades_adversarial, trades_regularizer

__all__ = ["IGRParams", "igr", "igr_regularizer"]


@dataclass(frozen=True)
class IGRParams:
    base: str = objective_key("trades", "IGR's robust base: trades (CE(x) + beta*KL, x' from KL-PGD) or madry "
                              "(CE(x'), x' from CE-PGD)", keys.choice("trades", "madry"), key="igr_base")
    beta: float = objective_key(1.0, BETA_DOC + "; IGR with igr_base=trades", keys.FLOAT, keys.NONNEG)
    start_std: float = objective_key(0.001, START_DOC, keys.FLOAT, keys.NONNEG, key="trades_start_std")


def igr_regularizer(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, lam: float, m: int,
                    chunk_size: int | None = None) -> Tensor:
    """λ·(1 − cos(IG(x), IG(x′))) per example, (B,): IG(x) detached, IG(x′) with its graph.

    Args:
        x, x_adv: (B, C, H, W); y: (B,) int64 (the IG target); m: IG points (≥ 1).
        chunk_size: examples per IG forward (memory of the forward only; the graph is kept).
    """
    clean = integrated_gradients(model, x.detach(), y, n_steps=int(m), create_graph=False, chunk_size=chunk_size)
    moved = integrated_gradients(model, x_adv.detach(), y, n_steps=int(m), create_graph=True, chunk_size=chunk_size)
    return lam * (1.0 - cosine(clean.detach(), moved))


def igr(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> LossOut:
    """Base (TRADES or Madry) + λ·Σ (1 − cos(IG(x), IG(x′))) (+ wd·Σ‖w‖²/2).

    With ``params.chunk_size`` < B the IG term is backpropagated chunk by chunk here and ``loss``
    carries it as a constant (``_base``'s contract).

    Args:
        x: (B, C, H, W) float in ``params.bounds``; y: (B,) int64.
    """
    hp = params.hyper or IGRParams()
    n = x.shape[0]
    if hp.base == "trades":
        x_adv = trades_adversarial(model, x, params, hp.start_std)
        kl_each, logits, adv_logits = trades_regularizer(model, x, x_adv, hp.beta)
        ce = loss_cross_entropy(logits, y, params)
        base = ce + reduce_examples(kl_each, params)
        nat_loss = per_example_mean(ce, n, params)
        with torch.no_grad():
            adv_loss = cross_entropy(adv_logits, y, "mean")
    else:
        x_adv = pgd(model, x, y, params.epsilon, params.num_steps, params.step_size, params.random_start, "xent",
                    params.bounds, chunk_size=params.pgd_chunk_size, start_noise=params.start_noise)
        adv_logits = model(x_adv)
        base = loss_cross_entropy(adv_logits, y, params)
        adv_loss = per_example_mean(base, n, params)
        with torch.no_grad():
            logits = model(x)
            nat_loss = cross_entropy(logits, y, "mean")
    reg_each, detached = chunked_term(
        lambda part: igr_regularizer(model, x[part], x_adv[part], y[part], params.lam, params.m), n, params)
    reg = reduce_examples(reg_each, params)
    loss = base + reg + weight_decay_share(model, x, params)
    return LossOut(loss, {
        "loss": loss.detach(), "nat_acc": accuracy(logits, y), "nat_loss": nat_loss,
        "adv_acc": accuracy(adv_logits, y), "adv_loss": adv_loss, "reg": reg.detach(),
    })


register_objective(ObjectiveInfo(
    order=11, name="igr", slug="igr", display="IGR", function=igr, uses_inner_attack=True, params=IGRParams,
    loss_class="IGR", reference="Wang & Kong, NeurIPS 2022 (IG cosine regulariser on a TRADES or Madry base)",
    paper_steps=100_000,
))
