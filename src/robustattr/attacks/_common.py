"""Helpers shared by every attack: the model guard, the random start, projection and clamping.

These are the building blocks of the L∞ threat model used throughout the paper (spec §3.3, §4.2):
a perturbation lives in the ε-ball around the natural image *and* inside the pixel range.
All functions are batched, keep tensors on their device and never synchronise with the host.

Stable API (imported by ``attacks.pgd`` and the attribution attacks):
    ``attack_mode(model)``, ``random_start(x, epsilon, generator=None)``,
    ``project_linf(x_adv, x, epsilon)``, ``clamp_bounds(x, bounds)``,
    ``project_and_clamp(x_adv, x, epsilon, bounds)``, ``feasible_box(x, epsilon, bounds)``,
    ``check_bounds(bounds)``,
    ``check_epsilon(epsilon)``, ``input_gradient(loss, x_adv)``, ``example_generator(seed, index)``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from robustattr.errors import UserInputError

__all__ = [
    "attack_mode",
    "random_start",
    "project_linf",
    "clamp_bounds",
    "project_and_clamp",
    "feasible_box",
    "check_bounds",
    "check_epsilon",
    "input_gradient",
    "example_generator",
]


@contextlib.contextmanager
def attack_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode with frozen parameters for the duration of an attack.

    Why: an attack differentiates w.r.t. the *input* only. Freezing parameters keeps their ``.grad``
    untouched and spares autograd the weight gradients; eval mode makes the attacked function the
    deterministic one evaluation sees. On exit every submodule's ``training`` flag and every
    parameter's ``requires_grad`` are restored exactly as they were (also on exceptions), so the
    training loop can call an attack mid-step.

    Example:
        with attack_mode(model):
            x_adv = ...  # gradients w.r.t. x_adv only
    """
    modes = [(module, module.training) for module in model.modules()]
    flags = [(param, param.requires_grad) for param in model.parameters()]
    try:
        model.eval()
        for param, _ in flags:
            param.requires_grad_(False)
        yield model
    finally:
        for module, training in modes:
            module.training = training
        for param, flag in flags:
            param.requires_grad_(flag)


def check_bounds(bounds: Sequence[float]) -> tuple[float, float]:
    """Validate a pixel range ``(low, high)`` with finite low < high; return it as floats."""
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise UserInputError(f"bounds={bounds!r} is not a (low, high) pair of numbers") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise UserInputError(f"bounds=({low}, {high}) must be finite with low < high")
    return low, high


def check_epsilon(epsilon: float) -> float:
    """Validate an L∞ radius: a finite float ≥ 0 in pixel units."""
    eps = float(epsilon)
    if not (math.isfinite(eps) and eps >= 0.0):
        raise UserInputError(f"epsilon={epsilon!r} must be a finite number >= 0 (pixel units)")
    return eps


def random_start(
    x: torch.Tensor, epsilon: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``x + U(−ε, ε)`` elementwise, *not* clipped to the pixel range (the original's quirk, §3.3).

    Args:
        x: (B, C, H, W) float, natural images.
        epsilon: L∞ radius in x's units.
        generator: optional ``torch.Generator`` on x's device, for reproducible starts.

    Returns:
        (B, C, H, W) like ``x``; may lie slightly outside the pixel range until the first step.
    """
    noise = torch.empty_like(x).uniform_(-epsilon, epsilon, generator=generator)
    return x + noise


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Project ``x_adv`` onto the L∞ ball of radius ε around ``x`` (elementwise clamp)."""
    return torch.minimum(torch.maximum(x_adv, x - epsilon), x + epsilon)


def clamp_bounds(x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Clip to the pixel range ``bounds = (low, high)``."""
    return x.clamp(bounds[0], bounds[1])


def project_and_clamp(
    x_adv: torch.Tensor, x: torch.Tensor, epsilon: float, bounds: tuple[float, float]
) -> torch.Tensor:
    """The original's order: project to the ε-ball, *then* clip to the pixel range.

    The result is in both sets whenever ``x`` itself lies inside ``bounds``.
    """
    return clamp_bounds(project_linf(x_adv, x, epsilon), bounds)


def feasible_box(x: torch.Tensor, epsilon: float, bounds: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel limits (lower, upper) of the ε-ball around ``x`` intersected with ``bounds``.

    ``x_adv.clamp(lower, upper)`` equals ``project_and_clamp(x_adv, x, epsilon, bounds)`` bit for
    bit when ``x`` lies inside ``bounds`` (two clamps to intervals that share ``x`` are one clamp to
    their intersection; only min and max are involved), in one elementwise pass instead of three:
    computed once per attack, it saves the per-step kernels that matter for small models on a GPU.
    """
    lo, hi = bounds
    return (x - epsilon).clamp_min(lo), (x + epsilon).clamp_max(hi)


def input_gradient(loss: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """∂loss/∂x_adv via ``torch.autograd.grad`` (never ``.backward``: parameters' ``.grad`` stay put).

    Args:
        loss: scalar tensor depending on ``x_adv``.
        x_adv: (B, ...) leaf tensor with ``requires_grad=True``.

    Returns:
        Tensor shaped like ``x_adv``; zeros where the loss does not depend on it.
    """
    (grad,) = torch.autograd.grad(loss, x_adv, allow_unused=True)
    return torch.zeros_like(x_adv) if grad is None else grad


def example_generator(seed: int, index: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for one example: seeded from (``seed``, dataset ``index``[, ``stream``]) via SeedSequence.

    Why per example: its draws then do not depend on which batch the example sits in, so results
    are the same at any batch size. Why on the CPU: CUDA's generator draws other numbers from the
    same seed; drawing on the CPU and moving the result keeps them the same on every device.
    ``stream`` separates independent uses for the same example (the members of the strong
    evaluation); stream 0 is the faithful attack's.
    """
    import numpy as np

    key = [int(seed), int(index)] + ([int(stream)] if stream else [])
    state = np.random.SeedSequence(key).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))
