"""rank_kendall: from a random start, descend a smooth Kendall's τ between the clean map and the map.

Kendall's τ counts a pixel pair (i, j) as concordant when the two maps order it the same way. Its
smooth stand-in (:func:`smooth_kendall_tau`) replaces the iterate's sign(S₂ᵢ − S₂ⱼ) by
tanh((S₂ᵢ − S₂ⱼ) / t), t a tenth of the iterate's mean map value (no gradient through it), so the
pairs near a tie, which a move can flip, carry the gradient. The walk ascends −τ̃ through the
surrogate's map (second order). Pairs tied in the clean map (an MNIST background) add nothing, as in
τ-b. Measured on validation images (docs/attribution-evaluation.md, "Ninth pass"), one such walk
lowers τ further per move than a topK walk from a random start, which is why it shares their moves
in the strong portfolio. The portfolio runs ``random_starts`` copies, ``rank_kendall_1`` … ``_R`` on
streams 4001 … 4000 + R.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from robustattr.attacks.members import Member, State, register_member

__all__ = ["RANK_KENDALL", "objective", "smooth_kendall_tau"]

#: t as a share of the iterate's mean |map| value.
TEMPERATURE = 0.1
#: Pairs are (every pixel, every ⌈n / MAX_COLUMNS⌉-th pixel): all pairs up to 32 × 32 maps, and an
#: (n × 1024) tensor per example beyond, so that a 224 × 224 map does not need an n × n one.
MAX_COLUMNS = 1024
_EPS = 1e-12


def smooth_kendall_tau(a: Tensor, b: Tensor, temperature: float = TEMPERATURE) -> Tensor:
    """(B,) smooth Kendall's τ in [−1, 1] of maps b against fixed maps a, both (B, ...) of equal shape.

    τ̃ = Σ sign(aᵢ − aⱼ) · tanh((bᵢ − bⱼ) / t) / #pairs over the ordered pairs (i, j), i ≠ j, with j
    running over every pixel (n ≤ :data:`MAX_COLUMNS`) or a regular grid of at most that many;
    t = ``temperature`` × mean |b| per example, constant to autograd. Without ties and as t → 0 it
    is Kendall's τ; differentiable in b.
    """
    fa, fb = a.flatten(1), b.flatten(1)
    n = fa.shape[1]
    columns = torch.arange(0, n, max(1, math.ceil(n / MAX_COLUMNS)), device=fa.device)
    t = (temperature * fb.detach().abs().mean(1) + _EPS).view(-1, 1, 1)
    order0 = torch.sign(fa[:, :, None] - fa[:, None, columns])
    soft = torch.tanh((fb[:, :, None] - fb[:, None, columns]) / t)
    pairs = n * columns.numel() - columns.numel()  # the (i, i) pairs add 0: sign(0) = 0
    return (order0 * soft).sum((1, 2)) / pairs


def objective(s2: Tensor, state: State) -> Tensor:
    """(B,) −τ̃ in [−1, 1] for maps s2 (B, H, W) and the clean maps ``state["s0"]`` (B, H, W)."""
    return -smooth_kendall_tau(state["s0"], s2)


RANK_KENDALL = register_member(Member(
    "rank_kendall", objective, random_start=True, stream=4000, order=44, in_portfolio=True, copies=True,
    full_direction=True, summary="from a random start, minimise a smooth Kendall's τ of the maps (second order)",
    # Half the share the topK random starts had (3 each until the ninth pass), which keep the other half:
    # measured on validation images, these find the lowest τ and those the lowest top-k intersection.
    weight=1.5,
))
