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
  gradient reaches every lit pixel whatever the top-k sets.

Every member keeps the label as the faithful walk does (an iterate that flips the prediction
never counts; the walk goes on from it). For each metric on its own (top-k intersection at
``eval_k_top``, Kendall's τ, Spearman's ρ) the result is the minimum over all members and all
label-keeping iterates, so it is never above any member's value. Members other than the faithful
one take their ascent direction from a surrogate map with ``direction_ig_steps`` IG points (default
a quarter of ``ig_steps``): the sign of a gradient needs fewer points than the reported metrics,
which always use ``ig_steps``; this keeps the whole portfolio within 4× the faithful attack's cost
(``bench/strong_vs_faithful.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustattr.attacks import _common
from robustattr.attacks.attribution_attack import (
    WalkMember, _clean_maps, _Saliency, _State, _walk, _WalkSettings, check_attack_settings,
)
from robustattr.errors import UserInputError

__all__ = ["METRICS", "StrongAttributionResult", "portfolio", "strong_attribution_attack"]

#: The metrics whose worst case is reported, in the order of the result files.
METRICS = ("intersection", "spearman", "kendall")

# Fixed generator streams per member (stream 0 is the faithful walk's), so that changing the
# number of random starts changes no other member's draws.
_STREAM_MASS_CENTER, _STREAM_RANDOM, _STREAM_MAP_DISTANCE, _STREAM_RANDOM_START = 1, 2, 3, 100


def portfolio(random_starts: int = 2, direction_ig_steps: int | None = None) -> tuple[WalkMember, ...]:
    """The members of the strong evaluation, the faithful walk first (module docstring)."""
    if random_starts < 0:
        raise UserInputError(f"strong_random_starts={random_starts} must be >= 0")
    d = direction_ig_steps
    return (
        WalkMember("topK", "topK"),
        *(WalkMember(f"topK_random_start_{r}", "topK", random_start=True, direction_ig_steps=d,
                     stream=_STREAM_RANDOM_START + r) for r in range(1, random_starts + 1)),
        WalkMember("mass_center", "mass_center", direction_ig_steps=d, stream=_STREAM_MASS_CENTER),
        WalkMember("random", "random", stream=_STREAM_RANDOM),
        WalkMember("map_distance", "map_distance", random_start=True, direction_ig_steps=d,
                   stream=_STREAM_MAP_DISTANCE),
    )


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


def strong_attribution_attack(
    model: nn.Module, x: Tensor, y: Tensor, *, epsilon: float, step_size: float, steps: int, k_top: int,
    eval_k_top: int | None = None, measure: str = "kendall", saliency: str = "ig", ig_steps: int = 100,
    random_starts: int = 2, direction_ig_steps: int | None = None, bounds: tuple[float, float] = (0.0, 1.0),
    integer_pixels: bool = False, seed: int = 0, example_ids: Sequence[int] | None = None,
    chunk_size: int | None = None, flat_rule: str = "random_sign", surrogate: str = "softplus",
) -> StrongAttributionResult:
    """Worst case per example and metric over :func:`portfolio`'s members (module docstring).

    ``measure`` is the faithful walk's criterion (which iterate it keeps); the reported minima do
    not depend on it. Random draws come from per-example generators seeded by (``seed``,
    ``example_ids[i]``, member stream), so an example's result does not depend on its batch;
    ``example_ids`` defaults to 0..B−1. ``direction_ig_steps`` None: ``max(1, ig_steps // 4)``.

    Shape:
        x: (B, C, H, W) float in ``bounds``; y: (B,) int64. Returns :class:`StrongAttributionResult`.

    Example:
        >>> r = strong_attribution_attack(model, x, y, epsilon=0.3, step_size=0.01, steps=100, k_top=200,
        ...                               eval_k_top=100, seed=4557077, example_ids=range(len(x)))
        >>> r.kendall[r.attacked].mean(), r.members[r.worst_member["kendall"][0]]
    """
    B, _, H, W = x.shape
    eval_k_top = k_top if eval_k_top is None else eval_k_top
    check_attack_settings(method="topK", measure=measure, saliency_type=saliency, k_top=k_top,
                          eval_k_top=eval_k_top, image_hw=(H, W), has_target=False, steps=steps,
                          ig_steps=ig_steps, flat_rule=flat_rule)
    if direction_ig_steps is None:
        direction_ig_steps = max(1, ig_steps // 4)
    if int(direction_ig_steps) < 1:
        raise UserInputError(f"strong_direction_ig_steps={direction_ig_steps} must be >= 1")
    members = portfolio(random_starts, direction_ig_steps)
    ids = list(range(B)) if example_ids is None else [int(i) for i in example_ids]
    if len(ids) != B:
        raise ValueError(f"got {len(ids)} example ids for a batch of {B}")
    walk = _WalkSettings.checked(measure=measure, epsilon=epsilon, step_size=step_size, steps=steps, k_top=k_top,
                                 eval_k_top=eval_k_top, bounds=bounds, integer_pixels=integer_pixels,
                                 flat_rule=flat_rule)
    sal = _Saliency(saliency, ig_steps, chunk_size, surrogate)
    M = len(members)
    nan = torch.full((B,), float("nan"), device=x.device)
    with _common.attack_mode(model), torch.enable_grad():
        x = x.detach()
        attacked, s0_all, idx = _clean_maps(model, sal, x, y)
        nan = nan.to(s0_all.dtype)
        out = {name: nan.clone() for name in METRICS}
        per_member = {name: nan.expand(M, B).clone() for name in METRICS}
        worst_member = {name: torch.full((B,), -1, dtype=torch.long, device=x.device) for name in METRICS}
        x_adv, s_adv = x.clone(), s0_all.clone()
        rule_steps = torch.zeros(B, dtype=torch.long, device=x.device)
        found = torch.zeros(B, dtype=torch.bool, device=x.device)
        if idx.numel() > 0:
            chosen = [ids[i] for i in idx.tolist()]
            gens = [_common.example_generator(seed, i, m.stream) for m in members for i in chosen]
            xa, ya, s0 = x[idx], y[idx], s0_all[idx]
            state = _State.build(model, sal, xa, ya, s0, members=members, k_top=k_top, target_map=None,
                                 need_center=measure == "mass_center")
            r = _walk(model, sal, xa, ya, s0, state, members, walk, gens)
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
    return StrongAttributionResult(
        members=tuple(m.name for m in members), **out, worst_member=worst_member, member_values=per_member,
        attacked=attacked, found=found, x_adv=x_adv, saliency=s0_all, saliency_adv=s_adv,
        flat_rule_steps=rule_steps,
    )
