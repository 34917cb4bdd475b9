"""topK (spec §4.2): move saliency mass off the clean map's top-k pixels; the faithful walk.

Ascends D = −Σ M⊙S₂, M the {0, 1} mask of the clean ReLU map's ``k_top`` largest pixels and S₂
the surrogate's map at the current iterate. First in the strong portfolio, with the direction
from all IG points, exactly as the faithful attack runs it.
"""

from __future__ import annotations

from torch import Tensor

from robustattr.attacks.members import Member, State, register_member


def objective(s2: Tensor, state: State) -> Tensor:
    """(B,) −Σ M⊙S₂ for maps s2 (B, H, W) and the clean top-k masks ``state["mask"]`` (B, H, W)."""
    return -(state["mask"] * s2).flatten(1).sum(1)


def flat(s2: Tensor, state: State) -> Tensor:
    """(B,) bool: S₂ is 0 off the mask, so D = −H·W identically near here (an MNIST digit with at
    most k_top lit pixels: IG is 0 where x is 0 and d|u|/du = 0 at u = 0). Read from exact zeros, so
    it does not depend on the device or the batch; the gradient there is a rounding residue."""
    return ((1 - state["mask"]) * s2).flatten(1).sum(1) == 0


TOP_K = register_member(Member(
    "topK", objective, flat, needs=("mask",), stream=0, order=10, in_portfolio=True, full_direction=True,
    summary="move saliency mass off the clean top-k pixels (spec §4.2)",
))
