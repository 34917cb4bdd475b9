"""The L∞ threat model every attack shares: ε, the pixel range, the random start and the projection.

A perturbation lives in the ε-ball around the natural image *and* inside the pixel range (spec
§3.3, §4.2). This module is the one place that says what a valid ε is, how a U(−ε, ε) start is
drawn and how an iterate is brought back into the feasible set. Functions are batched, keep
tensors on their device and never synchronise with the host.

One ε rule (:func:`check_epsilon`): a finite number ≥ 0 in pixel units. ε = 0 is allowed in the
Python API on purpose: an attack at ε = 0 must return the clean image, a sanity check worth
running. The config key ``epsilon`` is stricter (> 0) because a *run* with ε = 0 would make every
robust objective and the adversarial accuracy silently equal to the natural ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from robustattr.errors import UserInputError

__all__ = [
    "Generators", "check_epsilon", "check_bounds", "uniform_noise", "random_start", "project_linf",
    "clamp_bounds", "project_and_clamp", "feasible_box",
]

#: Where random draws come from: None (the global RNG), one generator for the whole batch, or one
#: generator per row (each row then draws its own block, so its draws do not depend on the batch).
Generators = Sequence[torch.Generator | None] | torch.Generator | None


def check_epsilon(epsilon: float) -> float:
    """Validate an L∞ radius: a finite float ≥ 0 in pixel units (module docstring); return it."""
    try:
        eps = float(epsilon)
    except (TypeError, ValueError):
        raise UserInputError(f"epsilon={epsilon!r} is not a number") from None
    if not (math.isfinite(eps) and eps >= 0.0):
        raise UserInputError(f"epsilon={epsilon!r} must be a finite number >= 0 (pixel units)")
    return eps


def check_bounds(bounds: Sequence[float]) -> tuple[float, float]:
    """Validate a pixel range ``(low, high)`` with finite low < high; return it as floats."""
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise UserInputError(f"bounds={bounds!r} is not a (low, high) pair of numbers") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise UserInputError(f"bounds=({low}, {high}) must be finite with low < high")
    return low, high


def uniform_noise(shape: Sequence[int], epsilon: float, generator: torch.Generator | None = None, *,
                  dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """A ``shape`` tensor of U(−ε, ε) draws in ``dtype`` on ``device`` (``generator``'s stream, else the
    global RNG's). The draw PGD's start adds to x; a data-parallel trainer draws it for the global batch
    and slices its shard, so each shard starts where a single process would have."""
    return torch.empty(tuple(shape), dtype=dtype, device=device).uniform_(-epsilon, epsilon, generator=generator)


def random_start(x: torch.Tensor, epsilon: float, generator: Generators = None) -> torch.Tensor:
    """``x + U(−ε, ε)`` elementwise, *not* clipped to the pixel range (the original's quirk, §3.3).

    Args:
        x: (B, C, H, W) float, natural images.
        epsilon: L∞ radius in x's units.
        generator: None or one generator (the whole batch in one draw, in x's dtype on x's device),
            or one per row: row i then draws its own (C, H, W) float32 block from ``generator[i]`` on
            that generator's device (None: the global RNG), cast to x's dtype and device, so a row's
            start does not depend on the batch it sits in.

    Returns:
        (B, C, H, W) like ``x``; may lie slightly outside the pixel range until it is clipped.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return x + uniform_noise(x.shape, epsilon, generator, dtype=x.dtype, device=x.device)
    if len(generator) != x.shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {x.shape[0]}")
    noise = torch.stack([uniform_noise(x.shape[1:], epsilon, g, device=x.device if g is None else g.device)
                         for g in generator])
    return x + noise.to(device=x.device, dtype=x.dtype)


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
