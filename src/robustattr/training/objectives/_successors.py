"""Pieces the later objectives (TRADES, IGR, LGA, SSR, ART) share: per-example terms and their
reduction, the random draws, input gradients of one logit, the smooth surrogate.

Every regulariser here is a *per-example* term (B,) that the objective adds to its base through
:func:`reduce_examples`, under the same reduction as its cross-entropy, so that data-parallel
shares add up to the single-process loss (``_base``'s contract).

Randomness: each objective draws at most one U(−ε, ε) tensor shaped like x per step, from
``params.start_noise`` when the loop hands one (data-parallel: a slice of the global batch's draw)
and from torch's global RNG otherwise; a Gaussian it needs is made from that draw by the inverse
normal CDF (:func:`gaussian_from_uniform`), so one step consumes the same random stream in a
single process and in every data-parallel shard, and a resumed run (global RNG restored) repeats it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustattr.attribution import softplus_surrogate
from robustattr.training.objectives._base import ObjectiveParams

__all__ = ["reduce_examples", "uniform_draw", "gaussian_from_uniform", "logit_gradient", "cosine", "Smooth",
           "chunked_term", "kl_per_example"]


def reduce_examples(term: Tensor, params: ObjectiveParams) -> Tensor:
    """(n,) per-example values → this call's share of their batch sum (``sum``) or mean (``mean``:
    divided by the *global* batch size in a data-parallel shard)."""
    if params.reduction == "mean":
        return term.sum() / (params.global_batch_size or term.shape[0])
    return term.sum()


def uniform_draw(x: Tensor, epsilon: float, params: ObjectiveParams) -> Tensor:
    """U(−ε, ε) shaped like ``x`` (its dtype and device): ``params.start_noise`` if given, else a new
    draw from the global RNG."""
    if params.start_noise is not None:
        if params.start_noise.shape != x.shape:
            raise ValueError(f"start_noise has shape {tuple(params.start_noise.shape)}, x {tuple(x.shape)}")
        return params.start_noise.to(dtype=x.dtype, device=x.device)
    return torch.empty_like(x).uniform_(-epsilon, epsilon)


def gaussian_from_uniform(u: Tensor, epsilon: float) -> Tensor:
    """N(0, 1) draws from U(−ε, ε) draws ``u``, elementwise: √2·erfinv(u/ε) (the inverse CDF).

    u/ε is kept inside (−1, 1) by one ulp, since ``uniform_`` may return −ε exactly, where
    erfinv is −∞; the tails are then cut near ±5.3σ (float32) or ±8.3σ (float64).
    """
    tiny = torch.finfo(u.dtype).eps
    return math.sqrt(2.0) * torch.erfinv((u / epsilon).clamp(-1.0 + tiny, 1.0 - tiny))


def logit_gradient(model: nn.Module, x: Tensor, target: Tensor, *, create_graph: bool) -> tuple[Tensor, Tensor]:
    """(∇ₓ f_target(x) shaped like x, the logits (B, classes)).

    With ``create_graph`` the gradient keeps its graph (to the parameters and to x, if x requires
    grad): the second-order term of a training loss. Without, both come back detached.
    """
    if not create_graph:
        x = x.detach()
    leaf = x if x.requires_grad else x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(leaf)
        picked = logits.gather(1, target.unsqueeze(1)).sum()
        (grad,) = torch.autograd.grad(picked, leaf, create_graph=create_graph)
    return (grad, logits) if create_graph else (grad.detach(), logits.detach())


def cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity per example of (B, ...) tensors flattened over all but the first dimension;
    0 where either is the zero vector (norms' product clamped at 1e−30)."""
    a, b = a.flatten(1), b.flatten(1)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-30)


class Smooth(nn.Module):
    """The softplus surrogate of ``model`` with the same weights: ``model(x, softplus=True)`` where
    ``forward`` has that switch (robustattr's models), else its ``nn.ReLU`` / ``nn.LeakyReLU``
    modules swapped for each forward (:func:`robustattr.attribution.softplus_surrogate`).

    Why: a ReLU network is piecewise linear, so a term built from the derivative of its input
    gradient (a Hessian-vector product, an attack on a gradient's direction) is zero there.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.own_switch = "softplus" in inspect.signature(model.forward).parameters

    def forward(self, x: Tensor) -> Tensor:
        if self.own_switch:
            return self.inner(x, softplus=True)
        with softplus_surrogate(self.inner):
            return self.inner(x)


def chunked_term(term_fn: Callable[[slice], Tensor], n: int, params: ObjectiveParams) -> tuple[Tensor, bool]:
    """A per-example term over the batch, chunk by chunk when ``params.chunk_size`` < n.

    ``term_fn(slice) -> (k,)`` computes the examples of one slice with its graph. Unchunked, the
    (n,) term comes back with its graph and False. Chunked, each chunk's share of
    ``reduce_examples(term)`` is backpropagated here (so that only one chunk's double-backprop
    graph is alive at a time; the term is a sum over examples, so this is exact) and the detached
    (n,) term comes back with True: the caller adds it as a constant (``_base``'s contract).
    """
    chunk = params.chunk_size
    if not chunk or chunk >= n:
        return term_fn(slice(0, n)), False
    parts = []
    for lo in range(0, n, chunk):
        part = term_fn(slice(lo, min(n, lo + chunk)))
        scale = 1.0 / (params.global_batch_size or n) if params.reduction == "mean" else 1.0
        (part.sum() * scale).backward()
        parts.append(part.detach())
    return torch.cat(parts), True


def kl_per_example(logits: Tensor, adv_logits: Tensor) -> Tensor:
    """KL(softmax(logits) ‖ softmax(adv_logits)) per example: (B, classes) × 2 → (B,)."""
    return F.kl_div(F.log_softmax(adv_logits, dim=1), F.log_softmax(logits, dim=1), reduction="none",
                    log_target=True).sum(1)
