"""topK from a random start: the topK objective from a seeded uniform point of the ε-ball ∩ pixel range.

It moves every image, also where the clean point's topK objective is flat. The strong portfolio
runs ``random_starts`` copies, ``topK_random_start_1`` … ``_R`` on streams 101 … 100 + R, so that
changing R changes no other member's draws.
"""

from __future__ import annotations

from robustattr.attacks.members import Member, register_member
from robustattr.attacks.members.top_k import flat, objective

TOP_K_RANDOM_START = register_member(Member(
    "topK_random_start", objective, flat, needs=("mask",), random_start=True, stream=100, order=15,
    in_portfolio=True, copies=True, summary="topK from a uniform random start in the ε-ball",
    # 1.5 (the others 1): the random-start walks are what a per-image worst case misses when they
    # move too seldom — for the top-k intersection these, for Kendall's τ the rank_kendall walks,
    # which share the 3 they had until the ninth pass (docs/attribution-evaluation.md).
    weight=1.5,
))
