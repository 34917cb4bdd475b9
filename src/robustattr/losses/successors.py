"""TRADES, IGR, LGA, SSR and ART as losses for your own loop (docs/objectives.md has each formula).

Every constructor argument defaults to the objective's MNIST preset (``configs/mnist/<name>.json``);
weights are named as in the formulas (``beta``; ``lam``, ``m``; ``lam_l2``, ``lam_cos``; ``alpha``,
``scale``; ``gamma``). ``criterion(model, x, y)`` returns the scalar loss with its graph;
``criterion.terms(...)`` the loss and its detached logs; ``criterion.regularizer(model, x, x_adv, y)``
the weighted per-example term (B,) the loss adds to its base for a given x′ (LGA: x′ = x + z; SSR:
the curvature at x′, its loss passing x′ = x). Random draws come from torch's global RNG.

    >>> criterion = IGR(lam=1.0, m=10)                       # TRADES base + λ·(1 − cos(IG(x), IG(x′)))
    >>> loss = criterion(model, x, y); loss.backward()
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import Tensor, nn

from robustattr.errors import UserInputError
from robustattr.keys import BadValue
from robustattr.losses._paper import _Objective
from robustattr.training.objectives import LossOut, ObjectiveParams
from robustattr.training.objectives.art import ARTParams, art, art_regularizer
from robustattr.training.objectives.igr import IGRParams, igr, igr_regularizer
from robustattr.training.objectives.lga import LGAParams, lga, lga_regularizer
from robustattr.training.objectives.ssr import SSRParams, ssr, ssr_regularizer
from robustattr.training.objectives.trades import TRADESParams, trades, trades_regularizer

__all__ = ["TRADES", "IGR", "LGA", "SSR", "ART"]


def _checked(params_type: type, values: dict) -> object:
    """``params_type(**values)`` with each field passed through its config key's type and range
    check, so a bad value is the same one-line error as in a config (named by argument)."""
    out = {}
    for f in dataclasses.fields(params_type):
        spec = f.metadata["key"]
        value = values[f.name]
        try:
            value = spec.kind(value)
            if spec.check is not None:
                spec.check(value, None)
        except BadValue as exc:
            raise UserInputError(f"{f.name}={values[f.name]!r} {exc}") from None
        out[f.name] = value
    return params_type(**out)


@dataclass(frozen=True)
class _Successor(_Objective):
    """The paper's losses' shared fields (L∞ radius, pixel range, inner attack, reduction, weight
    decay, ``terms``/``__call__``), plus the objective's own checked parameters (:meth:`hyper`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight_decay < 0:
            raise UserInputError(f"weight_decay={self.weight_decay!r} must be >= 0")
        self.hyper()  # validates

    def hyper(self) -> object:
        """The objective's own parameters (its registry dataclass), checked."""
        raise NotImplementedError

    def _params(self, **extra: object) -> ObjectiveParams:
        return ObjectiveParams(
            reduction=self.reduction, weight_decay=float(self.weight_decay), epsilon=float(self.epsilon),
            num_steps=int(self.pgd_steps), step_size=float(self.step_size), random_start=bool(self.random_start),
            bounds=(float(self.bounds[0]), float(self.bounds[1])), hyper=self.hyper(), **extra)


@dataclass(frozen=True)
class TRADES(_Successor):
    """TRADES (Zhang et al. 2019): CE(f(x), y) + β·KL(f(x) ‖ f(x′)), x′ from KL-PGD started at
    x + ``start_std``·(high − low)·N(0, I)."""

    beta: float = 1.0
    start_std: float = 0.001

    def hyper(self) -> TRADESParams:
        return _checked(TRADESParams, {"beta": self.beta, "start_std": self.start_std})

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> LossOut:
        return trades(model, x, y, self._params())

    def regularizer(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        """β·KL(f(x) ‖ f(x′)) per example, (B,); ``y`` unused."""
        return trades_regularizer(model, x, x_adv, self.hyper().beta)[0]


@dataclass(frozen=True)
class IGR(_Successor):
    """IGR (Wang & Kong 2022): base + λ·(1 − cos(IG(x), IG(x′))), base ``"trades"`` (CE + β·KL,
    x′ from KL-PGD) or ``"madry"`` (CE(f(x′)), x′ from CE-PGD); IG of the true-class logit, zero
    baseline, ``m`` right-Riemann points, IG(x′) to second order. ``chunk_size`` bounds memory (the
    term of each chunk is then backpropagated inside the call)."""

    lam: float = 1.0
    m: int = 10
    base: str = "trades"
    beta: float = 1.0
    start_std: float = 0.001
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.m, bool) or not isinstance(self.m, int) or self.m < 1:
            raise UserInputError(f"m={self.m!r} must be an integer >= 1")
        if not self.lam >= 0:
            raise UserInputError(f"lam={self.lam!r} must be >= 0")

    def hyper(self) -> IGRParams:
        return _checked(IGRParams, {"base": self.base, "beta": self.beta, "start_std": self.start_std})

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> LossOut:
        return igr(model, x, y, self._params(lam=float(self.lam), m=int(self.m), chunk_size=self.chunk_size,
                                             pgd_chunk_size=self.chunk_size))

    def regularizer(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        """λ·(1 − cos(IG(x), IG(x′))) per example, (B,); IG(x) detached, IG(x′) with its graph."""
        return igr_regularizer(model, x, x_adv, y, float(self.lam), int(self.m))


@dataclass(frozen=True)
class LGA(_Successor):
    """LGA (Joo et al. 2023): CE(f(x), y) + λ_l2·‖g(x) − g(x′)‖² + λ_cos·(1 − cos(g(x), g(x′)))/2,
    x′ = clip(x + U(−ε, ε)), g = ∇ₓ f_y, g(x) detached unless ``detach_source=False``
    (``variant="gradient"``); or
    CE + λ_h·‖∇ₓ(vᵀ∇ₓ f_y)‖², v ~ N(0, I) = x′ − x, on the softplus surrogate (``"hessian"``).
    No inner maximisation: ``pgd_steps`` and ``step_size`` are unused."""

    variant: str = "gradient"
    lam_l2: float = 0.1
    lam_cos: float = 1.0
    lam_hessian: float = 1.0
    detach_source: bool = True

    def hyper(self) -> LGAParams:
        return _checked(LGAParams, {"variant": self.variant, "lam_l2": self.lam_l2, "lam_cos": self.lam_cos,
                                    "lam_hessian": self.lam_hessian, "detach_source": self.detach_source})

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> LossOut:
        return lga(model, x, y, self._params())

    def regularizer(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        """The weighted LGA term per example, (B,), for x′ = x + z (or x + v, Hessian variant)."""
        return lga_regularizer(model, x, x_adv, y, self.hyper())


@dataclass(frozen=True)
class SSR(_Successor):
    """SSR (Wang et al. 2020): (1 − α)·CE(f(x), y) + α·s·λ_max(W A Wᵀ), the largest eigenvalue of the
    input Hessian of CE. No inner maximisation: ``epsilon``, ``pgd_steps``, ``step_size`` are unused."""

    alpha: float = 0.3
    scale: float = 1.0

    def hyper(self) -> SSRParams:
        return _checked(SSRParams, {"alpha": self.alpha, "scale": self.scale})

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> LossOut:
        return ssr(model, x, y, self._params())

    def regularizer(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        """α·s·λ_max at ``x_adv`` per example, (B,) (the loss passes x′ = x)."""
        hp = self.hyper()
        return ssr_regularizer(model, x, x_adv, y, hp.alpha, hp.scale)


@dataclass(frozen=True)
class ART(_Successor):
    """ART (Singh et al. 2020): CE(f(x′), y) + γ·softplus(d_ap − d_an), d = 1 − cos(x, ∇ₓ g_c) on the
    softplus surrogate; x′ from the alignment attack (``pgd_steps`` sparse sign steps of ``step_size``
    on the ``top_k`` pixels of largest |gradient|, from x + U(−ε, ε); the config's ``art_steps``,
    ``art_step_size``, ``art_top_k``)."""

    pgd_steps: int = 3
    step_size: float = 0.1
    gamma: float = 1.0
    top_k: int = 200

    def hyper(self) -> ARTParams:
        return _checked(ARTParams, {"gamma": self.gamma, "top_k": self.top_k, "steps": self.pgd_steps,
                                    "step_size": self.step_size})

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> LossOut:
        return art(model, x, y, self._params())

    def regularizer(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        """γ·softplus(max d(·, y) − min d(·, j*)) per example, (B,), j* the strongest other class at x."""
        return art_regularizer(model, x, x_adv, y, self.hyper().gamma)
