"""The strong attribution evaluation: per example, the worst case over a portfolio of attacks.

The attribution analogue of AutoAttack for predictions. Every correctly classified image is
walked by each member of a portfolio, all members stacked in one batch:

- ``topK``: the faithful walk (spec §4.2, with the flat-objective rule), exactly as
  :func:`attacks.attribution_attack` runs it;
- ``topK_random_start_r`` (r = 1..R): the same objective from a seeded uniform point of the
  ε-ball ∩ pixel range, which moves every image even where the clean point's objective is flat;
- ``mass_center``: moves the saliency centre of mass (spec §4.2's other objective);
- ``random``: random ±1 steps (no objective: a floor any real attack should beat);
- ``map_distance``: from a seeded random start, ascends ‖S₂ − S⁰‖², a dense objective whose
  gradient reaches every lit pixel whatever the top-k sets;
- ``topK_lens``, ``ig_cosine_r``, ``targeted_shift``: the later literature's attacks (issue 22);
- ``rank_kendall_r`` (r = 1..R): from a seeded uniform point of the ε-ball ∩ pixel range, descends a
  smooth Kendall's τ of the maps; it shares the random-start topK walks' moves (measured on
  validation images, docs/attribution-evaluation.md, "Ninth pass").

Every member keeps the label as the faithful walk does (an iterate that flips the prediction
never counts; the walk goes on from it). For each metric on its own (top-k intersection at
``eval_k_top``, Kendall's τ, Spearman's ρ) the result is the minimum over all members and all
label-keeping iterates, so it is never above any member's value. Every member takes its ascent direction
from all ``n_steps`` IG points by default (``strong_direction_ig_steps`` lowers it for the members
without ``full_direction``): with a quarter of the points the per-image worst case was above the
full-n one on many images (measured, docs/attribution-evaluation.md).

The members share the step budget: the faithful topK walk moves at each of the ``steps``
iterations; each other walk moves every ``stride``-th iteration (staggered; strides by member
``weight``, together at most ``share`` moves per iteration) with a ``stride``-times step, so it covers the same distance as a full walk
and the portfolio costs about (1 + ``share``) faithful walks, whatever its size. R and the share
come from the budget level (``attribution_attack_budget``: fast, standard, thorough;
``AttackSettings.starts``, ``AttackSettings.share``). Images on which no member found a label-keeping iterate are
flagged (``label_kept`` False): they score (1, 1, 1), the paper's convention; the drivers also
report the means with them dropped (ART/SSR). The running worst case after every step
(``history``) shows convergence.

The portfolio is composed from the registered members (``attacks.members``: those with
``in_portfolio``, in their ``order``), so a new member module joins it without an edit here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from robustattr.attacks import _common
from robustattr.attacks.attribution_attack import walk_saliency, walk_settings
from robustattr.attacks.members import MEMBERS
from robustattr.attacks.settings import AttackSettings
from robustattr.attacks.walk import WalkMember, WalkState, clean_maps, walk
from robustattr.errors import UserInputError

__all__ = ["METRICS", "StrongAttributionResult", "portfolio", "strong_attribution_attack"]

#: The metrics whose worst case is reported, in the order of the result files.
METRICS = ("intersection", "spearman", "kendall")


def portfolio(random_starts: int | None = 2, direction_n_steps: int | None = None,
              share: float | None = None) -> tuple[WalkMember, ...]:
    """The strong evaluation's walks: every registered member with ``in_portfolio``, in ``order``
    (``topK`` first, the faithful walk), a member with ``copies`` as ``random_starts`` copies
    ``{name}_1 … _R`` on streams ``stream + r``. Members without ``full_direction`` take their
    direction from ``direction_n_steps`` IG points (None: all of them).

    ``share`` (a budget level's, :class:`~robustattr.attacks.settings.Budget`): the first walk moves
    at every iteration; each other walk j moves every ``stride_j`` = ⌈W / (share · w_j)⌉-th one,
    w_j its member's ``weight`` and W the sum over the other walks, with phases staggered, so
    that together they move at most ``share`` times per iteration (Σ 1/stride_j ≤ share). None:
    every walk moves at every iteration (K + 1 faithful walks' cost).
    """
    random_starts = 2 if random_starts is None else random_starts
    if int(random_starts) < 0:
        raise UserInputError(f"strong_random_starts={random_starts} must be >= 0")
    if share is not None and not share > 0:
        raise ValueError(f"share={share} must be > 0")
    walks: list[WalkMember] = []
    for kind in MEMBERS.values():
        if not kind.in_portfolio:
            continue
        d = None if kind.full_direction else direction_n_steps
        if kind.copies:
            walks += [WalkMember.of(kind, f"{kind.name}_{r}", direction_n_steps=d, stream=kind.stream + r)
                      for r in range(1, int(random_starts) + 1)]
        else:
            walks.append(WalkMember.of(kind, direction_n_steps=d))
    others = walks[1:]
    if share is None or not others:
        return tuple(walks)
    total = sum(w.kind.weight for w in others)
    strides = [max(1, math.ceil(total / (share * w.kind.weight) - 1e-9)) for w in others]
    return (walks[0], *(dataclasses.replace(w, stride=stride, phase=j % stride)
                        for j, (w, stride) in enumerate(zip(others, strides))))


@dataclass(frozen=True)
class StrongAttributionResult:
    """Per-example worst case of :func:`strong_attribution_attack`; tensors on the input's device.

    members: the member names, in the order of the ``member_*`` rows.
    intersection, spearman, kendall: (B,) each metric's minimum over members and label-keeping
        iterates (1 where nothing went lower; NaN where not attacked).
    worst_member: metric → (B,) int64 index into ``members`` of the member that reached the minimum
        (the first on ties); −1 where not attacked or nothing went below 1.
    member_values: metric → (M, B) each member's own minimum (NaN where not attacked).
    attacked: (B,) bool, correctly classified. found: (B,) bool, Kendall's τ went below 1.
    x_adv: (B, C, H, W) the iterate of the lowest Kendall τ (the clean image where none).
    saliency, saliency_adv: (B, H, W) ReLU maps of x and x_adv.
    flat_rule_steps: (B,) int64, flat-objective random steps summed over the members.
    label_kept: (B,) bool, some member's iterate kept the label (False where not attacked; where
        attacked and False the metrics are 1 by the paper's convention).
    history: metric → (T, B) the worst case over all members after each of the T steps (the last
        row equals the metric; NaN where not attacked; never rising down a column).
    """

    members: tuple[str, ...]
    intersection: Tensor
    spearman: Tensor
    kendall: Tensor
    worst_member: dict[str, Tensor]
    member_values: dict[str, Tensor]
    attacked: Tensor
    found: Tensor
    x_adv: Tensor
    saliency: Tensor
    saliency_adv: Tensor
    flat_rule_steps: Tensor
    label_kept: Tensor
    history: dict[str, Tensor]


def strong_attribution_attack(
    model: nn.Module, x: Tensor, y: Tensor, settings: AttackSettings | None = None, *,
    example_ids: Sequence[int] | None = None, **overrides: Any,
) -> StrongAttributionResult:
    """Worst case per example and metric over :func:`portfolio`'s members (module docstring).

    ``settings``: an :class:`AttackSettings` (its ``method`` is not used); keywords (``overrides``)
    replace its fields, or make the settings when it is None, e.g. ``strong_attribution_attack(model,
    x, y, epsilon=0.3, step_size=0.01, steps=100, k_top=200, random_starts=2, seed=0)``.
    ``measure`` is the faithful walk's criterion (which iterate it keeps); the reported minima do
    not depend on it. Random draws come from per-example generators seeded by (``seed``,
    ``example_ids[i]``, member stream), so an example's result does not depend on its batch;
    ``example_ids`` defaults to 0..B−1. The portfolio runs ``s.strong_steps`` (= ``steps``)
    iterations, the other members moving at ``s.share`` of them (module docstring), the restarted
    members in ``s.starts`` copies; ``direction_n_steps`` None: ``n_steps``.

    Shape:
        x: (B, C, H, W) float in ``bounds``; y: (B,) int64. Returns :class:`StrongAttributionResult`.

    Example:
        >>> r = strong_attribution_attack(model, x, y, epsilon=0.3, step_size=0.01, steps=100, k_top=200,
        ...                               eval_k_top=100, seed=4557077, example_ids=range(len(x)))
        >>> r.kendall[r.attacked].mean(), r.members[r.worst_member["kendall"][0]]
    """
    s = AttackSettings.of(settings, **overrides)
    B, _, H, W = x.shape
    s.check_image((H, W), has_target=True)  # no member of the portfolio needs a target
    members = portfolio(s.starts, s.direction_points, s.share)
    ids = list(range(B)) if example_ids is None else [int(i) for i in example_ids]
    if len(ids) != B:
        raise ValueError(f"got {len(ids)} example ids for a batch of {B}")
    cfg = walk_settings(AttackSettings.of(s, steps=s.strong_steps))
    sal = walk_saliency(s)
    M = len(members)
    nan = torch.full((B,), float("nan"), device=x.device)
    with _common.attack_mode(model), torch.enable_grad():
        x = x.detach()
        attacked, s0_all, idx = clean_maps(model, sal, x, y)
        nan = nan.to(s0_all.dtype)
        out = {name: nan.clone() for name in METRICS}
        per_member = {name: nan.expand(M, B).clone() for name in METRICS}
        worst_member = {name: torch.full((B,), -1, dtype=torch.long, device=x.device) for name in METRICS}
        x_adv, s_adv = x.clone(), s0_all.clone()
        rule_steps = torch.zeros(B, dtype=torch.long, device=x.device)
        found = torch.zeros(B, dtype=torch.bool, device=x.device)
        kept = torch.zeros(B, dtype=torch.bool, device=x.device)
        history = {name: nan.expand(cfg.steps, B).clone() for name in METRICS}
        if idx.numel() > 0:
            chosen = [ids[i] for i in idx.tolist()]
            gens = [_common.example_generator(s.seed, i, m.stream) for m in members for i in chosen]
            xa, ya, s0 = x[idx], y[idx], s0_all[idx]
            state = WalkState.build(model, sal, xa, ya, s0, members=members, k_top=s.k_top,
                                    need=("center0",) if s.measure == "mass_center" else ())
            r = walk(model, sal, xa, ya, s0, state, members, cfg, gens)
            n = xa.shape[0]
            for name in METRICS:
                values = r.worst[name].view(M, n)
                low, arg = values.min(dim=0)  # the first member wins ties
                per_member[name][:, idx] = values
                out[name][idx] = low
                worst_member[name][idx] = torch.where(low < 1, arg, torch.full_like(arg, -1))
            tau = r.worst["kendall"].view(M, n)
            pick = tau.argmin(dim=0) * n + torch.arange(n, device=x.device)  # row of the lowest τ
            x_adv[idx] = r.x_worst[pick]
            s_adv[idx] = r.s_worst[pick]
            rule_steps[idx] = r.flat_rule_steps.view(M, n).sum(0)
            found[idx] = out["kendall"][idx] < 1
            kept[idx] = r.kept_any.view(M, n).any(0)
            for name in METRICS:  # (T, M·n) → (T, n): the worst over members after each step
                history[name][:, idx] = r.history[name].view(cfg.steps, M, n).amin(1)
    return StrongAttributionResult(
        members=tuple(m.name for m in members), **out, worst_member=worst_member, member_values=per_member,
        attacked=attacked, found=found, x_adv=x_adv, saliency=s0_all, saliency_adv=s_adv,
        flat_rule_steps=rule_steps, label_kept=kept, history=history,
    )
