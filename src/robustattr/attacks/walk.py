"""The attribution-walk engine: any mix of walks ("members") over a batch, all stacked at once.

Iterative L∞ sign ascent on a member's objective computed on the softplus surrogate's saliency
map (spec §4.2/§4.3), keeping the label-preserving iterates. Every example carries its own best
iterate and running minima, and nothing leaves the device in the loop. The faithful attack
(``attacks.attribution_attack``) walks one member, the strong evaluation
(``attacks.strong_attribution``) several; a member is registered in ``attacks.members``, and the
engine asks it for its objective, its flat test and the state it needs, never for its name.

Directions are exact autograd derivatives, with one documented deviation (``flat_rule``,
docs/attribution-evaluation.md): where a member's objective is exactly flat at an iteration
(topK's D = −Σ M⊙S₂ when the map has at most ``k_top`` lit pixels, most MNIST digits at
k_top=200), the example takes a seeded random ±1 step for that iteration instead, drawn from its
own generator so results do not depend on the batch; ``"none"`` keeps the old behaviour.

    >>> sal = WalkSaliency("ig", n_steps=10, chunk_size=None)
    >>> attacked, s0, idx = clean_maps(model, sal, x, y)
    >>> members = (WalkMember.of(MEMBERS["topK"]),)
    >>> state = WalkState.build(model, sal, x[idx], y[idx], s0[idx], members=members, k_top=200)
    >>> r = walk(model, sal, x[idx], y[idx], s0[idx], state, members, settings, generators=None)
    >>> r.faithful(eval_k_top=100).kendall
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustattr.attacks.attribution_objectives import (
    criterion, logits_in_blocks, random_sign, saliency, surrogate_model,
)
from robustattr.attacks.members import STATE_ITEMS, Member, StateInputs
from robustattr.attacks.threat_model import Generators, check_bounds, check_epsilon, feasible_box, random_start
from robustattr.attribution import SaliencyMethod
from robustattr.metrics import kendall_tau, spearman, top_k_intersection

__all__ = ["WalkSettings", "WalkSaliency", "WalkMember", "WalkState", "WalkResult", "WalkOutcome", "walk",
           "clean_maps", "check_generators", "generator_rows"]


@dataclass(frozen=True)
class WalkSettings:
    """How every walk of a batch steps and scores: the criterion ``measure`` (kendall, spearman,
    intersection at ``k_top``, mass_center), ``epsilon`` and ``step_size`` in x's units, ``steps``
    iterations, ``eval_k_top`` for the reported intersections, the pixel range ``bounds``,
    ``integer_pixels`` (truncate iterates, 0..255 data) and the ``flat_rule``."""

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
    def checked(cls, **kw) -> WalkSettings:
        """Settings with ``epsilon`` and ``bounds`` validated (``attacks.threat_model``)."""
        kw["epsilon"] = check_epsilon(kw["epsilon"])
        kw["bounds"] = check_bounds(kw["bounds"])
        return cls(**kw)


@dataclass(frozen=True)
class WalkSaliency:
    """The saliency maps of a walk: ``kind`` (a name or a :class:`SaliencyMethod`) with ``n_steps``
    IG points, ``chunk_size`` examples per double-backprop pass (None: all), directions from the
    ``surrogate`` ("softplus", or "none": the model itself)."""

    kind: str | SaliencyMethod
    n_steps: int
    chunk_size: int | None
    surrogate: str = "softplus"

    def surrogate_of(self, model: nn.Module) -> nn.Module:
        """The network directions differentiate: ``model``'s softplus surrogate, or ``model`` ("none")."""
        return surrogate_model(model, self.surrogate)

    def __call__(self, net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """(B, H, W) detached map, computed ``chunk_size`` examples at a time."""
        return saliency(net, x, y, self.kind, self.n_steps, chunk_size=self.chunk_size).detach()

    def direction(self, surrogate: nn.Module, x: Tensor, y: Tensor, state: dict[str, Tensor],
                  member: Member, n_steps: int | None) -> tuple[Tensor, Tensor]:
        """(sign(∇x D) (B, C, H, W), flat (B,) bool) of ``member``'s objective D on the surrogate's
        map with ``n_steps`` points (None: ``self.n_steps``), a chunk of examples at a time (each
        example's D depends on its own image only, so chunking changes nothing).

        ``flat`` marks examples whose objective is exactly constant here (``member.flat``) or whose
        direction came out all zeros: their direction carries no information.
        """
        steps = n_steps or self.n_steps
        # chunk_size counts examples of n_steps points each; fewer points per example fit more examples.
        chunk = max(1, self.chunk_size * self.n_steps // steps) if self.chunk_size else x.shape[0]
        signs, flats = [], []
        for start in range(0, x.shape[0], chunk):
            sl = slice(start, start + chunk)
            rows = {k: v[sl] for k, v in state.items()}
            xc = x[sl].detach().requires_grad_(True)
            s2 = saliency(surrogate, xc, y[sl], self.kind, steps, create_graph=True)
            d = member.objective(s2, rows)
            if member.logits_term is not None:  # e.g. holding the logits (targeted_shift)
                d = d + member.logits_term(logits_in_blocks(surrogate, xc), rows)
            sign = torch.autograd.grad(d.sum(), xc)[0].sign()
            if member.flat is None:
                flat = torch.zeros(s2.shape[0], dtype=torch.bool, device=s2.device)
            else:
                flat = member.flat(s2.detach(), rows)
            signs.append(sign)
            flats.append(flat | (sign.flatten(1) == 0).all(1))
        return torch.cat(signs), torch.cat(flats)


@dataclass(frozen=True)
class WalkMember:
    """One walk of a batch: its ``name`` in results, the registered member ``kind`` it runs, whether
    it starts from a random point, the IG points its direction comes from (None: the walk's
    ``n_steps``), its generator ``stream`` (``attacks._common.example_generator``), and its share
    of the iterations: it moves at the iterations t with ``t % stride == phase``, each move
    ``stride`` × the step size (capped at 2ε, the ball's diameter), so it covers the distance of a
    walk that moves at every iteration with ``1/stride`` of its passes (the strong evaluation's
    shared budget, ``attacks.strong_attribution``)."""

    name: str
    kind: Member
    random_start: bool = False
    direction_n_steps: int | None = None
    stream: int = 0
    stride: int = 1
    phase: int = 0

    def __post_init__(self) -> None:
        if int(self.stride) < 1 or not 0 <= int(self.phase) < int(self.stride):
            raise ValueError(f"walk {self.name!r}: stride {self.stride} must be >= 1 and phase {self.phase} in 0..stride-1")

    def moves_at(self, iteration: int) -> bool:
        """Whether this walk takes a step (and is scored) at ``iteration`` (0-based)."""
        return iteration % self.stride == self.phase

    @classmethod
    def of(cls, kind: Member, name: str | None = None, **kw) -> WalkMember:
        """A walk of ``kind`` with its registered start and stream (``kw`` overrides them)."""
        kw = {"random_start": kind.random_start, "stream": kind.stream, **kw}
        return cls(name or kind.name, kind, **kw)


@dataclass(frozen=True)
class WalkState:
    """Per-example constants of the objectives by name (``attacks.members.STATE_ITEMS`` plus ``s0``,
    the clean ReLU maps (B, H, W)); rows follow the walked examples."""

    tensors: dict[str, Tensor]

    @classmethod
    def build(cls, model: nn.Module, sal: WalkSaliency, x: Tensor, y: Tensor, s0: Tensor, *,
              members: Sequence[WalkMember], k_top: int, target_map: Tensor | None = None,
              need: Sequence[str] = ()) -> WalkState:
        """The items the ``members`` need, and those in ``need`` (``center0`` for the mass_center
        criterion), for x (B, C, H, W), y (B,), s0 (B, H, W); target_map (B, H, W) or None."""
        wanted = {n for m in members for n in m.kind.needs} | set(need)
        inputs = StateInputs(model, sal, x, y, s0, k_top, target_map)
        tensors = {name: build(inputs) for name, build in STATE_ITEMS.items() if name in wanted}
        tensors["s0"] = s0
        return cls(tensors)

    def __getitem__(self, name: str) -> Tensor:
        return self.tensors[name]

    def get(self, name: str) -> Tensor | None:
        return self.tensors.get(name)

    def repeat(self, copies: int) -> WalkState:
        """The state of ``copies`` member blocks stacked (row m·B + i is example i)."""
        return WalkState({k: t.repeat(copies, *([1] * (t.dim() - 1))) for k, t in self.tensors.items()})

    def rows(self, sl: slice) -> dict[str, Tensor]:
        return {k: v[sl] for k, v in self.tensors.items()}


def clean_maps(model: nn.Module, sal: WalkSaliency, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(attacked (B,) bool, clean ReLU maps (B, H, W), indices of the attacked examples (N,) int64)."""
    with torch.no_grad():
        attacked = model(x).argmax(1) == y
    s0 = sal(model, x, y)
    # The one host sync per batch: the walks run on the correctly classified examples only.
    return attacked, s0, attacked.nonzero().squeeze(1)


def check_generators(generator: Generators, rows: int) -> None:
    """A list of generators must give one per row."""
    if not isinstance(generator, (torch.Generator, type(None))) and len(generator) != rows:
        raise ValueError(f"got {len(generator)} generators for a batch of {rows}")


def generator_rows(generator: Generators, idx: Tensor) -> Generators:
    """The generators of rows ``idx`` (a single generator, or None, serves every row)."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    return [generator[i] for i in idx.tolist()]


@dataclass(frozen=True)
class WalkOutcome:
    """Per-example report of one walk: x_adv (B, C, H, W); intersection, spearman, kendall (B,);
    found (B,) bool; saliency, saliency_adv (B, H, W); flat_rule_steps (B,) int64."""

    x_adv: Tensor
    intersection: Tensor
    spearman: Tensor
    kendall: Tensor
    found: Tensor
    saliency: Tensor
    saliency_adv: Tensor
    flat_rule_steps: Tensor

    @classmethod
    def clean(cls, x: Tensor, s0: Tensor) -> WalkOutcome:
        """Not attacked: the clean image and map, NaN metrics."""
        nan = torch.full((x.shape[0],), float("nan"), device=x.device, dtype=s0.dtype)
        found = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        steps = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        return cls(x.clone(), nan, nan.clone(), nan.clone(), found, s0, s0.clone(), steps)

    def keep_lower_kendall(self, other: WalkOutcome) -> WalkOutcome:
        """Per example, ``other`` where its Kendall τ is strictly lower (first restart wins ties)."""
        take = other.kendall < self.kendall
        return WalkOutcome(**{k: _where(take, getattr(other, k), v) for k, v in self.__dict__.items()})

    def scatter(self, idx: Tensor, part: WalkOutcome) -> WalkOutcome:
        """Copy of self with rows ``idx`` replaced by ``part``."""
        fields = {}
        for k, v in self.__dict__.items():
            v = v.clone()
            v[idx] = getattr(part, k).to(v.dtype)
            fields[k] = v
        return WalkOutcome(**fields)


def _where(cond: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return torch.where(cond.view(-1, *([1] * (a.dim() - 1))), a, b)


@dataclass(frozen=True)
class WalkResult:
    """Per-row results of one walk over stacked member blocks (row m·B + i: member m, example i).

    Two selections run side by side: the faithful one (the label-keeping iterate with the lowest
    criterion: ``crit_min``, ``best``, ``s_best``) and each metric's own minimum over all
    label-keeping iterates (``worst``; 1 where no iterate went below 1), with the iterate of the
    lowest Kendall τ (``x_worst``, ``s_worst``). ``history``: metric → (steps, rows) ``worst`` after
    each step (never rising down a column); ``kept_any`` (rows,) bool: some iterate kept the label.
    """

    s0: Tensor
    crit_min: Tensor
    best: Tensor
    s_best: Tensor
    worst: dict[str, Tensor]
    x_worst: Tensor
    s_worst: Tensor
    flat_rule_steps: Tensor
    history: dict[str, Tensor] | None = None
    kept_any: Tensor | None = None

    def faithful(self, eval_k_top: int) -> WalkOutcome:
        """The original's report: S⁰ against the best iterate's map; (1, 1, 1) where none was found."""
        found = self.crit_min < 1
        one = torch.ones_like(self.crit_min)
        return WalkOutcome(
            x_adv=self.best,
            intersection=torch.where(found, top_k_intersection(self.s0, self.s_best, eval_k_top).to(one.dtype), one),
            spearman=torch.where(found, spearman(self.s0, self.s_best), one),
            kendall=torch.where(found, kendall_tau(self.s0, self.s_best), one),
            found=found,
            saliency=self.s0,
            saliency_adv=self.s_best,
            flat_rule_steps=self.flat_rule_steps,
        )


def walk(model: nn.Module, sal: WalkSaliency, x: Tensor, y: Tensor, s0: Tensor, state: WalkState,
         members: Sequence[WalkMember], settings: WalkSettings, generators: Generators) -> WalkResult:
    """One walk of every member over every example at once (B examples → len(members)·B rows).

    x (B, C, H, W) inside ``settings.bounds``, correctly classified; y (B,); s0 (B, H, W) their clean
    maps; ``state`` built for them (:meth:`WalkState.build`). ``generators``: None, one generator,
    or one per row (member-major, like the rows). Call it inside ``attack_mode(model)`` with grad on.
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
    lower, upper = feasible_box(x, settings.epsilon, settings.bounds)  # the ε-ball ∩ pixel range, once per walk
    x_t = x.clone()
    for member, block in zip(members, blocks):
        if member.random_start:
            x_t[block] = _snap(random_start(x[block], settings.epsilon, gens(block)).clamp(lower[block], upper[block]), settings)
    step: float | Tensor = settings.step_size
    if any(m.stride > 1 for m in members):  # per-row steps: a walk moving every stride-th iteration steps stride×
        step = torch.cat([torch.full((batch,), min(settings.step_size * m.stride, 2 * settings.epsilon),
                                     dtype=x.dtype, device=x.device) for m in members]).view(-1, 1, 1, 1)
    best, s_best = x.clone(), s0  # the best iterate and its map (kept, so not computed again at the end)
    x_worst, s_worst = x.clone(), s0
    crit_min = torch.ones(x.shape[0], device=x.device, dtype=s0.dtype)
    worst = {name: torch.ones_like(crit_min) for name in ("intersection", "spearman", "kendall")}
    rule_steps = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    kept_any = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    history: dict[str, list[Tensor]] = {name: [] for name in worst}
    row_sets: dict[tuple[int, ...], Tensor | None] = {}
    for t in range(settings.steps):
        moving = tuple(j for j, m in enumerate(members) if m.moves_at(t))
        if moving not in row_sets:  # None: every row (the faithful walk's path, unchanged)
            row_sets[moving] = None if len(moving) == copies else torch.cat(
                [torch.arange(blocks[j].start, blocks[j].stop) for j in moving] or [torch.zeros(0, dtype=torch.long)]
            ).to(x.device)
        rows = row_sets[moving]

        def take(v: Tensor) -> Tensor:
            return v if rows is None else v[rows]

        def put(full: Tensor, part: Tensor) -> Tensor:
            return part if rows is None else full.index_copy(0, rows, part)

        if rows is not None and rows.numel() == 0:  # nobody moves at this iteration
            for name in history:
                history[name].append(worst[name])
            continue
        d = torch.empty_like(x_t) if rows is None else torch.zeros_like(x_t)
        for j in moving:
            member, block = members[j], blocks[j]
            if member.kind.objective is None:  # a random walk
                d[block] = random_sign(x_t[block], gens(block))
                continue
            d_m, flat = sal.direction(surrogate, x_t[block], y[block], state.rows(block), member.kind,
                                      member.direction_n_steps)
            if settings.flat_rule == "random_sign":
                # Drawn at every move for every row of the walk, used only where flat: each example's
                # stream then advances the same way in any batch, and the loop needs no host sync.
                d_m = _where(flat, random_sign(x_t[block], gens(block)), d_m)
                rule_steps[block] += flat
            d[block] = d_m
        step_r = step if isinstance(step, float) else take(step)
        x_r = _snap((take(x_t) + step_r * take(d)).clamp(take(lower), take(upper)), settings)  # = project_and_clamp
        x_t = put(x_t, x_r)
        y_r = take(y)
        with torch.no_grad():
            kept = model(x_r).argmax(1) == y_r
        kept_any = put(kept_any, take(kept_any) | kept)
        s_t = sal(model, x_r, y_r)
        s0_r = take(s0)
        center0 = state.get("center0")
        one = torch.ones_like(take(crit_min))
        crit = criterion(settings.measure, s0_r, s_t, k_top=settings.k_top,
                         center0=None if center0 is None else take(center0))
        tau = crit if settings.measure == "kendall" else kendall_tau(s0_r, s_t)
        values = {"intersection": top_k_intersection(s0_r, s_t, settings.eval_k_top).to(one.dtype),
                  "spearman": spearman(s0_r, s_t), "kendall": tau}
        crit = torch.where(kept, crit, one)  # a flipped label never counts
        better = crit < take(crit_min)
        crit_min = put(crit_min, torch.where(better, crit, take(crit_min)))
        best = put(best, _where(better, x_r, take(best)))
        s_best = put(s_best, _where(better, s_t, take(s_best)))
        for name, value in values.items():
            lower_now = kept & (value < take(worst[name]))
            worst[name] = put(worst[name], torch.where(lower_now, value, take(worst[name])))
            if name == "kendall":
                x_worst = put(x_worst, _where(lower_now, x_r, take(x_worst)))
                s_worst = put(s_worst, _where(lower_now, s_t, take(s_worst)))
            history[name].append(worst[name])  # a new tensor each step (torch.where), never written to
    steps_shape = (0, x.shape[0])
    return WalkResult(s0=s0, crit_min=crit_min, best=best, s_best=s_best, worst=worst, x_worst=x_worst,
                      s_worst=s_worst, flat_rule_steps=rule_steps,
                      history={k: torch.stack(v) if v else crit_min.new_empty(steps_shape) for k, v in history.items()},
                      kept_any=kept_any)


def _snap(x: Tensor, settings: WalkSettings) -> Tensor:
    """The original casts attacked images to integers after clipping on 0..255 data (spec §4.2)."""
    return torch.trunc(x) if settings.integer_pixels else x
