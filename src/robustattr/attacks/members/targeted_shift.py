"""targeted_shift: push the map toward a chosen target map while holding the logits (Dombrowski et
al. 2019, "Explanations can be manipulated and geometry is to blame").

Ascends −‖S₂ − T‖² / ‖S⁰‖² − γ·‖z(x′) − z(x)‖² / ‖z(x)‖², z the surrogate's logits, γ = 1, both
terms scaled by their clean size so neither dominates whatever the model's scale; the walk projects
every step to the ε-ball and the pixel range, as every member's. The target T is the clean ReLU
map S⁰ rolled by (H // 4, W // 4) pixels (rows, columns; ``torch.roll``, wrapping at the border):
the same saliency pattern and mass, moved off the clean top-k set, so a walk that reaches it lowers
the top-k intersection and Kendall's τ while the prediction stays put. It starts from the clean
image (deterministic: no restarts).
"""

from __future__ import annotations

import torch
from torch import Tensor

from robustattr.attacks.attribution_objectives import logits_in_blocks
from robustattr.attacks.members import Member, State, StateInputs, register_member, register_state

__all__ = ["TARGETED_SHIFT", "shifted_target", "GAMMA"]

#: Weight of the logits term (Dombrowski et al.'s γ), on the scaled terms.
GAMMA = 1.0
_EPS = 1e-12


def shifted_target(s0: Tensor) -> Tensor:
    """(B, H, W) target maps: each clean map s0 (B, H, W) rolled by (H // 4, W // 4)."""
    h, w = s0.shape[-2:]
    return torch.roll(s0, shifts=(h // 4, w // 4), dims=(-2, -1))


def _clean_logits(inputs: StateInputs) -> Tensor:
    with torch.no_grad():
        # In fixed blocks, as the walk computes them at the iterates: independent of the batch.
        return logits_in_blocks(inputs.saliency.surrogate_of(inputs.model), inputs.x).detach()


register_state("shifted_target", lambda inp: shifted_target(inp.s0))
register_state("logits0", _clean_logits)


def objective(s2: Tensor, state: State) -> Tensor:
    """(B,) −‖S₂ − T‖² / ‖S⁰‖² for maps s2 (B, H, W), targets ``state["shifted_target"]`` and clean
    maps ``state["s0"]`` (B, H, W)."""
    scale = state["s0"].pow(2).flatten(1).sum(1) + _EPS
    return -(s2 - state["shifted_target"]).pow(2).flatten(1).sum(1) / scale


def hold_logits(logits: Tensor, state: State) -> Tensor:
    """(B,) −γ‖z − z⁰‖² / ‖z⁰‖² for the surrogate's logits (B, K) at the iterate and ``state["logits0"]``."""
    z0 = state["logits0"]
    return -GAMMA * (logits - z0).pow(2).sum(1) / (z0.pow(2).sum(1) + _EPS)


TARGETED_SHIFT = register_member(Member(
    "targeted_shift", objective, needs=("shifted_target", "logits0"), stream=6, order=43, in_portfolio=True,
    full_direction=True, logits_term=hold_logits,
    summary="push the map toward the clean map rolled by a quarter image, logits held (Dombrowski et al.)",
))
