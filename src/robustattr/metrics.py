"""Similarity of attribution maps: top-k intersection, Kendall's tau-b, Spearman's rho, mass centre.

Pure tensor functions, batched over the first dimension and computed on the inputs' device, so
an attack loop never leaves the device to score its iterates (the original called SciPy per image).
Every function flattens all but the first dimension and returns one value per example.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["top_k_intersection", "top_k_mask", "kendall_tau", "spearman", "mass_center", "average_ranks"]

# Elements of a (B, rows, n) pair-sign block: bounds Kendall's transient memory (~64 MB in fp32).
_PAIR_BLOCK_ELEMENTS = 1 << 24


def _flat(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1)


def top_k_mask(a: Tensor, k: int) -> Tensor:
    """(B, ...) → (B, n) bool, True at the k largest entries of each flattened example."""
    flat = _flat(a)
    if not 1 <= k <= flat.shape[1]:
        raise ValueError(f"k must be in 1..{flat.shape[1]}, got {k}")
    idx = flat.topk(k, dim=1).indices
    return torch.zeros_like(flat, dtype=torch.bool).scatter_(1, idx, True)


def top_k_intersection(a: Tensor, b: Tensor, k: int) -> Tensor:
    """Fraction of the k largest entries of ``a`` that are also among the k largest of ``b``.

    Args:
        a, b: (B, ...) maps of equal shape (e.g. (B, H, W) saliency maps).
        k: 1 ≤ k ≤ number of entries per example.
    Returns:
        (B,) float in [0, 1].
    """
    both = top_k_mask(a, k) & top_k_mask(b, k)
    return both.sum(dim=1).to(torch.get_default_dtype()) / k


def kendall_tau(a: Tensor, b: Tensor) -> Tensor:
    """Kendall's tau-b between the flattened maps of each example, ties handled as SciPy does.

    tau-b = (P − Q) / √((P + Q + T)(P + Q + U)) over all pairs: P concordant, Q discordant,
    T tied only in a, U tied only in b. Computed exactly over all n(n−1)/2 pairs in blocks of rows,
    O(n²) time and O(block) memory. NaN where one map is constant, as in SciPy.

    Args:
        a, b: (B, ...) real tensors of equal shape.
    Returns:
        (B,) in [−1, 1], dtype of a (float64 inputs give float64).
    """
    fa, fb = _flat(a), _flat(b)
    batch, n = fa.shape
    acc_dtype = torch.float64
    concord = torch.zeros(batch, dtype=acc_dtype, device=fa.device)
    pairs_a = torch.zeros_like(concord)
    pairs_b = torch.zeros_like(concord)
    rows = max(1, _PAIR_BLOCK_ELEMENTS // max(1, batch * n))
    for lo in range(0, n, rows):
        sa = torch.sign(fa[:, lo : lo + rows, None] - fa[:, None, :])
        sb = torch.sign(fb[:, lo : lo + rows, None] - fb[:, None, :])
        # Sums of ±1/0 over ≤ 2^24 elements are exact in float32; accumulate in float64.
        concord += (sa * sb).sum(dim=(1, 2), dtype=acc_dtype)
        pairs_a += sa.abs().sum(dim=(1, 2), dtype=acc_dtype)
        pairs_b += sb.abs().sum(dim=(1, 2), dtype=acc_dtype)
    out_dtype = a.dtype if a.is_floating_point() else torch.get_default_dtype()
    return (concord / torch.sqrt(pairs_a * pairs_b)).to(out_dtype)


def average_ranks(a: Tensor) -> Tensor:
    """Ranks 1..n of each flattened example, ties given their average rank (SciPy's ``rankdata``).

    (B, ...) → (B, n) float64.
    """
    flat = _flat(a)
    batch, n = flat.shape
    values, order = flat.sort(dim=1)
    new_group = torch.ones_like(values, dtype=torch.bool)
    new_group[:, 1:] = values[:, 1:] != values[:, :-1]
    group = new_group.cumsum(dim=1) - 1  # (B, n) group id per sorted position
    positions = torch.arange(1, n + 1, dtype=torch.float64, device=flat.device).expand(batch, n)
    rank_sum = torch.zeros(batch, n, dtype=torch.float64, device=flat.device).scatter_add_(1, group, positions)
    count = torch.zeros_like(rank_sum).scatter_add_(1, group, torch.ones_like(positions))
    sorted_ranks = (rank_sum / count.clamp_min(1)).gather(1, group)
    return torch.empty_like(sorted_ranks).scatter_(1, order, sorted_ranks)


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman's rho: Pearson correlation of average ranks (SciPy's ``spearmanr``).

    Args:
        a, b: (B, ...) real tensors of equal shape.
    Returns:
        (B,) in [−1, 1]; NaN where one map is constant.
    """
    ra, rb = average_ranks(a), average_ranks(b)
    ra = ra - ra.mean(dim=1, keepdim=True)
    rb = rb - rb.mean(dim=1, keepdim=True)
    rho = (ra * rb).sum(dim=1) / torch.sqrt(ra.square().sum(dim=1) * rb.square().sum(dim=1))
    out_dtype = a.dtype if a.is_floating_point() else torch.get_default_dtype()
    return rho.to(out_dtype)


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
