"""Helpers shared by every attack: the model guard, input gradients, per-example generators.

The L∞ threat model (ε rule, random start, projection) is public in ``attacks.threat_model``; its
names are re-exported here for the modules that import them from ``_common``.

Stable API: ``attack_mode(model)``, ``input_gradient(loss, x_adv)``,
``example_generator(seed, index, stream=0)``, and the re-exported ``random_start``, ``project_linf``,
``clamp_bounds``, ``project_and_clamp``, ``feasible_box``, ``check_bounds``, ``check_epsilon``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from robustattr.attacks.threat_model import (
    check_bounds, check_epsilon, clamp_bounds, feasible_box, project_and_clamp, project_linf, random_start,
)

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
