"""map_distance: from a seeded random start, ascend ‖S₂ − S⁰‖² / (H·W), a dense objective.

S⁰ is the clean ReLU map: every pixel with a non-zero attribution gets a gradient, whether or not
it is in some top-k set, so this walk moves maps whose topK objective is flat.
"""

from __future__ import annotations

from torch import Tensor

from robustattr.attacks.members import Member, State, register_member


def objective(s2: Tensor, state: State) -> Tensor:
    """(B,) mean squared distance of s2 (B, H, W) to the clean maps ``state["s0"]`` (B, H, W)."""
    return (s2 - state["s0"]).pow(2).flatten(1).mean(1)


MAP_DISTANCE = register_member(Member(
    "map_distance", objective, random_start=True, stream=3, order=40, in_portfolio=True,
    summary="from a random start, move the map away from the clean one (dense)",
    weight=0.5,  # rarely an image's worst case (member_breakdown): half the others' share of moves
))
