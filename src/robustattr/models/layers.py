"""Building blocks shared by the paper's architectures.

Every activation comes in two modes that share nothing but the input: the piecewise-linear
one used for training, prediction and saliency, and a smooth softplus surrogate used only to
get attack directions (a ReLU network has zero second derivative, spec §2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LEAK = 0.1  # the ResNets' leaky-ReLU slope (spec §2.2)


def relu(t: Tensor, softplus: bool = False) -> Tensor:
    """ReLU, or softplus(t) = log(1 + e^t) as its surrogate."""
    return F.softplus(t) if softplus else F.relu(t)


def leaky_relu(t: Tensor, softplus: bool = False) -> Tensor:
    """Leaky ReLU with slope 0.1, or its surrogate 0.1·t + 0.9·softplus(t)."""
    if softplus:
        return LEAK * t + (1.0 - LEAK) * F.softplus(t)
    return F.leaky_relu(t, LEAK)


def standardize_per_image(x: Tensor) -> Tensor:
    """TF's ``per_image_standardization``: (x − μ) / max(σ, 1/√N) over all C·H·W values.

    Args:
        x: (B, C, H, W) float, any range.
    Returns:
        (B, C, H, W), zero mean and unit variance per image (unless nearly constant).

    The variance is mean(x²) − μ² clamped at 0 as in TF; ``max(σ, c) = √max(v, c²)`` keeps the
    gradient finite for constant images, where √v would give 0·∞.
    """
    n = x[0].numel()
    flat = x.flatten(1)
    mean = flat.mean(dim=1, keepdim=True)
    var = (flat.square().mean(dim=1, keepdim=True) - mean.square()).clamp_min(0.0)
    std = torch.sqrt(torch.clamp_min(var, 1.0 / n))
    return ((flat - mean) / std).view_as(x)


def pad_same_stride2(x: Tensor, kernel_size: int) -> Tensor:
    """Pad like TF "SAME" for a stride-2 convolution on an even-sized input.

    TF puts the odd padding pixel after (bottom/right): for a 3×3 kernel that is (0, 1, 0, 1),
    which PyTorch's symmetric ``padding=1`` would sample differently.
    """
    h = x.shape[-2]
    total = max(kernel_size - (2 if h % 2 == 0 else 1), 0)
    before = total // 2
    after = total - before
    return F.pad(x, (before, after, before, after))


def truncated_normal_(t: Tensor, std: float) -> Tensor:
    """TF ``truncated_normal``: N(0, std²) re-drawn beyond ±2σ."""
    return torch.nn.init.trunc_normal_(t, mean=0.0, std=std, a=-2 * std, b=2 * std)


def fan_out_normal_(weight: Tensor) -> Tensor:
    """Madry ResNet conv init: N(0, 2 / (k·k·out_channels))."""
    out_channels, _, kh, kw = weight.shape
    return torch.nn.init.normal_(weight, 0.0, math.sqrt(2.0 / (kh * kw * out_channels)))
