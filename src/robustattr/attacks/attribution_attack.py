"""Attribution attack of Ghorbani et al. as run by Chen et al. (NeurIPS 2019), spec §4.2/§4.3.

Iterative L∞ sign ascent on a saliency objective computed on the softplus surrogate, keeping the
label-preserving iterate that minimises a similarity criterion on the ReLU model's saliency.
Unlike the original (one image at a time), a whole batch runs at once: every example carries its
own best iterate, running minimum and best restart, and nothing leaves the device in the loop.

Directions are exact autograd derivatives, as the spec asks. One consequence the original hides
behind float rounding: when the clean map has at most ``k_top`` nonzero pixels (most MNIST digits
at k_top=200, since IG is 0 where x is 0), topK's D = −Σ M⊙S₂ equals −H·W identically near x, so
its gradient is 0 up to rounding. The sign of that rounding residue (0 or ±1, per example) then
decides whether the walk moves at all; an example that never moves reports (1, 1, 1).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustattr.attacks import _common
from robustattr.attribution import SaliencyMethod
from robustattr.attacks.attribution_objectives import (
    MEASURES, METHODS, SALIENCIES, criterion, objective, random_sign, saliency, surrogate_model,
    top_k_mask, truncated_center,
)
from robustattr.errors import UserInputError, did_you_mean
from robustattr.metrics import kendall_tau, spearman, top_k_intersection

__all__ = ["AttributionAttackResult", "attribution_attack", "check_attack_settings"]

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
    """

    x_adv: Tensor
    intersection: Tensor
    spearman: Tensor
    kendall: Tensor
    attacked: Tensor
    found: Tensor
    saliency: Tensor
    saliency_adv: Tensor


def _choose(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UserInputError(
            f"{name}={value!r} is not supported; choose from {', '.join(choices)}"
            + did_you_mean(value, choices)
        )


def check_attack_settings(
    *, method: str, measure: str, saliency_type: str, k_top: int, eval_k_top: int,
    image_hw: tuple[int, int], has_target: bool, steps: int = 0, times: int = 1, ig_steps: int = 1,
) -> None:
    """Raise :class:`UserInputError` naming the setting when the attack cannot run as asked."""
    _choose("attribution_attack_method", method, METHODS)
    _choose("attribution_attack_measure", measure, MEASURES)
    _choose("saliency_type", getattr(saliency_type, "kind", saliency_type), SALIENCIES)
    pixels = image_hw[0] * image_hw[1]
    for name, k in (("k_top", k_top), ("eval_k_top", eval_k_top)):
        if not 1 <= k <= pixels:
            raise UserInputError(
                f"{name}={k} must lie in 1..{pixels} (the number of pixels, "
                f"{image_hw[0]}x{image_hw[1]})"
            )
    for name, value, low in (("attribution_attack_steps", steps, 0), ("attribution_attack_times", times, 1),
                             ("num_IG_steps", ig_steps, 1)):
        if int(value) < low:
            raise UserInputError(f"{name}={value} must be >= {low}")
    if method == "target" and not has_target:
        raise UserInputError(
            "attribution_attack_method='target' needs a target map: set "
            "attribution_attack_target=[r0, c0, r1, c1] (or --target-box)"
        )


def attribution_attack(
    model: nn.Module, x: Tensor, y: Tensor, *, method: str = "topK", measure: str = "kendall",
    epsilon: float, step_size: float, steps: int, times: int = 1, k_top: int,
    eval_k_top: int | None = None, saliency: str | SaliencyMethod = "ig", ig_steps: int = 100,
    bounds: tuple[float, float] = (0.0, 1.0), integer_pixels: bool = False,
    target_map: Tensor | None = None,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    chunk_size: int | None = None, surrogate: str = "softplus",
) -> AttributionAttackResult:
    """Attack the saliency maps of a batch; spec §4.2 (IG) and §4.3 (``saliency="simple_gradient"``).

    ``saliency`` may also be ``input_x_gradient``, ``smoothgrad`` or a :class:`SaliencyMethod`
    with settings (an IG baseline, SmoothGrad's samples and noise); ``ig_steps`` serves names only.

    ``model(x)`` gives ReLU logits; directions come from its softplus surrogate (``model(x,
    softplus=True)`` where it has that switch, else its ReLU modules swapped), or from ``model``
    itself with ``surrogate="none"``. Methods: topK,
    mass_center, random, target (needs ``target_map``); measures (walk criterion): kendall,
    spearman, intersection (``k_top``), mass_center. ``epsilon``/``step_size`` are in x's units.
    Restarts (``times``) run from the clean image and the one with the lowest final Kendall τ is
    kept; deterministic methods run once, since repeats would be identical (spec §10.7).
    ``generator``: one per example makes ``random`` independent of batching. ``chunk_size``:
    examples per double-backprop pass (None: the whole batch at once).

    Shape:
        x: (B, C, H, W) float in ``bounds`` (integers when ``integer_pixels``); y: (B,) int64.
        target_map: (H, W) or (B, H, W). Returns an :class:`AttributionAttackResult`.

    Example:
        >>> r = attribution_attack(model, x, y, epsilon=0.3, step_size=0.01, steps=100, k_top=200)
        >>> r.kendall[r.attacked].mean()
    """
    B, _, H, W = x.shape
    eval_k_top = k_top if eval_k_top is None else eval_k_top
    check_attack_settings(method=method, measure=measure, saliency_type=saliency, k_top=k_top,
                          eval_k_top=eval_k_top, image_hw=(H, W), has_target=target_map is not None,
                          steps=steps, times=times, ig_steps=ig_steps)
    epsilon = _common.check_epsilon(epsilon)
    bounds = _common.check_bounds(bounds)
    if target_map is not None:
        target_map = target_map.to(device=x.device, dtype=x.dtype).expand(B, H, W)
    if not isinstance(generator, (torch.Generator, type(None))) and len(generator) != B:
        raise ValueError(f"got {len(generator)} generators for a batch of {B}")
    sal = _Saliency(saliency, ig_steps, chunk_size)
    surrogate = surrogate_model(model, surrogate)  # the name now holds the network
    with _common.attack_mode(model), torch.enable_grad():
        x = x.detach()
        with torch.no_grad():
            attacked = model(x).argmax(1) == y
        s0_all = sal(model, x, y)
        out = _Outcome.clean(x, s0_all)
        # The one host sync per batch: the loop runs on the correctly classified examples only.
        idx = attacked.nonzero().squeeze(1)
        if idx.numel() > 0:
            gens = generator
            if gens is not None and not isinstance(gens, torch.Generator):
                gens = [gens[i] for i in idx.tolist()]
            xa, ya, s0 = x[idx], y[idx], s0_all[idx]
            need_center = "mass_center" in (method, measure)
            state = _State(
                mask=top_k_mask(s0, k_top) if method == "topK" else None,
                center0=truncated_center(sal(surrogate, xa, ya)) if need_center else None,
                target_map=None if target_map is None else target_map[idx],
            )
            restarts = times if method == "random" else 1
            best = None
            for _ in range(restarts):
                run = _walk(model, surrogate, sal, xa, ya, s0, state, method=method,
                            measure=measure, epsilon=epsilon, step_size=step_size, steps=steps,
                            k_top=k_top, eval_k_top=eval_k_top, bounds=bounds,
                            integer_pixels=integer_pixels, generators=gens)
                best = run if best is None else best.keep_lower_kendall(run)
            out = out.scatter(idx, best)
    return AttributionAttackResult(attacked=attacked, **out.__dict__)


@dataclass(frozen=True)
class _State:
    """Per-example constants of the objective (rows follow the attacked subset)."""

    mask: Tensor | None
    center0: Tensor | None
    target_map: Tensor | None

    def rows(self, sl: slice) -> dict[str, Tensor | None]:
        return {k: None if v is None else v[sl] for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class _Outcome:
    x_adv: Tensor
    intersection: Tensor
    spearman: Tensor
    kendall: Tensor
    found: Tensor
    saliency: Tensor
    saliency_adv: Tensor

    @classmethod
    def clean(cls, x: Tensor, s0: Tensor) -> _Outcome:
        nan = torch.full((x.shape[0],), float("nan"), device=x.device, dtype=s0.dtype)
        found = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        return cls(x.clone(), nan, nan.clone(), nan.clone(), found, s0, s0.clone())

    def keep_lower_kendall(self, other: _Outcome) -> _Outcome:
        """Per example, ``other`` where its Kendall τ is strictly lower (first restart wins ties)."""
        take = other.kendall < self.kendall
        return _Outcome(**{k: _where(take, getattr(other, k), v) for k, v in self.__dict__.items()})

    def scatter(self, idx: Tensor, part: _Outcome) -> _Outcome:
        """Copy of self with rows ``idx`` replaced by ``part``."""
        fields = {}
        for k, v in self.__dict__.items():
            v = v.clone()
            v[idx] = getattr(part, k).to(v.dtype)
            fields[k] = v
        return _Outcome(**fields)


def _where(cond: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return torch.where(cond.view(-1, *([1] * (a.dim() - 1))), a, b)


@dataclass(frozen=True)
class _Saliency:
    kind: str
    ig_steps: int
    chunk_size: int | None

    def __call__(self, net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """(B, H, W) detached map, computed ``chunk_size`` examples at a time."""
        return saliency(net, x, y, self.kind, self.ig_steps, chunk_size=self.chunk_size).detach()

    def direction(self, surrogate: nn.Module, x: Tensor, y: Tensor, state: _State,
                  method: str) -> Tensor:
        """(B, C, H, W) sign(∇x D) on the surrogate's map, one chunk of examples at a time
        (each example's D depends on its own image only, so chunking changes nothing)."""
        chunk = self.chunk_size or x.shape[0]
        parts = []
        for start in range(0, x.shape[0], chunk):
            sl = slice(start, start + chunk)
            xc = x[sl].detach().requires_grad_(True)
            s2 = saliency(surrogate, xc, y[sl], self.kind, self.ig_steps, create_graph=True)
            d = objective(method, s2, **state.rows(sl))
            parts.append(torch.autograd.grad(d.sum(), xc)[0].sign())
        return torch.cat(parts)


def _walk(model, surrogate, sal, x, y, s0, state, *, method, measure, epsilon, step_size, steps,
          k_top, eval_k_top, bounds, integer_pixels, generators) -> _Outcome:
    """One restart for every example at once; returns the best iterate's final metrics."""
    x_t = x.clone()
    best = x.clone()
    s_best = s0  # the best iterate's map, kept so that it is not computed again at the end
    crit_min = torch.ones(x.shape[0], device=x.device, dtype=s0.dtype)
    lower, upper = _common.feasible_box(x, epsilon, bounds)  # the ε-ball ∩ pixel range, once per walk
    for _ in range(steps):
        if method == "random":
            d = random_sign(x_t, generators)
        else:
            d = sal.direction(surrogate, x_t, y, state, method)
        x_t = (x_t + step_size * d).clamp(lower, upper)  # = project_and_clamp, bit for bit
        if integer_pixels:
            x_t = torch.trunc(x_t)  # the original casts to int after clipping (spec §4.2)
        with torch.no_grad():
            kept = model(x_t).argmax(1) == y
        s_t = sal(model, x_t, y)
        crit = criterion(measure, s0, s_t, k_top=k_top, center0=state.center0)
        crit = torch.where(kept, crit, torch.ones_like(crit))  # a flipped label never counts
        better = crit < crit_min
        crit_min = torch.where(better, crit, crit_min)
        best = _where(better, x_t, best)
        s_best = _where(better, s_t, s_best)
    found = crit_min < 1
    one = torch.ones_like(crit_min)
    return _Outcome(
        x_adv=best,
        intersection=torch.where(found, top_k_intersection(s0, s_best, eval_k_top), one),
        spearman=torch.where(found, spearman(s0, s_best), one),
        kendall=torch.where(found, kendall_tau(s0, s_best), one),
        found=found,
        saliency=s0,
        saliency_adv=s_best,
    )
