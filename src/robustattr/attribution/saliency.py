"""Saliency maps as the paper's evaluation uses them (spec §2.3)."""

from __future__ import annotations

from torch import Tensor, nn

from robustattr.attribution.ig import integrated_gradients, simple_gradient


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
    steps: int = 100,
    create_graph: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """(B, H, W) IG saliency with the zero baseline: ``saliency_map(integrated_gradients(...))``."""
    return saliency_map(integrated_gradients(model, x, target, steps=steps, create_graph=create_graph, chunk_size=chunk_size))


def gradient_saliency(model: nn.Module, x: Tensor, target: Tensor, create_graph: bool = False) -> Tensor:
    """(B, H, W) simple-gradient saliency: normalised Σ_c |∇_x f_target| (no ×input, spec §2.3)."""
    return saliency_map(simple_gradient(model, x, target, create_graph=create_graph))
