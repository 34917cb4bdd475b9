"""Saliency maps as the paper's evaluation uses them (spec §2.3), and the methods they can come from.

Besides the paper's IG (zero baseline) and simple gradient: IG from a constant non-zero baseline,
input × gradient (Shrikumar et al., 2016) and SmoothGrad (Smilkov et al., 2017) with seeded noise.
Every method is a deterministic function of the input, differentiable with ``create_graph=True``,
so an attack can ascend it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from robustattr.attribution.ig import _target_logit, integrated_gradients, mean_point_gradients, simple_gradient
from robustattr.errors import UserInputError, did_you_mean



def saliency_map(attributions: Tensor) -> Tensor:
    """Channel-summed |attributions|, normalised so each map sums to H·W.

    Args:
        attributions: (B, C, H, W).
    Returns:
        (B, H, W) non-negative; an all-zero attribution gives the uniform map of ones.
    """
    s = attributions.abs().sum(dim=1)
    h, w = s.shape[-2:]
    total = s.sum(dim=(1, 2), keepdim=True)
    uniform = total == 0
    return (s * (h * w) / total.masked_fill(uniform, 1.0)).masked_fill(uniform, 1.0)


def ig_saliency(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    n_steps: int = 100,
    create_graph: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """(B, H, W) IG saliency with the zero baseline and ``n_steps`` points: ``saliency_map(integrated_gradients(...))``."""
    return saliency_map(integrated_gradients(model, x, target, n_steps=n_steps, create_graph=create_graph, chunk_size=chunk_size))


def gradient_saliency(model: nn.Module, x: Tensor, target: Tensor, create_graph: bool = False) -> Tensor:
    """(B, H, W) simple-gradient saliency: normalised Σ_c |∇_x f_target| (no ×input, spec §2.3)."""
    return saliency_map(simple_gradient(model, x, target, create_graph=create_graph))


def input_x_gradient(model: nn.Module, x: Tensor, target: Tensor, create_graph: bool = False) -> Tensor:
    """x ⊙ ∇_x f_target(x): (B, C, H, W) for x (B, C, H, W) and target (B,) int64 (Captum's InputXGradient)."""
    grad = simple_gradient(model, x, target, create_graph=create_graph)
    return (x if create_graph else x.detach()) * grad


def smoothgrad_noise(shape: tuple[int, ...], sigma: float, seed: int, *, dtype: torch.dtype,
                     device: torch.device) -> Tensor:
    """(samples, C, H, W) N(0, σ²) noise, drawn on the CPU from ``seed`` so every device sees the same."""
    gen = torch.Generator().manual_seed(int(seed))
    return (torch.randn(shape, generator=gen, dtype=torch.float32) * sigma).to(device=device, dtype=dtype)


def smoothgrad(model: nn.Module, x: Tensor, target: Tensor, *, samples: int = 50, sigma: float = 0.15,
               seed: int = 0, create_graph: bool = False, chunk_size: int | None = None) -> Tensor:
    """SmoothGrad: (1/n) Σᵢ ∇f_target(x + εᵢ), εᵢ ~ N(0, σ²), the same n draws for every example.

    The noise is fixed by ``seed`` (common random numbers), so the map is a deterministic, smooth
    function of x that an attack can differentiate, and an example's map does not depend on the
    batch it sits in. Points are not clipped to the pixel range (as in Smilkov et al. and Captum).

    Args:
        x: (B, C, H, W) float; target: (B,) int64; samples: n ≥ 1; sigma: σ in x's units.
        chunk_size: examples per forward (each brings n points).
    Returns:
        (B, C, H, W) mean gradient.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    noise = smoothgrad_noise((samples, *x.shape[1:]), sigma, seed, dtype=x.dtype, device=x.device)
    base = x if create_graph else x.detach()
    return mean_point_gradients(_target_logit(model), lambda lo, hi: base[lo:hi].unsqueeze(1) + noise,
                                x.shape[0], target, create_graph=create_graph, chunk_size=chunk_size)


@dataclass(frozen=True)
class SaliencyMethod:
    """Which attribution a saliency map comes from, with its settings.

    Attributes:
        kind: a registered method, :data:`SALIENCY_METHODS` (ig, simple_gradient, input_x_gradient,
            smoothgrad).
        n_steps: IG path points (``ig``; the config's ``num_IG_steps``).
        baseline: IG path start, a constant in x's units (0: the paper's black image).
        samples, sigma, seed: SmoothGrad's n, σ (x's units) and noise seed.

    Example:
        >>> SaliencyMethod("smoothgrad", samples=20, sigma=0.1).map(model, x, y)   # (B, H, W)
    """

    kind: str = "ig"
    n_steps: int = 100
    baseline: float = 0.0
    samples: int = 50
    sigma: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SALIENCY_METHODS:
            raise UserInputError(f"saliency_type={self.kind!r} is not supported; choose from "
                                 f"{', '.join(SALIENCY_METHODS)}{did_you_mean(self.kind, SALIENCY_METHODS)}")

    @classmethod
    def from_config(cls, cfg: Any, bounds: tuple[float, float]) -> SaliencyMethod:
        """A config's method: ``saliency_type`` with ``num_IG_steps``, ``ig_baseline``, SmoothGrad's
        ``smoothgrad_samples`` and σ in pixel units (``smoothgrad_noise`` × the width of ``bounds``),
        its noise seeded by ``random_seed``."""
        return cls(cfg.saliency_type, n_steps=cfg.num_IG_steps, baseline=cfg.ig_baseline,
                   samples=cfg.smoothgrad_samples, sigma=cfg.smoothgrad_noise * (bounds[1] - bounds[0]),
                   seed=cfg.random_seed)

    @property
    def points_per_example(self) -> int:
        """Model evaluations per example and map: what sizes a chunk."""
        return SALIENCY_METHODS[self.kind].points(self)

    def attributions(self, model: nn.Module, x: Tensor, target: Tensor, *, create_graph: bool = False,
                     chunk_size: int | None = None) -> Tensor:
        """(B, C, H, W) attributions of the ``target`` logits for x (B, C, H, W), by the registered
        method ``kind`` (:data:`SALIENCY_METHODS`)."""
        return SALIENCY_METHODS[self.kind].attributions(self, model, x, target, create_graph, chunk_size)

    def map(self, model: nn.Module, x: Tensor, target: Tensor, *, create_graph: bool = False,
            chunk_size: int | None = None) -> Tensor:
        """(B, H, W) :func:`saliency_map` of :meth:`attributions`."""
        return saliency_map(self.attributions(model, x, target, create_graph=create_graph, chunk_size=chunk_size))


Attributions = Callable[[SaliencyMethod, nn.Module, Tensor, Tensor, bool, "int | None"], Tensor]


@dataclass(frozen=True)
class SaliencyKind:
    """One registered attribution method a saliency map can come from.

    name: the ``saliency_type`` value. attributions: ``(method, model, x, target, create_graph,
    chunk_size) -> (B, C, H, W)``, reading its settings from the :class:`SaliencyMethod`.
    points: model evaluations per example and map (what sizes a chunk). summary: one line.
    """

    name: str
    attributions: Attributions
    points: Callable[[SaliencyMethod], int] = lambda method: 1
    summary: str = ""


#: ``saliency_type`` → method, in the order listings show them; :func:`register_saliency` adds one.
SALIENCY_METHODS: dict[str, SaliencyKind] = {}


def register_saliency(kind: SaliencyKind) -> SaliencyKind:
    """Add a saliency method (a name already taken is an error)."""
    if kind.name in SALIENCY_METHODS:
        raise ValueError(f"saliency method {kind.name!r} is already registered")
    SALIENCY_METHODS[kind.name] = kind
    return kind


def _ig(m: SaliencyMethod, model: nn.Module, x: Tensor, target: Tensor, create_graph: bool,
        chunk_size: int | None) -> Tensor:
    baseline = None if m.baseline == 0.0 else torch.full_like(x, m.baseline)
    return integrated_gradients(model, x, target, baseline, n_steps=m.n_steps, create_graph=create_graph,
                                chunk_size=chunk_size)


register_saliency(SaliencyKind("ig", _ig, lambda m: m.n_steps,
                               "Integrated Gradients from a constant baseline (the paper's: zero), n_steps points"))
register_saliency(SaliencyKind(
    "simple_gradient", lambda m, model, x, t, cg, ch: simple_gradient(model, x, t, create_graph=cg),
    summary="the gradient of the target logit (spec §4.3)"))
register_saliency(SaliencyKind(
    "input_x_gradient", lambda m, model, x, t, cg, ch: input_x_gradient(model, x, t, create_graph=cg),
    summary="input times gradient (Shrikumar et al. 2016)"))
register_saliency(SaliencyKind(
    "smoothgrad", lambda m, model, x, t, cg, ch: smoothgrad(model, x, t, samples=m.samples, sigma=m.sigma, seed=m.seed,
                                                            create_graph=cg, chunk_size=ch),
    lambda m: m.samples, "SmoothGrad (Smilkov et al. 2017), seeded noise"))

#: ``saliency_type`` values, in the config and the attacks (the registry's names when this was imported).
SALIENCY_KINDS = tuple(SALIENCY_METHODS)
