"""Map similarities that are not rank statistics: the saliency mass centre and cosine similarity."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["mass_center", "cosine_similarity"]


def mass_center(s: Tensor) -> Tensor:
    """Saliency-weighted mean pixel coordinates.

    Args:
        s: (B, H, W) non-negative maps (a saliency map sums to H·W).
    Returns:
        (B, 2) float: (row, column) of the centre of mass, in pixel indices.
    """
    h, w = s.shape[-2:]
    rows = torch.arange(h, dtype=s.dtype, device=s.device).view(1, h, 1)
    cols = torch.arange(w, dtype=s.dtype, device=s.device).view(1, 1, w)
    total = s.sum(dim=(1, 2))
    return torch.stack([(s * rows).sum(dim=(1, 2)) / total, (s * cols).sum(dim=(1, 2)) / total], dim=1)


def cosine_similarity(a: Tensor, b: Tensor) -> Tensor:
    """⟨a, b⟩ / (‖a‖·‖b‖) of the flattened maps of each example.

    Args:
        a, b: (B, ...) real tensors of equal shape.
    Returns:
        (B,) in [−1, 1] (in [0, 1] for non-negative saliency maps); 0 where a map is all zero (the
        norms are clamped at 1e−12, so no NaN appears).
    """
    fa, fb = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    norms = fa.norm(dim=1).clamp_min(1e-12) * fb.norm(dim=1).clamp_min(1e-12)
    return (fa * fb).sum(dim=1) / norms
