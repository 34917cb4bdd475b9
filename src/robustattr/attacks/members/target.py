"""target (spec §4.2): move saliency mass into a target region (a box of the image).

Ascends Σ S₂⊙T for a {0, 1} target map T (``attribution_attack_target`` = [r0, c0, r1, c1]); not in
the strong portfolio, which has no target.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from robustattr.attacks.members import Member, State, register_member
from robustattr.errors import UserInputError

__all__ = ["TARGET", "target_map_from_box"]


def objective(s2: Tensor, state: State) -> Tensor:
    """(B,) Σ S₂⊙T for maps s2 (B, H, W) and target maps ``state["target_map"]`` (B, H, W)."""
    return (state["target_map"] * s2).flatten(1).sum(1)


def flat(s2: Tensor, state: State) -> Tensor:
    """(B,) bool: S₂ is 0 on the target or off it, so the masked mass cannot change near here."""
    target = state["target_map"]
    inside = (target * s2).flatten(1).sum(1)
    outside = ((1 - target) * s2).flatten(1).sum(1)
    return (inside == 0) | (outside == 0)


def target_map_from_box(box: Any, image_hw: tuple[int, int]) -> Tensor:
    """(H, W) float32 map: 1 inside rows r0:r1 and columns c0:c1 (end exclusive), 0 elsewhere."""
    h, w = image_hw
    try:
        r0, c0, r1, c1 = (int(v) for v in box)
    except (TypeError, ValueError):
        raise UserInputError(
            f"attribution_attack_target={box!r} is not a box; give [r0, c0, r1, c1]") from None
    if not (0 <= r0 < r1 <= h and 0 <= c0 < c1 <= w):
        raise UserInputError(
            f"attribution_attack_target={[r0, c0, r1, c1]} must satisfy 0 <= r0 < r1 <= {h} and "
            f"0 <= c0 < c1 <= {w} (pixel indices, end exclusive)"
        )
    target = torch.zeros(h, w)
    target[r0:r1, c0:c1] = 1.0
    return target


TARGET = register_member(Member(
    "target", objective, flat, needs=("target_map",), stream=4, order=50,
    summary="move saliency mass into a target box (spec §4.2)",
))
