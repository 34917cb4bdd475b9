"""L∞ projected gradient descent (Madry et al. 2018) with the original's pluggable losses.

The inner maximisation of every robust objective in *Robust Attribution Regularization*
(Chen et al., NeurIPS 2019, https://arxiv.org/abs/1905.09957), spec §3.3: from a random start
``x + U(−ε, ε)`` (not clipped before the first gradient), K sign-gradient ascent steps, each
followed by projection onto the ε-ball and clipping to the pixel range.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from robustattr import attribution
from robustattr.attacks._common import attack_mode, input_gradient
from robustattr.attacks.threat_model import check_bounds, check_epsilon, feasible_box
from robustattr.attacks.threat_model import random_start as _random_start
from robustattr.errors import UserInputError, did_you_mean

__all__ = ["pgd", "PGD_LOSSES", "pgd_loss"]

#: ``loss_func`` values: the quantity PGD ascends (all batch sums).
PGD_LOSSES = ("xent", "cw", "ar", "ar_approx", "adv_ar", "adv_ar_approx")

CW_CONFIDENCE = 50.0  # the original's margin constant κ

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def pgd_loss(loss: str, *, n_steps: int = 50, approx_factor: int = 1, lam: float = 1.0) -> LossFn:
    """The scalar PGD ascends for ``loss``, as ``fn(model, x, x_adv, y) -> scalar``.

    ``xent`` Σ CE(x'); ``cw`` −Σ ReLU(f_y − max_{j≠y} f_j + 50) (the original's intent, which
    crashed there, §10.3); ``ar``/``ar_approx`` ‖IG(x, x')‖₁ with ``n_steps`` (the config's ``m``) or
    n_steps/approx_factor points;
    ``adv_ar``/``adv_ar_approx`` Σ CE(x') + λ‖IG(x, x')‖₁. IG is taken with ``create_graph=True``
    so the gradient flows through the path gradients into x'.
    """
    if loss not in PGD_LOSSES:
        raise UserInputError(
            f"loss_func='{loss}' is not a PGD loss{did_you_mean(loss, PGD_LOSSES)}; "
            f"choose from {', '.join(PGD_LOSSES)}"
        )
    factor = approx_factor if loss.endswith("_approx") else 1

    def xent(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x_adv), y, reduction="sum")

    def cw(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = model(x_adv)  # (B, K)
        correct = logits.gather(1, y[:, None]).squeeze(1)
        others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
        return -F.relu(correct - others.amax(dim=1) + CW_CONFIDENCE).sum()

    def ig_term(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return attribution.ig_regularizer(model, x, x_adv, y, n_steps, approx_factor=factor, create_graph=True)

    def adv_ar(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return xent(model, x, x_adv, y) + lam * ig_term(model, x, x_adv, y)

    return {"xent": xent, "cw": cw, "ar": ig_term, "ar_approx": ig_term,
            "adv_ar": adv_ar, "adv_ar_approx": adv_ar}[loss]


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float,
    steps: int,
    step_size: float,
    random_start: bool = True,
    loss: str = "xent",
    bounds: tuple[float, float] = (0.0, 1.0),
    *,
    n_steps: int = 50,
    approx_factor: int = 1,
    lam: float = 1.0,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
    start_noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Untargeted L∞ PGD: maximise ``loss`` over the ε-ball around ``x`` inside ``bounds``.

    Args:
        model: maps (B, C, H, W) to logits (B, K); its mode and parameters' ``requires_grad``
            are restored on return and parameters' ``.grad`` are never touched.
        x: natural images; y: their labels (int64). epsilon, step_size: in x's units.
        steps: number of sign-gradient steps K (0 returns the clipped start).
        random_start: start from x + U(−ε, ε) (unclipped), else from x.
        loss: one of ``PGD_LOSSES``; n_steps (IG points, the config's ``m``), approx_factor, lam:
            the IG losses' settings.
        bounds: the pixel range (``data.value_range``). generator: for the random start.
        chunk_size: examples per gradient evaluation (None: whole batch); the losses are sums
            over examples, so chunking bounds memory without changing the result.
        start_noise: with ``random_start``, this U(−ε, ε) draw shaped like x instead of a new one
            (data-parallel training slices one draw for the global batch, so each shard starts
            where a single process would have; ``generator`` is then unused).

    Shape:
        - x: (B, C, H, W) float, inside ``bounds``; y: (B,) int64 in [0, K).
        - Output: (B, C, H, W) like x, detached, with |x_adv − x|∞ ≤ ε and inside ``bounds``.

    Example:
        >>> x_adv = pgd(model, x, y, epsilon=0.3, steps=40, step_size=0.01)
    """
    objective = pgd_loss(loss, n_steps=n_steps, approx_factor=approx_factor, lam=lam)
    eps = check_epsilon(epsilon)
    low_high = check_bounds(bounds)
    if int(steps) < 0:
        raise UserInputError(f"steps={steps} must be >= 0")
    x = x.detach()
    y = y.detach()
    n = x.shape[0]
    chunk = n if not chunk_size or chunk_size >= n else int(chunk_size)
    with attack_mode(model), torch.enable_grad():
        if not random_start:
            x_adv = x.clone()
        elif start_noise is not None:
            if start_noise.shape != x.shape:
                raise ValueError(f"start_noise has shape {tuple(start_noise.shape)}, x {tuple(x.shape)}")
            x_adv = x + start_noise
        else:
            x_adv = _random_start(x, eps, generator)
        lower, upper = feasible_box(x, eps, low_high)
        for _ in range(int(steps)):
            grads = []
            for start in range(0, n, chunk):
                part = slice(start, start + chunk)
                leaf = x_adv[part].detach().requires_grad_(True)
                grads.append(input_gradient(objective(model, x[part], leaf, y[part]), leaf))
            grad = grads[0] if len(grads) == 1 else torch.cat(grads)
            # sign(0) = 0: a flat loss (e.g. the IG term at x' = x) leaves the pixel where it is.
            x_adv = torch.add(x_adv, grad.sign(), alpha=step_size).clamp_(lower, upper)  # = project_and_clamp (feasible_box)
        if steps == 0:
            x_adv = x_adv.clamp(lower, upper)
    return x_adv.detach()
