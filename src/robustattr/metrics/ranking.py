"""Rank similarities of attribution maps: top-k intersection, Kendall's tau-b, Spearman's rho.

Pure tensor functions, batched over the first dimension and computed on the inputs' device, so
an attack loop never leaves the device to score its iterates (the original called SciPy per image).
Every function flattens all but the first dimension and returns one value per example.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["top_k_intersection", "top_k_mask", "kendall_tau", "spearman", "average_ranks"]

# Elements (examples x padded length) per pass of Kendall's merge counting: bounds its transient memory.
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

    tau-b = (P − Q) / √((n₀ − n₁)(n₀ − n₂)) with n₀ = n(n−1)/2 pairs, n₁ / n₂ pairs tied in a / b,
    P − Q = n₀ − n₁ − n₂ + n₃ − 2Q (n₃ tied in both) and Q the discordant pairs, counted as the
    inversions of b once the example is sorted by (a, b) (Knight's algorithm, as SciPy): a batched
    bottom-up merge count, O(n log² n) time and O(n) memory per example, exact integer counts.
    NaN where one map is constant or holds a NaN, as in SciPy.

    Args:
        a, b: (B, ...) real tensors of equal shape.
    Returns:
        (B,) in [−1, 1], dtype of a (float64 inputs give float64).
    """
    fa, fb = _flat(a), _flat(b)
    if not fa.is_floating_point():
        fa = fa.to(torch.float64)
    if not fb.is_floating_point():
        fb = fb.to(torch.float64)
    batch, n = fa.shape
    per_pass = max(1, _PAIR_BLOCK_ELEMENTS // max(1, 1 << max(0, (n - 1).bit_length())))
    parts = [_kendall_block(fa[lo : lo + per_pass], fb[lo : lo + per_pass]) for lo in range(0, batch, per_pass)]
    tau = parts[0] if len(parts) == 1 else torch.cat(parts)
    out_dtype = a.dtype if a.is_floating_point() else torch.get_default_dtype()
    return tau.to(out_dtype)


def _kendall_block(fa: Tensor, fb: Tensor) -> Tensor:
    """tau-b of each row of (B, n) float tensors, float64."""
    batch, n = fa.shape
    by_b = fb.argsort(dim=1, stable=True)
    order = by_b.gather(1, fa.gather(1, by_b).argsort(dim=1, stable=True))  # lexicographic by (a, b)
    sa, sb = fa.gather(1, order), fb.gather(1, order)
    new_a = torch.ones_like(sa, dtype=torch.bool)
    new_a[:, 1:] = sa[:, 1:] != sa[:, :-1]
    new_ab = new_a.clone()
    new_ab[:, 1:] |= sb[:, 1:] != sb[:, :-1]
    b_sorted = fb.sort(dim=1).values
    new_b = torch.ones_like(b_sorted, dtype=torch.bool)
    new_b[:, 1:] = b_sorted[:, 1:] != b_sorted[:, :-1]
    n0 = n * (n - 1) / 2
    n1, n2, n3 = _tied_pairs(new_a), _tied_pairs(new_b), _tied_pairs(new_ab)
    con_minus_dis = n0 - n1 - n2 + n3 - 2 * _inversions(sb)
    tau = con_minus_dis / torch.sqrt((n0 - n1) * (n0 - n2))
    return tau.masked_fill(torch.isnan(fa).any(dim=1) | torch.isnan(fb).any(dim=1), float("nan"))


def _tied_pairs(new_group: Tensor) -> Tensor:
    """Σ t(t−1)/2 over the runs of equal sorted values; ``new_group`` (B, n) marks each run's start."""
    batch, n = new_group.shape
    group = new_group.cumsum(dim=1) - 1
    ones = torch.ones(batch, n, dtype=torch.float64, device=new_group.device)
    size = torch.zeros_like(ones).scatter_add_(1, group, ones)
    return (size * (size - 1)).sum(dim=1) / 2


def _inversions(v: Tensor) -> Tensor:
    """(B,) float64 number of pairs i < j with v[i] > v[j] (strict) in each row of (B, n) ``v``.

    Bottom-up merge: at width w, each element of a right run counts the elements of its left
    neighbour run that are larger (a batched ``searchsorted``), then the two runs are merged (sorted).
    Rows are padded with +inf to a power of two; padding sits last, so it adds no inversion.
    """
    batch, n = v.shape
    size = 1 << max(0, (n - 1).bit_length())
    if size > n:
        v = torch.cat([v, v.new_full((batch, size - n), float("inf"))], dim=1)
    count = torch.zeros(batch, dtype=torch.float64, device=v.device)
    width = 1
    while width < size:
        runs = v.view(batch, size // (2 * width), 2, width)
        left, right = runs[:, :, 0].contiguous(), runs[:, :, 1].contiguous()
        count += (width - torch.searchsorted(left, right, right=True)).sum(dim=(1, 2), dtype=torch.float64)
        v = runs.view(batch, size // (2 * width), 2 * width).sort(dim=2).values.view(batch, size)
        width *= 2
    return count


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
