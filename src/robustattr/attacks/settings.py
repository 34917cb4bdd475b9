"""Every setting of an attribution attack in one frozen value, built from keywords or from a config.

    >>> s = AttackSettings(epsilon=0.3, step_size=0.01, steps=100, k_top=200, eval_k_top=100)
    >>> s = AttackSettings.from_config(cfg, cfg.dataset_info())     # a robustattr Config
    >>> attacks.attribution_attack(model, x, y, s)
    >>> attacks.attribution_attack(model, x, y, s, steps=20)         # keywords override fields

The Python names follow Captum's vocabulary for the IG points (``n_steps``); the config keys keep
the original's names (``num_IG_steps``, ``attribution_attack_steps`` …), listed in
:meth:`AttackSettings.from_config`. Error messages name the config keys, which is where most
settings come from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from robustattr.attacks.attribution_objectives import FLAT_RULES, MEASURES, SALIENCIES, SURROGATES
from robustattr.attacks.members import MEMBERS
from robustattr.attacks.threat_model import check_bounds, check_epsilon
from robustattr.attribution import SaliencyMethod
from robustattr.errors import UserInputError, did_you_mean

__all__ = ["AttackSettings", "STRONG", "BUDGETS", "Budget"]

#: ``method`` of the strong evaluation (every portfolio member, each metric's worst case).
STRONG = "strong"


@dataclass(frozen=True)
class Budget:
    """What a strong-evaluation budget level sets: ``random_starts`` copies of each member with
    ``copies`` (topK_random_start, ig_cosine, rank_kendall), and ``share``: how many walks' worth of moves the
    portfolio's other members make together per iteration, beside the faithful topK walk, which
    moves at every one of the ``attribution_attack_steps`` iterations. Each other walk j moves
    every ``stride_j`` = ⌈W / (share · w_j)⌉-th iteration (w_j its member's ``weight``, W their sum)
    with a ``stride_j``-times step (``attacks.strong_attribution.portfolio``), so the portfolio
    costs about (1 + share) faithful walks at any size. Each level doubles the one below in both."""

    random_starts: int
    share: float


#: ``attribution_attack_budget`` levels (docs/attribution-evaluation.md, "Budget and convergence").
#: A share of 0.9 rather than 1 at ``standard`` leaves a tenth of a walk for what the portfolio pays
#: beside its moves (its members' state, a second pass per iteration), so that ``standard`` stays
#: within 2× the faithful walk (``bench/strong_vs_faithful.py``).
BUDGETS = {"fast": Budget(1, 0.45), "standard": Budget(2, 0.9), "thorough": Budget(4, 1.8)}


def _choose(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserInputError(
            f"{name}={value!r} is not supported; choose from {', '.join(choices)}" + did_you_mean(value, choices)
        )


@dataclass(frozen=True, kw_only=True)
class AttackSettings:
    """One attribution attack's settings (config key in brackets where it differs).

    epsilon, step_size: L∞ radius and step in x's units (``epsilon``, ``attribution_attack_step_size``).
    steps: iterations per walk (``attribution_attack_steps``); times: restarts of a stochastic member
        (``attribution_attack_times``).
    k_top: pixels the topK objective moves and the intersection criterion counts; eval_k_top: k of the
        reported intersections (None: ``k_top``; :attr:`eval_k`).
    method: a member of ``attacks.members.MEMBERS`` (``attribution_attack_method``) or ``"strong"``;
        measure: the walk's criterion, which iterate the faithful walk keeps (``attribution_attack_measure``).
    saliency: a ``saliency_type`` name or a :class:`SaliencyMethod`; n_steps: IG points (``num_IG_steps``).
    bounds: the pixel range; integer_pixels: truncate iterates to integers (0..255 datasets).
    flat_rule: what a walk does where its objective is flat (``attribution_attack_flat_rule``);
        surrogate: the network directions come from (``attribution_attack_surrogate``).
    budget: the strong evaluation's level, fast | standard | thorough (``attribution_attack_budget``,
        :data:`BUDGETS`): its random starts and steps factor.
    random_starts: copies of the strong portfolio's restarted members (``strong_random_starts``;
        None: the budget's, :attr:`starts`); direction_n_steps: IG points of the directions of
        members without ``full_direction`` (``strong_direction_ig_steps``; None: all n_steps,
        :attr:`direction_points`).
    seed: per-example generators are seeded by (seed, example id) (``random_seed``).
    target_box: [r0, c0, r1, c1] of the target member's map (``attribution_attack_target``).
    chunk_size: examples per double-backprop pass (None: all; no effect on results).
    """

    epsilon: float
    step_size: float
    steps: int
    k_top: int
    eval_k_top: int | None = None
    method: str = "topK"
    measure: str = "kendall"
    times: int = 1
    saliency: str | SaliencyMethod = "ig"
    n_steps: int = 100
    bounds: tuple[float, float] = (0.0, 1.0)
    integer_pixels: bool = False
    flat_rule: str = "random_sign"
    surrogate: str = "softplus"
    budget: str = "standard"
    random_starts: int | None = None
    direction_n_steps: int | None = None
    seed: int = 0
    target_box: tuple[int, int, int, int] | None = None
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        _choose("attribution_attack_method", self.method, (*MEMBERS, STRONG))
        _choose("attribution_attack_measure", self.measure, MEASURES)
        _choose("saliency_type", getattr(self.saliency, "kind", self.saliency), SALIENCIES)
        _choose("attribution_attack_flat_rule", self.flat_rule, FLAT_RULES)
        _choose("attribution_attack_surrogate", self.surrogate, SURROGATES)
        _choose("attribution_attack_budget", self.budget, tuple(BUDGETS))
        object.__setattr__(self, "epsilon", check_epsilon(self.epsilon))
        object.__setattr__(self, "bounds", check_bounds(self.bounds))
        for name, value, low in (("attribution_attack_steps", self.steps, 0), ("attribution_attack_times", self.times, 1),
                                 ("num_IG_steps", self.n_steps, 1), ("strong_random_starts", self.starts, 0)):
            if int(value) < low:
                raise UserInputError(f"{name}={value} must be >= {low}")
        if self.direction_n_steps is not None and int(self.direction_n_steps) < 1:
            raise UserInputError(f"strong_direction_ig_steps={self.direction_n_steps} must be >= 1")

    @property
    def eval_k(self) -> int:
        """k of the reported intersections: ``eval_k_top``, else ``k_top``."""
        return self.k_top if self.eval_k_top is None else self.eval_k_top

    @property
    def direction_points(self) -> int:
        """IG points of the strong portfolio's directions: ``direction_n_steps``, else all ``n_steps``
        (measured: fewer points lose per-image worst cases, docs/attribution-evaluation.md)."""
        return self.direction_n_steps or self.n_steps

    @property
    def starts(self) -> int:
        """Copies of each restarted portfolio member: ``random_starts``, else the budget's."""
        return BUDGETS[self.budget].random_starts if self.random_starts is None else self.random_starts

    @property
    def strong_steps(self) -> int:
        """Iterations of the strong portfolio: ``steps``, the faithful walk's (the other members move
        at a share of them, :attr:`share`)."""
        return int(self.steps)

    @property
    def share(self) -> float:
        """Walks' worth of moves the strong portfolio's other members make per iteration (the budget's)."""
        return BUDGETS[self.budget].share

    @classmethod
    def of(cls, settings: AttackSettings | None = None, **overrides: Any) -> AttackSettings:
        """``settings`` with ``overrides`` replaced, or new settings from the keywords alone.

        Raises TypeError naming an unknown keyword (``ig_steps`` is now ``n_steps``).
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in overrides if k not in names]
        if unknown:
            renamed = {"ig_steps": "n_steps", "direction_ig_steps": "direction_n_steps"}
            hint = renamed.get(unknown[0])
            raise TypeError(f"unknown attack setting {unknown[0]!r}"
                            + (f" (now called {hint!r})" if hint else did_you_mean(unknown[0], names)))
        if settings is None:
            return cls(**overrides)
        return dataclasses.replace(settings, **overrides) if overrides else settings

    @classmethod
    def from_config(cls, cfg: Any, info: Any = None, *, chunk_size: int | None = None) -> AttackSettings:
        """The attack a robustattr Config asks for: ``attribution_attack_method`` (``"strong"`` included),
        ``attribution_attack_measure``, ``epsilon``, ``attribution_attack_step_size``,
        ``attribution_attack_steps``, ``attribution_attack_times``, ``k_top``, ``eval_k_top``, the
        saliency (``saliency_type``, ``num_IG_steps``, ``ig_baseline``, ``smoothgrad_*``),
        ``attribution_attack_flat_rule``, ``attribution_attack_surrogate``, ``attribution_attack_budget``,
        ``strong_random_starts``,
        ``strong_direction_ig_steps``, ``random_seed``, ``attribution_attack_target``; the pixel range
        and integer pixels (the original casts attacked 0..255 images to integers, spec §4.2) from the
        dataset's ``info`` (a ``DatasetInfo``; default ``cfg.dataset_info()``)."""
        info = cfg.dataset_info() if info is None else info
        bounds = tuple(info.value_range)
        box = cfg.attribution_attack_target
        return cls(
            method=cfg.attribution_attack_method, measure=cfg.attribution_attack_measure, epsilon=cfg.epsilon,
            step_size=cfg.attribution_attack_step_size, steps=cfg.attribution_attack_steps,
            times=cfg.attribution_attack_times, k_top=cfg.k_top, eval_k_top=cfg.eval_k_top,
            saliency=SaliencyMethod.from_config(cfg, bounds), n_steps=cfg.num_IG_steps, bounds=bounds,
            integer_pixels=bool(info.integer_pixels), flat_rule=cfg.attribution_attack_flat_rule,
            surrogate=cfg.attribution_attack_surrogate, random_starts=cfg.strong_random_starts,
            budget=cfg.attribution_attack_budget,
            direction_n_steps=cfg.strong_direction_ig_steps, seed=cfg.random_seed,
            target_box=None if box is None else tuple(box), chunk_size=chunk_size,
        )

    def check_image(self, image_hw: tuple[int, int], has_target: bool | None = None) -> None:
        """Raise :class:`UserInputError` naming the setting when the attack cannot run on (H, W)
        images: k_top or eval_k_top outside 1..H·W, a target member without a target (``has_target``
        None: a ``target_box`` is set, and it must fit the image)."""
        pixels = image_hw[0] * image_hw[1]
        for name, k in (("k_top", self.k_top), ("eval_k_top", self.eval_k)):
            if not 1 <= k <= pixels:
                raise UserInputError(
                    f"{name}={k} must lie in 1..{pixels} (the number of pixels, {image_hw[0]}x{image_hw[1]})"
                )
        if self.method != STRONG and "target_map" in MEMBERS[self.method].needs:
            if has_target is None:
                has_target = self.target_box is not None
                if has_target:
                    from robustattr.attacks.members.target import target_map_from_box

                    target_map_from_box(self.target_box, image_hw)
            if not has_target:
                raise UserInputError(
                    f"attribution_attack_method={self.method!r} needs a target map: set "
                    "attribution_attack_target=[r0, c0, r1, c1] (or --target-box)"
                )
