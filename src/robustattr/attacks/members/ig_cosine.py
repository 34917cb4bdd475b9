"""ig_cosine: from a random start, ascend 1 − cos(S⁰, S₂), the cosine distance of the maps.

The IFIA-style attack of later work (Wang & Kong 2022/2023). S₂ is the surrogate's map at the
iterate, computed with a graph (``create_graph``), so the direction is second order: it follows how
the map itself moves with x. An implementation that computes the map without a graph gets a
gradient of zero (the map is a constant to autograd), the trap
its tests guard against. S⁰ is the clean ReLU map. The portfolio runs ``random_starts`` copies,
``ig_cosine_1`` … ``_R`` on streams 2001 … 2000 + R.
"""

from __future__ import annotations

from torch import Tensor

from robustattr.attacks.members import Member, State, register_member

__all__ = ["IG_COSINE", "objective"]

#: Guards the division for an all-zero map (the direction is then 0 and the flat rule steps).
_EPS = 1e-12


def objective(s2: Tensor, state: State) -> Tensor:
    """(B,) 1 − cos(S⁰, S₂) in [0, 2] for maps s2 (B, H, W) and the clean maps ``state["s0"]`` (B, H, W)."""
    a, b = s2.flatten(1), state["s0"].flatten(1)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + _EPS)
    return 1 - cos


IG_COSINE = register_member(Member(
    "ig_cosine", objective, random_start=True, stream=2000, order=42, in_portfolio=True, copies=True,
    full_direction=True, summary="from a random start, maximise the cosine distance of the maps (second order)",
))
