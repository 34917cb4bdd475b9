"""Attribution attack of Ghorbani et al. as run by Chen et al. (NeurIPS 2019), spec §4.2/§4.3.

Iterative L∞ sign ascent on a saliency objective computed on the softplus surrogate, keeping the
label-preserving iterate that minimises a similarity criterion on the ReLU model's saliency.
Unlike the original (one image at a time), a whole batch runs at once: every example carries its
own best iterate, running minimum and best restart, and nothing leaves the device in the loop.

Directions are exact autograd derivatives, as the spec asks, with one documented deviation
(``flat_rule``, docs/attribution-evaluation.md): when the clean map has at most ``k_top`` nonzero
pixels (most MNIST digits at k_top=200, since IG is 0 where x is 0), topK's D = −Σ M⊙S₂ equals
−H·W identically near x and its exact gradient is 0. The original's GPU rounding moved such walks
anyway; a deterministic port would leave them where they are and score them (1, 1, 1). By default
(``flat_rule="random_sign"``) an example whose objective is flat at an iteration takes a seeded
random ±1 step for that iteration instead, after which the exact gradient takes over; the step is
drawn from the example's own generator, so results do not depend on the batch. ``"none"`` keeps
the old behaviour.

The walk engine (``_walk``) runs any mix of walks ("members") stacked in one batch; the faithful
attack is one member, the strong evaluation (``attacks.strong_attribution``) several.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustattr.attacks import _common
from robustattr.attacks.attribution_objectives import (
    FLAT_RULES, MEASURES, METHODS, SALIENCIES, criterion, flat_objective, objective,
    random_sign, saliency, surrogate_model, top_k_mask, truncated_center,
)
from robustattr.attribution import SaliencyMethod
from robustattr.errors import UserInputError, did_you_mean
from robustattr.metrics import kendall_tau, spearman, top_k_intersection

__all__ = ["AttributionAttackResult", "attribution_attack", "check_attack_settings", "WalkMember"]

logger = logging.getLogger(__name__)

Generators = Sequence[torch.Generator | None] | torch.Generator | None


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


def _choose(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UserInputError(
            f"{name}={value!r} is not supported; choose from {', '.join(choices)}"
            + did_you_mean(value, choices)
        )


def check_attack_settings(
    *, method: str, measure: str, saliency_type: str, k_top: int, eval_k_top: int,
    image_hw: tuple[int, int], has_target: bool, steps: int = 0, times: int = 1, ig_steps: int = 1,
    flat_rule: str = "random_sign",
) -> None:
    """Raise :class:`UserInputError` naming the setting when the attack cannot run as asked."""
    _choose("attribution_attack_method", method, METHODS)
    _choose("attribution_attack_measure", measure, MEASURES)
    _choose("saliency_type", getattr(saliency_type, "kind", saliency_type), SALIENCIES)
    _choose("attribution_attack_flat_rule", flat_rule, FLAT_RULES)
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


@dataclass(frozen=True)
class WalkMember:
    """One walk of a portfolio: what it ascends and where it starts.

    name: how results call it. method: "topK", "mass_center", "target", "map_distance" (the
    objective ascended on the surrogate's map) or "random" (a random sign walk, no objective).
    random_start: start from a uniform point of the ε-ball ∩ pixel range instead of the clean
    image. direction_ig_steps: IG points of the surrogate map the direction comes from (None: the
    attack's ``ig_steps``; the metrics always use ``ig_steps``). stream: the per-example generator
    stream it draws from (see ``_common.example_generator``).
    """

    name: str
    method: str
    random_start: bool = False
    direction_ig_steps: int | None = None
    stream: int = 0


def attribution_attack(
    model: nn.Module, x: Tensor, y: Tensor, *, method: str = "topK", measure: str = "kendall",
    epsilon: float, step_size: float, steps: int, times: int = 1, k_top: int,
    eval_k_top: int | None = None, saliency: str | SaliencyMethod = "ig", ig_steps: int = 100,
    bounds: tuple[float, float] = (0.0, 1.0), integer_pixels: bool = False,
    target_map: Tensor | None = None, generator: Generators = None,
    chunk_size: int | None = None, flat_rule: str = "random_sign", surrogate: str = "softplus",
) -> AttributionAttackResult:
    """Attack the saliency maps of a batch; spec §4.2 (IG) and §4.3 (``saliency="simple_gradient"``).

    ``model(x)`` gives ReLU logits; directions come from its softplus surrogate (``model(x,
    softplus=True)`` where it has that switch, else its ReLU modules swapped), or from ``model``
    itself with ``surrogate="none"``. ``saliency``: a name of ``SALIENCIES`` or a
    :class:`SaliencyMethod` with settings (``ig_steps`` sets its IG points). Methods: topK,
    mass_center, random, target (needs ``target_map``); measures (walk criterion): kendall,
    spearman, intersection (``k_top``), mass_center. ``epsilon``/``step_size`` are in x's units.
    Restarts (``times``) run from the clean image and the one with the lowest final Kendall τ is
    kept; deterministic methods run once, since repeats would be identical (spec §10.7).
    ``generator``: one per example makes the random draws (``random``'s steps, the flat rule's)
    independent of batching; one generator or None (the global RNG) draws for the whole batch.
    ``flat_rule``: "random_sign" (default) or "none", see the module docstring.
    ``chunk_size``: examples per double-backprop pass (None: the whole batch at once).

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
                          steps=steps, times=times, ig_steps=ig_steps, flat_rule=flat_rule)
    walk = _WalkSettings.checked(measure=measure, epsilon=epsilon, step_size=step_size, steps=steps,
                                 k_top=k_top, eval_k_top=eval_k_top, bounds=bounds,
                                 integer_pixels=integer_pixels, flat_rule=flat_rule)
    if target_map is not None:
        target_map = target_map.to(device=x.device, dtype=x.dtype).expand(B, H, W)
    check_generators(generator, B)
    sal = _Saliency(saliency, ig_steps, chunk_size, surrogate)
    member = WalkMember(method, method)
    with _common.attack_mode(model), torch.enable_grad():
        x = x.detach()
        attacked, s0_all, idx = _clean_maps(model, sal, x, y)
        out = _Outcome.clean(x, s0_all)
        if idx.numel() > 0:
            gens = generator_rows(generator, idx)
            xa, ya, s0 = x[idx], y[idx], s0_all[idx]
            state = _State.build(model, sal, xa, ya, s0, members=(member,), k_top=k_top,
                                 target_map=None if target_map is None else target_map[idx],
                                 need_center="mass_center" in (method, measure))
            restarts = times if method == "random" else 1
            best = None
            for _ in range(restarts):
                run = _walk(model, sal, xa, ya, s0, state, (member,), walk, gens).faithful(eval_k_top)
                best = run if best is None else best.keep_lower_kendall(run)
            out = out.scatter(idx, best)
    return AttributionAttackResult(attacked=attacked, **out.__dict__)


def check_generators(generator: Generators, rows: int) -> None:
    """A list of generators must give one per row."""
    if not isinstance(generator, (torch.Generator, type(None))) and len(generator) != rows:
        raise ValueError(f"got {len(generator)} generators for a batch of {rows}")


def generator_rows(generator: Generators, idx: Tensor) -> Generators:
    """The generators of rows ``idx`` (a single generator, or None, serves every row)."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    return [generator[i] for i in idx.tolist()]


def _clean_maps(model: nn.Module, sal: _Saliency, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(attacked (B,) bool, clean ReLU maps (B, H, W), indices of the attacked examples)."""
    with torch.no_grad():
        attacked = model(x).argmax(1) == y
    s0 = sal(model, x, y)
    # The one host sync per batch: the walks run on the correctly classified examples only.
    return attacked, s0, attacked.nonzero().squeeze(1)


@dataclass(frozen=True)
class _WalkSettings:
    measure: str
    epsilon: float
    step_size: float
    steps: int
    k_top: int
    eval_k_top: int
    bounds: tuple[float, float]
    integer_pixels: bool
    flat_rule: str

    @classmethod
    def checked(cls, **kw) -> _WalkSettings:
        kw["epsilon"] = _common.check_epsilon(kw["epsilon"])
        kw["bounds"] = _common.check_bounds(kw["bounds"])
        return cls(**kw)


@dataclass(frozen=True)
class _State:
    """Per-example constants of the objectives (rows follow the attacked subset, one copy per example)."""

    mask: Tensor | None
    center0: Tensor | None
    target_map: Tensor | None
    s0: Tensor

    @classmethod
    def build(cls, model: nn.Module, sal: _Saliency, x: Tensor, y: Tensor, s0: Tensor, *,
              members: Sequence[WalkMember], k_top: int, target_map: Tensor | None,
              need_center: bool) -> _State:
        methods = {m.method for m in members}
        need_center = need_center or "mass_center" in methods
        return cls(
            mask=top_k_mask(s0, k_top) if "topK" in methods else None,
            # The original takes c⁰ from the softplus map (spec §4.2).
            center0=truncated_center(sal(sal.surrogate_of(model), x, y)) if need_center else None,
            target_map=target_map,
            s0=s0,
        )

    def repeat(self, copies: int) -> _State:
        """The state of ``copies`` member blocks stacked (row m·B + i is example i)."""
        def rep(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.repeat(copies, *([1] * (t.dim() - 1)))
        return _State(**{k: rep(v) for k, v in self.__dict__.items()})

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
    flat_rule_steps: Tensor

    @classmethod
    def clean(cls, x: Tensor, s0: Tensor) -> _Outcome:
        nan = torch.full((x.shape[0],), float("nan"), device=x.device, dtype=s0.dtype)
        found = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        steps = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        return cls(x.clone(), nan, nan.clone(), nan.clone(), found, s0, s0.clone(), steps)

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
    kind: str | SaliencyMethod
    ig_steps: int
    chunk_size: int | None
    surrogate: str = "softplus"

    def surrogate_of(self, model: nn.Module) -> nn.Module:
        """The network directions differentiate: ``model``'s softplus surrogate, or ``model`` ("none")."""
        return surrogate_model(model, self.surrogate)

    def __call__(self, net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """(B, H, W) detached map, computed ``chunk_size`` examples at a time."""
        return saliency(net, x, y, self.kind, self.ig_steps, chunk_size=self.chunk_size).detach()

    def direction(self, surrogate: nn.Module, x: Tensor, y: Tensor, state: dict[str, Tensor | None],
                  method: str, ig_steps: int | None) -> tuple[Tensor, Tensor]:
        """(sign(∇x D) (B, C, H, W), flat (B,) bool) on the surrogate's map, a chunk of examples at a
        time (each example's D depends on its own image only, so chunking changes nothing).

        ``flat`` marks examples whose objective is exactly constant here (``flat_objective``) or
        whose direction came out all zeros: their direction carries no information.
        """
        steps = ig_steps or self.ig_steps
        # chunk_size counts examples of ig_steps points each; fewer points per example fit more examples.
        chunk = max(1, self.chunk_size * self.ig_steps // steps) if self.chunk_size else x.shape[0]
        signs, flats = [], []
        for start in range(0, x.shape[0], chunk):
            sl = slice(start, start + chunk)
            rows = {k: None if v is None else v[sl] for k, v in state.items()}
            xc = x[sl].detach().requires_grad_(True)
            s2 = saliency(surrogate, xc, y[sl], self.kind, steps, create_graph=True)
            d = objective(method, s2, mask=rows["mask"], center0=rows["center0"],
                          target_map=rows["target_map"], s0=rows["s0"])
            sign = torch.autograd.grad(d.sum(), xc)[0].sign()
            flat = flat_objective(method, s2.detach(), mask=rows["mask"], target_map=rows["target_map"])
            signs.append(sign)
            flats.append(flat | (sign.flatten(1) == 0).all(1))
        return torch.cat(signs), torch.cat(flats)


@dataclass(frozen=True)
class _WalkResult:
    """Per-row results of one walk over stacked member blocks (row m·B + i: member m, example i).

    Two selections run side by side: the faithful one (the label-keeping iterate with the lowest
    criterion: ``crit_min``, ``best``, ``s_best``) and each metric's own minimum over all
    label-keeping iterates (``worst``; 1 where no iterate went below 1), with the iterate of the
    lowest Kendall τ (``x_worst``, ``s_worst``).
    """

    s0: Tensor
    crit_min: Tensor
    best: Tensor
    s_best: Tensor
    worst: dict[str, Tensor]
    x_worst: Tensor
    s_worst: Tensor
    flat_rule_steps: Tensor

    def faithful(self, eval_k_top: int) -> _Outcome:
        """The original's report: S⁰ against the best iterate's map; (1, 1, 1) where none was found."""
        found = self.crit_min < 1
        one = torch.ones_like(self.crit_min)
        return _Outcome(
            x_adv=self.best,
            intersection=torch.where(found, top_k_intersection(self.s0, self.s_best, eval_k_top).to(one.dtype), one),
            spearman=torch.where(found, spearman(self.s0, self.s_best), one),
            kendall=torch.where(found, kendall_tau(self.s0, self.s_best), one),
            found=found,
            saliency=self.s0,
            saliency_adv=self.s_best,
            flat_rule_steps=self.flat_rule_steps,
        )


def _random_start(x: Tensor, epsilon: float, generators: Generators) -> Tensor:
    """x + U(−ε, ε) elementwise, drawn per row from its own generator when given a list."""
    if generators is None or isinstance(generators, torch.Generator):
        return _common.random_start(x, epsilon, generators)
    noise = torch.stack([
        torch.empty(x.shape[1:], device=x.device if g is None else g.device).uniform_(-epsilon, epsilon, generator=g)
        for g in generators
    ]).to(device=x.device, dtype=x.dtype)
    return x + noise


def _walk(model: nn.Module, sal: _Saliency, x: Tensor, y: Tensor, s0: Tensor, state: _State,
          members: Sequence[WalkMember], cfg: _WalkSettings, generators: Generators) -> _WalkResult:
    """One walk of every member over every example at once (B examples → len(members)·B rows).

    ``generators``: None, one generator, or one per row (member-major, like the rows).
    """
    copies, batch = len(members), x.shape[0]
    blocks = [slice(m * batch, (m + 1) * batch) for m in range(copies)]
    if copies > 1:
        x, y, s0, state = x.repeat(copies, 1, 1, 1), y.repeat(copies), s0.repeat(copies, 1, 1), state.repeat(copies)

    def gens(block: slice) -> Generators:
        if generators is None or isinstance(generators, torch.Generator):
            return generators
        return generators[block]

    surrogate = sal.surrogate_of(model)
    lower, upper = _common.feasible_box(x, cfg.epsilon, cfg.bounds)  # the ε-ball ∩ pixel range, once per walk
    x_t = x.clone()
    for member, block in zip(members, blocks):
        if member.random_start:
            x_t[block] = _snap(_random_start(x[block], cfg.epsilon, gens(block)).clamp(lower[block], upper[block]), cfg)
    best, s_best = x.clone(), s0  # the best iterate and its map (kept, so not computed again at the end)
    x_worst, s_worst = x.clone(), s0
    crit_min = torch.ones(x.shape[0], device=x.device, dtype=s0.dtype)
    worst = {name: torch.ones_like(crit_min) for name in ("intersection", "spearman", "kendall")}
    rule_steps = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    for _ in range(cfg.steps):
        d = torch.empty_like(x_t)
        for member, block in zip(members, blocks):
            if member.method == "random":
                d[block] = random_sign(x_t[block], gens(block))
                continue
            d_m, flat = sal.direction(surrogate, x_t[block], y[block], state.rows(block), member.method,
                                      member.direction_ig_steps)
            if cfg.flat_rule == "random_sign":
                # Drawn every step for every row, used only where flat: each example's stream then
                # advances the same way in any batch, and the loop needs no host sync.
                d_m = _where(flat, random_sign(x_t[block], gens(block)), d_m)
                rule_steps[block] += flat
            d[block] = d_m
        x_t = _snap((x_t + cfg.step_size * d).clamp(lower, upper), cfg)  # = project_and_clamp, bit for bit
        with torch.no_grad():
            kept = model(x_t).argmax(1) == y
        s_t = sal(model, x_t, y)
        one = torch.ones_like(crit_min)
        crit = criterion(cfg.measure, s0, s_t, k_top=cfg.k_top, center0=state.center0)
        tau = crit if cfg.measure == "kendall" else kendall_tau(s0, s_t)
        values = {"intersection": top_k_intersection(s0, s_t, cfg.eval_k_top).to(one.dtype),
                  "spearman": spearman(s0, s_t), "kendall": tau}
        crit = torch.where(kept, crit, one)  # a flipped label never counts
        better = crit < crit_min
        crit_min = torch.where(better, crit, crit_min)
        best = _where(better, x_t, best)
        s_best = _where(better, s_t, s_best)
        for name, value in values.items():
            lower_now = kept & (value < worst[name])
            worst[name] = torch.where(lower_now, value, worst[name])
            if name == "kendall":
                x_worst = _where(lower_now, x_t, x_worst)
                s_worst = _where(lower_now, s_t, s_worst)
    return _WalkResult(s0=s0, crit_min=crit_min, best=best, s_best=s_best, worst=worst, x_worst=x_worst,
                       s_worst=s_worst, flat_rule_steps=rule_steps)


def _snap(x: Tensor, cfg: _WalkSettings) -> Tensor:
    """The original casts attacked images to integers after clipping on 0..255 data (spec §4.2)."""
    return torch.trunc(x) if cfg.integer_pixels else x
