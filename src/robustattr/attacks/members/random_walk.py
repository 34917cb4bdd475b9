"""random (spec §4.2): random ±1 steps, no objective; a floor any real attack should beat.

Its steps are the sign of standard Gaussians from the example's own generator, so its draws do
not depend on the batch. Restarts (``attribution_attack_times``) run for it only.
"""

from __future__ import annotations

from robustattr.attacks.members import Member, register_member

RANDOM = register_member(Member(
    "random", None, stream=2, order=30, in_portfolio=True, summary="random sign steps (no objective)",
    weight=0.5,  # a floor, never an image's worst case so far: half the others' share of moves
))
