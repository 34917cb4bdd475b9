"""mass_center (spec §4.2): move the saliency map's centre of mass away from the clean one's.

Ascends ‖c(S₂) − c⁰‖², c⁰ the integer-truncated centre of the clean *softplus* map, as the original.
"""

from __future__ import annotations

from torch import Tensor

from robustattr.attacks.members import Member, State, register_member
from robustattr.metrics import mass_center


def objective(s2: Tensor, state: State) -> Tensor:
    """(B,) ‖c(S₂) − c⁰‖² for maps s2 (B, H, W) and clean centres ``state["center0"]`` (B, 2)."""
    return (mass_center(s2) - state["center0"]).pow(2).sum(1)


MASS_CENTER = register_member(Member(
    "mass_center", objective, needs=("center0",), stream=1, order=20, in_portfolio=True,
    summary="move the saliency centre of mass (spec §4.2)",
    weight=0.5,  # rarely an image's worst case (member_breakdown): half the others' share of moves
))
