"""What every training objective shares: its parameters, its output and the common terms.

An objective is a plain function ``(model, x, y, params) -> LossOut`` (style anchor 9). The loop
zeroes the gradients, calls it, checks ``loss`` is finite, calls ``loss.backward()`` and steps the
optimizer. When ``params.chunk_size`` splits the batch, the IG regulariser is backpropagated chunk by
chunk *inside* the objective (the L1 norm is a sum over examples, so this is exact and bounds the
double-backprop graph to one chunk, spec §8); ``loss`` then carries that term as a constant and
``loss.backward()`` adds the rest of the gradient.

Data parallelism (``robustattr.distributed``): each rank calls the objective on its shard of the
global batch with ``params.global_batch_size`` set. The objective then returns the rank's *share*
of the single-process loss, so that the shares (and their gradients) summed over the ranks are the
single-process ones: batch sums stay sums, a ``mean`` cross-entropy divides by the global batch
size, and the weight-decay term is weighted by the shard's fraction of the global batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustattr.attacks import pgd
from robustattr.attribution import ig_regularizer
from robustattr.data.catalog import DATASETS
from robustattr.models import weight_decay_parameters
from robustattr.training.objectives.registry import hyperparameters, objective_info

__all__ = ["LossOut", "ObjectiveParams", "cross_entropy", "loss_cross_entropy", "per_example_mean",
           "batch_share", "weight_decay_term", "weight_decay_share", "adversarial", "regularizer", "accuracy"]


@dataclass(frozen=True)
class LossOut:
    """``loss``: scalar to minimise (graph attached); ``logs``: detached 0-dim tensors by name
    (``nat_acc``, ``nat_loss``, ``adv_acc``, ``adv_loss``, ``ig``), read by the loop only when it logs,
    so no step waits on the host for them."""

    loss: Tensor
    logs: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveParams:
    """Everything an objective needs besides the batch (built from a Config by :meth:`from_config`).

    ``reduction`` is resolved ("sum" or "mean"); ``bounds`` is the dataset's pixel range; the PGD
    fields mirror the config keys (``num_steps`` = K, ``step_size`` = α, ``loss_func``).

    Data-parallel fields (None in a single process): ``global_batch_size`` is the size of the
    batch this call holds a shard of; ``start_noise`` (shard, C, H, W) is this shard's slice of the
    PGD random start drawn for the whole global batch, so the starts equal a single process's.
    """

    reduction: str = "sum"
    weight_decay: float = 0.0
    lam: float = 1.0
    m: int = 50
    approx_factor: int = 1
    epsilon: float = 0.3
    num_steps: int = 40
    step_size: float = 0.01
    random_start: bool = True
    loss_func: str = "xent"
    bounds: tuple[float, float] = (0.0, 1.0)
    chunk_size: int | None = None
    pgd_chunk_size: int | None = None
    global_batch_size: int | None = None
    start_noise: Tensor | None = None
    hyper: Any = None  # the objective's own parameters (its registry entry's ``params``), or None

    @classmethod
    def from_config(cls, cfg: Any, bounds: tuple[float, float], chunk_size: int | None = None,
                    pgd_chunk_size: int | None = None) -> ObjectiveParams:
        return cls(
            hyper=hyperparameters(objective_info(cfg.training_objective), cfg.to_dict()),
            reduction=resolve_reduction(cfg.loss_reduction, cfg.dataset, cfg.training_objective),
            weight_decay=float(cfg.weight_decay), lam=float(cfg.lambda_), m=int(cfg.m),
            approx_factor=int(cfg.approx_factor), epsilon=float(cfg.epsilon), num_steps=int(cfg.num_steps),
            step_size=float(cfg.step_size), random_start=bool(cfg.random_start), loss_func=cfg.loss_func,
            bounds=(float(bounds[0]), float(bounds[1])), chunk_size=chunk_size, pgd_chunk_size=pgd_chunk_size,
        )


def resolve_reduction(loss_reduction: str, dataset: str, objective: str) -> str:
    """``original`` → the spec §3.2 table: MNIST/F-MNIST (and users' data) sum everywhere; GTSRB/Flower mean CE for
    nat/adv and sum CE for ar/adv_ar (the original's inconsistency, §10.2; each objective's registry entry
    says which, ``large_dataset_reduction``)."""
    if loss_reduction != "original":
        return loss_reduction
    info = DATASETS.get(dataset)
    if info is None or info.mnist_scripts:  # users' data: MNIST's
        return "sum"
    return objective_info(objective).large_dataset_reduction


def cross_entropy(logits: Tensor, y: Tensor, reduction: str) -> Tensor:
    """Stable softmax CE (TF's sparse_softmax_cross_entropy_with_logits), summed or averaged."""
    return F.cross_entropy(logits, y, reduction=reduction)


def loss_cross_entropy(logits: Tensor, y: Tensor, params: ObjectiveParams) -> Tensor:
    """The cross-entropy term of a training loss under ``params.reduction``.

    In a shard of a global batch a ``mean`` is taken over the *global* batch (Σ_shard CE / B), so
    that the ranks' terms add up to the single-process mean.
    """
    if params.reduction == "mean" and params.global_batch_size is not None:
        return F.cross_entropy(logits, y, reduction="sum") / params.global_batch_size
    return cross_entropy(logits, y, params.reduction)


def per_example_mean(term: Tensor, n: int, params: ObjectiveParams) -> Tensor:
    """Mean CE per example of this batch (or shard), from a :func:`loss_cross_entropy` term of ``n``
    examples; detached, for the logs."""
    term = term.detach()
    if params.reduction == "sum":
        return term / n
    if params.global_batch_size is not None:
        return term * (params.global_batch_size / n)
    return term


def batch_share(n: int, params: ObjectiveParams) -> float:
    """n / B: the fraction of the global batch a shard of ``n`` examples is (1.0 in a single process)."""
    return 1.0 if params.global_batch_size is None else n / params.global_batch_size


def weight_decay_term(model: nn.Module, params: ObjectiveParams) -> Tensor | float:
    """wd·Σ‖w‖²/2 over conv and FC weights only (the original's loss term, not SGD's weight_decay)."""
    if params.weight_decay == 0.0:
        return 0.0
    return params.weight_decay * 0.5 * sum(w.square().sum() for w in weight_decay_parameters(model))


def weight_decay_share(model: nn.Module, x: Tensor, params: ObjectiveParams) -> Tensor | float:
    """This shard's part of the weight-decay term: (n/B)·wd·Σ‖w‖²/2, the whole term in one process."""
    term = weight_decay_term(model, params)
    share = batch_share(x.shape[0], params)
    return term if share == 1.0 else share * term


def adversarial(model: nn.Module, x: Tensor, y: Tensor, params: ObjectiveParams) -> Tensor:
    """x' from PGD with the config's ``loss_func``; detached, a constant for the outer step."""
    return pgd(
        model, x, y, params.epsilon, params.num_steps, params.step_size, params.random_start,
        params.loss_func, params.bounds, n_steps=params.m, approx_factor=params.approx_factor, lam=params.lam,
        chunk_size=params.pgd_chunk_size, start_noise=params.start_noise,
    )


def regularizer(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, params: ObjectiveParams) -> Tensor:
    """‖IG(x, x')‖₁ with all m points (spec §3.1), batch-summed, for the parameter update.

    Without chunking: a differentiable scalar. With ``params.chunk_size`` < B: each chunk's
    λ·term is backpropagated here, and the returned value is detached (see the module docstring).
    """
    n = x.shape[0]
    chunk = params.chunk_size
    if not chunk or chunk >= n:
        return ig_regularizer(model, x, x_adv, y, params.m, create_graph=True)
    total = torch.zeros((), dtype=x.dtype, device=x.device)
    for lo in range(0, n, chunk):
        part = slice(lo, lo + chunk)
        term = ig_regularizer(model, x[part], x_adv[part], y[part], params.m, create_graph=True)
        (params.lam * term).backward()
        total = total + term.detach()
    return total


def accuracy(logits: Tensor, y: Tensor) -> Tensor:
    """Fraction of correct predictions, a detached 0-dim float tensor."""
    return (logits.detach().argmax(dim=1) == y).float().mean()
