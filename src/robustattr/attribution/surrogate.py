"""The softplus surrogate of any model built from ``nn.ReLU`` / ``nn.LeakyReLU`` modules.

A ReLU network is piecewise linear: its second derivative is zero almost everywhere, so the
gradient of a saliency map with respect to the input (what an attribution attack ascends) is zero
too. Attacks therefore differentiate a smooth surrogate with the same weights, where every ReLU is
softplus(t) = log(1 + eᵗ) and every leaky ReLU with slope s is s·t + (1 − s)·softplus(t) (the
paper's models have their own ``softplus=True`` switch; this module serves everyone else's).

    >>> with softplus_surrogate(model):
    ...     logits = model(x)          # the smooth surrogate, same parameters
    >>> logits = model(x)              # the ReLU model again

Only activation *modules* can be swapped: an activation called as a function inside ``forward``
(``F.relu(h)``, ``h.relu()``) stays piecewise linear, which the swap cannot see.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch.nn.functional as F
from torch import Tensor, nn

from robustattr.errors import UserInputError

__all__ = ["SoftplusActivation", "softplus_surrogate", "swappable_activations"]


class SoftplusActivation(nn.Module):
    """s·t + (1 − s)·softplus(t): softplus for a ReLU (s = 0), the leaky ReLU's surrogate otherwise."""

    def __init__(self, negative_slope: float = 0.0) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, t: Tensor) -> Tensor:
        if self.negative_slope == 0.0:
            return F.softplus(t)
        return self.negative_slope * t + (1.0 - self.negative_slope) * F.softplus(t)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


def swappable_activations(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute name, module) of every ``nn.ReLU`` / ``nn.LeakyReLU`` child in ``model``.

    A module registered under several parents (one ``nn.ReLU`` reused) appears once per parent, so
    that every place it is reached from gets swapped.
    """
    found = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, (nn.ReLU, nn.LeakyReLU)):
                found.append((parent, name, child))
    return found


@contextmanager
def softplus_surrogate(model: nn.Module) -> Iterator[nn.Module]:
    """Swap ``model``'s ReLU / leaky-ReLU modules for their softplus surrogates, in place.

    Parameters and buffers are untouched (the surrogate *is* the model, with other activations);
    the original modules come back on exit, also when the body raises. Graphs built inside the
    block keep differentiating the surrogate after it: autograd records the functions, not the
    modules.

    Args:
        model: any ``nn.Module`` whose non-linearities are ``nn.ReLU`` / ``nn.LeakyReLU`` modules.
    Yields:
        ``model`` itself, in surrogate mode.
    Raises:
        UserInputError: ``model`` holds no such module (nothing would be smoothed).
    """
    swaps = swappable_activations(model)
    if not swaps:
        raise UserInputError(
            f"model {type(model).__name__} has no nn.ReLU or nn.LeakyReLU module to swap for its "
            "softplus surrogate (activations called as functions, such as F.relu, cannot be swapped); "
            "build it with nn.ReLU / nn.LeakyReLU modules, or attack its own gradients with "
            "surrogate='none' (config: attribution_attack_surrogate=none)"
        )
    for parent, name, module in swaps:
        slope = module.negative_slope if isinstance(module, nn.LeakyReLU) else 0.0
        setattr(parent, name, SoftplusActivation(slope))
    try:
        yield model
    finally:
        for parent, name, module in reversed(swaps):
            setattr(parent, name, module)
