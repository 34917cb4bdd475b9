"""Attribution robustness of any model on tensors or a DataLoader, one result per example.

The drivers in ``attribution_robustness`` evaluate a run directory from its config; this is the
same evaluation for a model and data held in Python: the faithful attack (spec §4.2) or the strong
one (the worst case per metric over a portfolio of walks), the paper's metrics (top-k
intersection, Kendall's τ, Spearman's ρ) and later work's (cosine similarity, LENS top-k, LENS
Kendall) for every example.

    >>> from robustattr.evaluation import attribution_robustness_of
    >>> r = attribution_robustness_of(model, test_loader, epsilon=0.3, step_size=0.01, steps=100,
    ...                            k_top=200, eval_k_top=100, strong=True, seed=0)
    >>> r.summary()["kendall"], r.kendall[r.attacked]         # mean, and (N_attacked,) values
    >>> r = attribution_robustness_of(model, test_loader, AttackSettings.from_config(cfg))
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from robustattr.attacks.attribution_attack import attribution_attack
from robustattr.attacks.settings import STRONG, AttackSettings
from robustattr.errors import UserInputError
from robustattr.evaluation.attribution_robustness import map_similarities

__all__ = ["AttributionRobustness", "attribution_robustness_of"]

_METRICS = ("intersection", "spearman", "kendall", "cosine", "lens_intersection", "lens_kendall")


@dataclass(frozen=True)
class AttributionRobustness:
    """Per-example results, CPU tensors in data order (N examples).

    attacked: (N,) bool, correctly classified (only those are attacked; the others hold NaN).
    found: (N,) bool, the attack lowered some metric below 1.
    intersection, spearman, kendall: (N,) the paper's metrics (strong: each metric's own minimum).
    cosine, lens_intersection, lens_kendall: (N,) later work's, at the reported iterate
        (``lens_kendall`` is our own neighbourhood Kendall τ, also :attr:`neighbourhood_kendall`).
    x_adv: (N, C, H, W) the reported perturbed images; saliency, saliency_adv: (N, H, W) their maps.
    """

    attacked: Tensor
    found: Tensor
    intersection: Tensor
    spearman: Tensor
    kendall: Tensor
    cosine: Tensor
    lens_intersection: Tensor
    lens_kendall: Tensor
    x_adv: Tensor
    saliency: Tensor
    saliency_adv: Tensor

    @property
    def neighbourhood_kendall(self) -> Tensor:
        """(N,) our neighbourhood Kendall τ (``metrics.neighbourhood_kendall_tau``): ``lens_kendall``'s
        values under the name the strong result files use."""
        return self.lens_kendall

    def summary(self) -> dict[str, Any]:
        """Means over the attacked examples (the result files' keys), their count and the accuracy."""
        n, hit = int(self.attacked.numel()), int(self.attacked.sum())
        keys = {"intersection": "top_k_intersection", "lens_intersection": "lens_top_k_intersection"}
        out: dict[str, Any] = {
            keys.get(m, m): (math.fsum(getattr(self, m)[self.attacked].tolist()) / hit if hit else float("nan"))
            for m in _METRICS
        }
        out.update(num_examples=n, num_attacked=hit, accuracy=hit / n if n else float("nan"))
        return out


def _batches(data: tuple[Tensor, Tensor] | Iterable[Any], batch_size: int) -> Iterable[tuple[Tensor, Tensor]]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Tensor):
        x, y = data
        for lo in range(0, x.shape[0], batch_size):
            yield x[lo : lo + batch_size], y[lo : lo + batch_size]
        return
    for batch in data:
        yield batch[0], batch[1]


def attribution_robustness_of(
    model: nn.Module, data: tuple[Tensor, Tensor] | Iterable[Any], settings: AttackSettings | None = None, *,
    strong: bool | None = None, batch_size: int = 100, lens_window: int = 3,
    device: torch.device | str | None = None, **overrides: Any,
) -> AttributionRobustness:
    """Attack the saliency maps of every example of ``data``; see :class:`AttributionRobustness`.

    Args:
        model: (B, C, H, W) → logits; its ReLU / leaky-ReLU modules are swapped for softplus to get
            directions (``surrogate="none"``: its own gradients).
        data: an (x (N, C, H, W), y (N,)) pair of tensors, or an iterable of (x, y) batches (a
            DataLoader; extra items per batch are ignored). x in ``bounds``.
        settings: an :class:`~robustattr.attacks.AttackSettings`; keywords (``overrides``: epsilon,
            step_size, steps, k_top, eval_k_top, method, measure, times, saliency, n_steps, bounds,
            seed, random_starts, surrogate, chunk_size, …) replace its fields or, without it, make them.
        strong: the portfolio's worst case (``strong_attribution_attack``) or (False) the faithful
            ``method`` (topK, mass_center, random, …) with ``times`` restarts. None: True when the
            settings come from keywords alone, else whether ``settings.method`` is "strong".
        seed (a setting): random draws come from (seed, example's position in ``data``): results do
            not depend on batching. lens_window: the LENS metrics' window. device: where to run
            (default: the model's).
    Returns:
        :class:`AttributionRobustness` with one entry per example, in data order.
    """
    attack = AttackSettings.of(settings, **overrides)
    if strong is None:
        strong = settings is None or attack.method == STRONG
    if strong:
        attack = AttackSettings.of(attack, method=STRONG)
    elif attack.method == STRONG:
        raise UserInputError("strong=False needs a faithful method, not method='strong'")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    parts: dict[str, list[Tensor]] = {f.name: [] for f in fields(AttributionRobustness)}
    seen = 0
    for x, y in _batches(data, batch_size):
        x, y = x.to(device), y.to(device)
        ids = list(range(seen, seen + x.shape[0]))
        seen += x.shape[0]
        r = attribution_attack(model, x, y, attack, example_ids=ids)
        similar = map_similarities(r.saliency, r.saliency_adv, r.attacked, attack.eval_k, lens_window)
        values = dict(zip(("cosine", "lens_intersection", "lens_kendall"), similar))
        for name in parts:
            parts[name].append((values[name] if name in values else getattr(r, name)).detach().cpu())
    if not seen:
        raise ValueError("data holds no examples")
    return AttributionRobustness(**{name: torch.cat(p) for name, p in parts.items()})
