"""Attribution attack of Ghorbani et al. as run by Chen et al. (NeurIPS 2019), spec §4.2/§4.3.

Iterative L∞ sign ascent on a saliency objective computed on the softplus surrogate, keeping the
label-preserving iterate that minimises a similarity criterion on the ReLU model's saliency.
Unlike the original (one image at a time), a whole batch runs at once. The walk itself is the
public engine ``attacks.walk``; the objectives are the registered members (``attacks.members``);
this module runs one member the faithful way (restarts, the best iterate of the criterion).

Directions are exact autograd derivatives, with one documented deviation (``flat_rule``, see
``attacks.walk`` and docs/attribution-evaluation.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from robustattr.attacks import _common
from robustattr.attacks.members import MEMBERS
from robustattr.attacks.settings import STRONG, AttackSettings
from robustattr.attacks.threat_model import Generators
from robustattr.attacks.walk import (
    WalkMember, WalkOutcome, WalkSaliency, WalkSettings, WalkState, check_generators, clean_maps, generator_rows,
    walk,
)

__all__ = ["AttributionAttackResult", "attribution_attack", "AttackSettings", "WalkMember"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttributionAttackResult:
    """Per-example outcome of :func:`attribution_attack`; every field is on the input's device.

    x_adv: (B, C, H, W) best iterate of the kept restart (the clean image when none was found).
    intersection, spearman, kendall: (B,) float, S⁰ vs S(x_adv) (eval_k_top for the intersection);
        (1, 1, 1) when no label-keeping iterate improved the criterion; NaN where not attacked.
    attacked: (B,) bool, correctly classified (only those are attacked).
    found: (B,) bool, some label-keeping iterate improved the criterion.
    saliency, saliency_adv: (B, H, W) ReLU saliency maps of x and x_adv (sum H·W each).
    flat_rule_steps: (B,) int64, iterations of the kept restart that took the flat-objective
        random sign step (0 where not attacked, or with ``flat_rule="none"``).
    """

    x_adv: Tensor
    intersection: Tensor
    spearman: Tensor
    kendall: Tensor
    attacked: Tensor
    found: Tensor
    saliency: Tensor
    saliency_adv: Tensor
    flat_rule_steps: Tensor


def walk_settings(s: AttackSettings) -> WalkSettings:
    """The engine's settings of attack settings ``s``."""
    return WalkSettings.checked(measure=s.measure, epsilon=s.epsilon, step_size=s.step_size, steps=s.steps,
                                k_top=s.k_top, eval_k_top=s.eval_k, bounds=s.bounds,
                                integer_pixels=s.integer_pixels, flat_rule=s.flat_rule)


def walk_saliency(s: AttackSettings) -> WalkSaliency:
    """The engine's saliency of attack settings ``s``."""
    return WalkSaliency(s.saliency, s.n_steps, s.chunk_size, s.surrogate)


def attribution_attack(
    model: nn.Module, x: Tensor, y: Tensor, settings: AttackSettings | None = None, *,
    target_map: Tensor | None = None, generator: Generators = None, example_ids: Any = None,
    **overrides: Any,
) -> Any:
    """Attack the saliency maps of a batch; spec §4.2 (IG) and §4.3 (``saliency="simple_gradient"``).

    ``settings``: an :class:`AttackSettings`; keywords (``overrides``) replace its fields, or make
    the settings when it is None: ``attribution_attack(model, x, y, epsilon=0.3, step_size=0.01,
    steps=100, k_top=200, eval_k_top=100)``. ``method`` is any registered member
    (``attacks.members.MEMBERS``: topK, mass_center, random, target (needs a target map), …);
    ``"strong"`` runs :func:`~robustattr.attacks.strong_attribution.strong_attribution_attack` and
    returns its result. Measures (walk criterion): kendall, spearman, intersection (``k_top``),
    mass_center.

    ``model(x)`` gives ReLU logits; directions come from its softplus surrogate (``model(x,
    softplus=True)`` where it has that switch, else its ReLU modules swapped), or from ``model``
    itself with ``surrogate="none"``. Restarts (``times``) run for stochastic members (random walks,
    random starts) and the one with the lowest final Kendall τ is kept; deterministic members run
    once, since repeats would be identical (spec §10.7).
    ``generator``: one per example makes the random draws independent of batching; one generator
    or None (the global RNG) draws for the whole batch. Without it, ``example_ids`` (B ints) give
    each example its generator seeded by (``settings.seed``, id).
    ``target_map``: (H, W) or (B, H, W); None: from ``settings.target_box`` where the member needs it.

    Shape:
        x: (B, C, H, W) float in ``bounds`` (integers when ``integer_pixels``); y: (B,) int64.
        Returns an :class:`AttributionAttackResult`.

    Example:
        >>> r = attribution_attack(model, x, y, epsilon=0.3, step_size=0.01, steps=100, k_top=200)
        >>> r.kendall[r.attacked].mean()
    """
    s = AttackSettings.of(settings, **overrides)
    if s.method == STRONG:
        from robustattr.attacks.strong_attribution import strong_attribution_attack

        return strong_attribution_attack(model, x, y, s, example_ids=example_ids)
    B, _, H, W = x.shape
    kind = MEMBERS[s.method]
    needs_target = "target_map" in kind.needs
    if target_map is None and needs_target and s.target_box is not None:
        from robustattr.attacks.members.target import target_map_from_box

        target_map = target_map_from_box(s.target_box, (H, W))
    s.check_image((H, W), has_target=target_map is not None)
    cfg = walk_settings(s)
    if target_map is not None:
        target_map = target_map.to(device=x.device, dtype=x.dtype).expand(B, H, W)
    if generator is None and example_ids is not None:
        generator = [_common.example_generator(s.seed, int(i)) for i in example_ids]
    check_generators(generator, B)
    sal = walk_saliency(s)
    member = WalkMember(kind.name, kind, random_start=kind.random_start)
    with _common.attack_mode(model), torch.enable_grad():
        x = x.detach()
        attacked, s0_all, idx = clean_maps(model, sal, x, y)
        out = WalkOutcome.clean(x, s0_all)
        if idx.numel() > 0:
            gens = generator_rows(generator, idx)
            xa, ya, s0 = x[idx], y[idx], s0_all[idx]
            state = WalkState.build(model, sal, xa, ya, s0, members=(member,), k_top=s.k_top,
                                    target_map=None if target_map is None else target_map[idx],
                                    need=("center0",) if s.measure == "mass_center" else ())
            restarts = s.times if kind.stochastic else 1
            best = None
            for _ in range(restarts):
                run = walk(model, sal, xa, ya, s0, state, (member,), cfg, gens).faithful(s.eval_k)
                best = run if best is None else best.keep_lower_kendall(run)
            out = out.scatter(idx, best)
    return AttributionAttackResult(attacked=attacked, **out.__dict__)

