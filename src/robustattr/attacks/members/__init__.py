"""Attack members: the walks an attribution attack can run, one module each, with their metadata.

A member is what a walk ascends and how it starts. Each module of this package registers one
(:func:`register_member`) and is imported when the package is, so a new member is one new module
here; code outside the package may call :func:`register_member` too. The engine
(``attacks.walk``) asks a walk's member for its objective and flat test and builds the state it
``needs``; the faithful attack runs one member (``attribution_attack_method``), the strong
evaluation every member with ``in_portfolio`` (``attacks.strong_attribution.portfolio``).

    >>> from robustattr.attacks.members import MEMBERS
    >>> [m.name for m in MEMBERS.values()]            # in ``order``
    ['topK', 'topK_random_start', 'mass_center', 'random', 'map_distance', 'topK_lens', 'ig_cosine',
     'targeted_shift', 'rank_kendall', 'target']

An objective is a pure function ``(s2, state) -> (B,)``: ``s2`` the (B, H, W) saliency map of the
surrogate at the current iterate, differentiable w.r.t. it, and ``state`` the per-example tensors
the member ``needs`` (rows matching ``s2``'s). A member may add a term on the surrogate's logits at
the iterate (``logits_term``, ``(logits (B, K), state) -> (B,)``): the targeted member holds the logits
with it. The walk steps along sign(∇x (objective + logits_term)).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from robustattr.attacks.attribution_objectives import top_k_mask, truncated_center

__all__ = ["Member", "MEMBERS", "STATE_ITEMS", "StateInputs", "register_member", "register_state",
           "member_names", "get_member", "COPY_STREAMS"]

#: Per-example tensors a member's objective reads, by name (rows follow the walked examples).
State = Mapping[str, Tensor]
Objective = Callable[[Tensor, State], Tensor]
LogitsTerm = Callable[[Tensor, State], Tensor]
FlatTest = Callable[[Tensor, State], Tensor]

#: A member with ``copies`` runs R copies in the portfolio, copy r on generator stream ``stream + r``;
#: those streams are its own: no other member's stream may fall in ``stream + 1 .. stream + COPY_STREAMS``.
COPY_STREAMS = 1000


@dataclass(frozen=True)
class Member:
    """One kind of walk, as registered.

    name: how attacks and result files call it (``attribution_attack_method``, the strong
        evaluation's ``members`` and CSV columns ``{name}.{metric}``): letters, digits and ``_``.
    objective: ``(s2 (B, H, W), state) -> (B,)``, the quantity ascended (module docstring); None:
        a random sign walk (no objective).
    flat: ``(s2 (B, H, W) detached, state) -> (B,) bool``, where the objective is exactly constant
        near the current point (the flat rule then takes a seeded random step); None: never.
    needs: names in :data:`STATE_ITEMS` its objective reads (``s0``, the clean ReLU map, always there).
    random_start: start from a uniform point of the ε-ball ∩ pixel range instead of the clean image.
    stream: its per-example generator stream in the strong evaluation (``example_generator``);
        0 is the faithful walk's. Distinct per member.
    order: where it sits in :data:`MEMBERS` and in the portfolio (ascending).
    in_portfolio: one of the strong evaluation's members.
    copies: in the portfolio, ``random_starts`` copies named ``{name}_{r}`` (streams ``stream + r``).
    full_direction: in the portfolio, its direction always comes from all IG points (else from the
        strong evaluation's ``direction_n_steps``, by default all of them too); the metrics always
        use all of them.
    summary: one line for listings and docs.
    logits_term: ``(logits (B, K) of the surrogate at the iterate, differentiable w.r.t. it, state)
        -> (B,)``, added to the objective before the gradient is taken; None: no such term.
    weight: in the portfolio, its walks' share of the moves the members beside the faithful walk
        make, relative to the others' weights (> 0; each copy of a member with ``copies`` has it).
    """

    name: str
    objective: Objective | None
    flat: FlatTest | None = None
    needs: tuple[str, ...] = ()
    random_start: bool = False
    stream: int = 0
    order: int = 100
    in_portfolio: bool = False
    copies: bool = False
    full_direction: bool = False
    summary: str = ""
    logits_term: LogitsTerm | None = None
    weight: float = 1.0

    @property
    def stochastic(self) -> bool:
        """Its walks differ between restarts: a random walk or a random start (restarts are run
        for these only; the others would repeat the same walk, spec §10.7)."""
        return self.objective is None or self.random_start


@dataclass(frozen=True)
class StateInputs:
    """What a state builder may read. model: the attacked ReLU model; saliency: the walk's
    ``WalkSaliency`` (``saliency(net, x, y)`` → (B, H, W) maps, ``saliency.surrogate_of(model)``);
    x (B, C, H, W), y (B,), s0 (B, H, W) the clean ReLU maps; k_top; target_map (B, H, W) or None."""

    model: Any
    saliency: Any
    x: Tensor
    y: Tensor
    s0: Tensor
    k_top: int
    target_map: Tensor | None


#: name -> Member, ordered by (order, name).
MEMBERS: dict[str, Member] = {}
#: name -> builder ``(StateInputs) -> (B, ...) tensor`` of a per-example state item.
STATE_ITEMS: dict[str, Callable[[StateInputs], Tensor]] = {}


def register_state(name: str, builder: Callable[[StateInputs], Tensor]) -> None:
    """Make a per-example state item available to members' ``needs`` (e.g. a dilated top-k mask)."""
    if name in STATE_ITEMS and STATE_ITEMS[name] is not builder:
        raise ValueError(f"state item {name!r} is already registered")
    STATE_ITEMS[name] = builder


def _target_map(inputs: StateInputs) -> Tensor:
    if inputs.target_map is None:
        raise ValueError("this member needs a target map")
    return inputs.target_map


register_state("mask", lambda inp: top_k_mask(inp.s0, inp.k_top))  # the clean map's top-k pixels
# The original takes c⁰ from the softplus map (spec §4.2).
register_state("center0", lambda inp: truncated_center(inp.saliency(inp.saliency.surrogate_of(inp.model), inp.x, inp.y)))
register_state("target_map", _target_map)


def register_member(member: Member, *, replace: bool = False) -> Member:
    """Add ``member`` to :data:`MEMBERS` (``replace``: over one of the same name); returns it.

    Raises ValueError for a taken name or stream, an unknown state item, or a name that cannot be a
    CSV column prefix.
    """
    if not member.name.replace("_", "a").isalnum() or member.name == "strong":
        raise ValueError(f"member name {member.name!r} must be letters, digits and '_' (and not 'strong')")
    if not member.weight > 0:
        raise ValueError(f"member {member.name!r}: weight {member.weight} must be > 0")
    if member.name in MEMBERS and not replace:
        raise ValueError(f"attack member {member.name!r} is already registered")
    unknown = [n for n in member.needs if n not in STATE_ITEMS and n != "s0"]
    if unknown:
        raise ValueError(f"member {member.name!r} needs unknown state {unknown}; register_state() it first")
    for other in MEMBERS.values():
        if other.name == member.name:
            continue
        clash = other.stream == member.stream or any(
            a.copies and a.stream < b.stream <= a.stream + COPY_STREAMS for a, b in ((other, member), (member, other)))
        if clash:
            raise ValueError(f"member {member.name!r}: generator stream {member.stream} clashes with {other.name!r}")
    entries = {**MEMBERS, member.name: member}
    MEMBERS.clear()
    MEMBERS.update(sorted(entries.items(), key=lambda kv: (kv[1].order, kv[0])))
    return member


def member_names() -> tuple[str, ...]:
    """The registered members' names, in order: the values ``attribution_attack`` takes as ``method``."""
    return tuple(MEMBERS)


def get_member(name: str) -> Member:
    """The member called ``name`` (KeyError naming the registered ones otherwise)."""
    try:
        return MEMBERS[name]
    except KeyError:
        raise KeyError(f"no attack member {name!r}; registered: {', '.join(MEMBERS)}") from None


def _import_members() -> None:
    """Import every module of this package: each registers its member."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_members()
