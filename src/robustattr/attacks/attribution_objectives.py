"""Pieces of the attribution attack (spec §4.2/§4.3): saliency maps, the surrogate, criteria.

Every function is batched over dim 0 and keeps its tensors on the input's device. Saliency maps
are (B, H, W), channel-summed |attribution| normalised to sum to H·W (spec §2.3). The ascent
objectives belong to the members (``attacks.members``, one module each).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from robustattr import metrics
from robustattr.attribution import SALIENCY_KINDS, SaliencyMethod, softplus_surrogate
from robustattr.errors import UserInputError, did_you_mean
from robustattr.metrics import kendall_tau, mass_center, spearman, top_k_intersection

#: What a walk does where its objective is flat (exact ascent direction all zeros): a seeded
#: random sign step for that iteration, or nothing (the pre-2026-12 behaviour, kept for comparison).
FLAT_RULES = ("random_sign", "none")
MEASURES = ("kendall", "intersection", "spearman", "mass_center")
SALIENCIES = SALIENCY_KINDS


SURROGATES = ("softplus", "none")


class Softplus(nn.Module):
    """Weight-sharing softplus surrogate of ``model``, whose ``forward(x)`` gives the smooth logits.

    A model with its own switch (a ``softplus`` argument to ``forward``, as robustattr's) runs
    ``model(x, softplus=True)``; any other model has its ``nn.ReLU`` / ``nn.LeakyReLU`` modules
    swapped for softplus during each forward (:func:`~robustattr.attribution.softplus_surrogate`).
    Attacks depend on that call contract only, not on the models package (design.md §Layers).

    Raises:
        UserInputError: the model has neither a switch nor a module to swap.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.own_switch = "softplus" in inspect.signature(model.forward).parameters
        if not self.own_switch:
            with softplus_surrogate(model):  # fails now, with the one clear error, not mid-attack
                pass

    def forward(self, x: Tensor) -> Tensor:
        if self.own_switch:
            return self.inner(x, softplus=True)
        with softplus_surrogate(self.inner):
            return self.inner(x)


def surrogate_model(model: nn.Module, surrogate: str = "softplus") -> nn.Module:
    """The network whose saliency gradient gives attack directions.

    ``surrogate="softplus"``: :class:`Softplus` (a ReLU network has no useful second derivative);
    ``"none"``: ``model`` itself, for smooth models or when asked for explicitly.
    """
    if surrogate not in SURROGATES:
        raise UserInputError(
            f"attribution_attack_surrogate={surrogate!r} is not supported; choose from "
            f"{', '.join(SURROGATES)}{did_you_mean(surrogate, SURROGATES)}"
        )
    return model if surrogate == "none" else Softplus(model)


def saliency(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    kind: str | SaliencyMethod,
    n_steps: int,
    *,
    create_graph: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """(B, H, W) saliency of the logit of ``y``: ``kind`` names a method of :data:`SALIENCIES` (IG
    with zero baseline and ``n_steps`` points for ``ig``) or is a :class:`SaliencyMethod` with settings.

    With ``create_graph=True`` the map stays differentiable w.r.t. ``x`` (which must require grad):
    autograd then gives the exact total derivative through all counterfactuals, their i/n weights
    and the (x − 0) factor, as the original's attack direction (spec §4.2).
    """
    return saliency_method(kind, n_steps).map(model, x, y, create_graph=create_graph, chunk_size=chunk_size)


def saliency_method(kind: str | SaliencyMethod, n_steps: int) -> SaliencyMethod:
    """The method ``kind`` names (default settings) or is, with ``n_steps`` IG points: the caller's
    ``n_steps`` always rules, so a walk may take its direction from fewer points than its metrics."""
    if isinstance(kind, SaliencyMethod):
        return kind if kind.n_steps == n_steps else dataclasses.replace(kind, n_steps=n_steps)
    return SaliencyMethod(kind, n_steps=n_steps)


def top_k_mask(s: Tensor, k: int) -> Tensor:
    """(B, H, W) {0, 1} mask, in s's dtype, of the ``k`` largest entries of each map ``s`` (B, H, W)."""
    return metrics.top_k_mask(s, k).view_as(s).to(s.dtype)


def truncated_center(s: Tensor) -> Tensor:
    """(B, 2) saliency mass centre (row, col) truncated to integers, as the original's ``int()``."""
    return torch.trunc(mass_center(s))


def random_sign(like: Tensor, generators: Sequence[torch.Generator | None] | torch.Generator | None) -> Tensor:
    """±1 tensor shaped like ``like`` (B, C, H, W): the sign of standard Gaussians.

    With one generator per example each example draws its own (C, H, W) block in turn, so its
    stream does not depend on the batch it sits in; a single generator (or None, the global RNG)
    draws the whole batch at once. Draws are float32 whatever ``like``'s dtype, so a float64 run
    sees the same signs.
    """
    if generators is None or isinstance(generators, torch.Generator):
        device = like.device if generators is None else generators.device
        noise = torch.randn(like.shape, generator=generators, device=device)
    else:
        noise = torch.stack(
            [torch.randn(like.shape[1:], generator=g, device=g.device) for g in generators]
        )
    return noise.to(device=like.device, dtype=like.dtype).sign()


def criterion(measure: str, s0: Tensor, s: Tensor, *, k_top: int, center0: Tensor | None) -> Tensor:
    """(B,) similarity between the original map ``s0`` and ``s`` (both (B, H, W)); lower = stronger.

    kendall τ-b, spearman ρ, intersection |top-k ∩ top-k| / k, or mass_center −‖c⁰ − c(s)‖ with
    integer-truncated centres (c⁰ from the softplus map, as the original; spec §10.9).
    """
    if measure == "kendall":
        return kendall_tau(s0, s)
    if measure == "spearman":
        return spearman(s0, s)
    if measure == "intersection":
        return top_k_intersection(s0, s, k_top)
    return -(center0 - truncated_center(s)).pow(2).sum(1).sqrt()


#: Rows per forward pass of :func:`logits_in_blocks`.
LOGIT_BLOCK = 8


def logits_in_blocks(net: nn.Module, x: Tensor) -> Tensor:
    """(B, K) logits of x (B, C, H, W), ``LOGIT_BLOCK`` rows per forward pass, zero rows padding the
    last block: BLAS kernels round differently for different row counts (one row takes another
    path altogether), so a fixed block keeps each example's logits, and its direction's sign,
    independent of the batch it sits in."""
    pad = (-x.shape[0]) % LOGIT_BLOCK
    if pad:
        x = torch.cat([x, x.new_zeros(pad, *x.shape[1:])])
    out = torch.cat([net(x[lo : lo + LOGIT_BLOCK]) for lo in range(0, x.shape[0], LOGIT_BLOCK)])
    return out[: out.shape[0] - pad]
