"""Similarity of attribution maps: top-k intersection, Kendall's tau-b, Spearman's rho, mass centre,
cosine similarity, and the locality-sensitive (LENS) metrics of Kamath et al. (AAAI 2024).

Pure tensor functions, batched over the first dimension and computed on the inputs' device, so
an attack loop never leaves the device to score its iterates (the original called SciPy per image).
Every function flattens all but the first dimension and returns one value per example.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["top_k_intersection", "top_k_mask", "kendall_tau", "spearman", "mass_center", "average_ranks",
           "cosine_similarity", "neighbourhood", "diverse_top_k_mask", "lens_top_k_intersection", "lens_kendall_tau"]

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
    fa, fb = _flat(a), _flat(b)
    norms = fa.norm(dim=1).clamp_min(1e-12) * fb.norm(dim=1).clamp_min(1e-12)
    return (fa * fb).sum(dim=1) / norms


def neighbourhood(mask: Tensor, window: int) -> Tensor:
    """(B, H, W) bool: the pixels within a ``window``×``window`` square centred on a True pixel of ``mask``.

    The dilation N_w of a pixel set; the square is clipped at the image border (no wrap-around).
    ``window`` is odd (1 gives ``mask`` back).
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 1, got {window}")
    grown = torch.nn.functional.max_pool2d(mask.to(torch.float32).unsqueeze(1), window, stride=1, padding=window // 2)
    return grown.squeeze(1) > 0


def diverse_top_k_mask(s: Tensor, k: int, window: int = 3) -> Tensor:
    """(B, H, W) bool: top-k-div, Kamath et al.'s diverse top-k pixels of each map ``s`` (B, H, W).

    Greedy: take the largest remaining pixel, then drop every pixel of its ``window``×``window``
    square from the candidates; repeat k times (fewer when the candidates run out). Ties go to the
    lower flat index. Unlike the authors' code, which takes candidates from the top 6k–25k pixels
    only and walks flat indices (its squares wrap across row ends), every pixel is a candidate and
    squares are clipped at the border. k sequential steps, each a batched arg-max: no host sync.
    """
    batch, h, w = s.shape
    if not 1 <= k <= h * w:
        raise ValueError(f"k must be in 1..{h * w}, got {k}")
    flat = s.reshape(batch, -1)
    lowest = torch.finfo(flat.dtype).min if flat.is_floating_point() else torch.iinfo(flat.dtype).min
    available = torch.ones_like(flat, dtype=torch.bool)
    chosen = torch.zeros_like(available)
    rows = torch.arange(h * w, device=s.device) // w
    cols = torch.arange(h * w, device=s.device) % w
    r = window // 2
    for _ in range(k):
        idx = flat.masked_fill(~available, lowest).argmax(dim=1)  # (B,)
        ok = available.gather(1, idx.unsqueeze(1)).squeeze(1)  # False once nothing is left
        chosen.scatter_(1, idx.unsqueeze(1), ok.unsqueeze(1) | chosen.gather(1, idx.unsqueeze(1)))
        near = ((rows - rows[idx].unsqueeze(1)).abs() <= r) & ((cols - cols[idx].unsqueeze(1)).abs() <= r)
        available &= ~near
    return chosen.view(batch, h, w)


def lens_top_k_intersection(a: Tensor, b: Tensor, k: int, window: int = 3, *, diverse: bool = False) -> Tensor:
    """w-LENS top-k intersection (Kamath et al., "Rethinking Robustness of Model Attributions", AAAI 2024).

    |T_k(a) ∩ N_w(T_k(b))| / k: the fraction of the k largest pixels of ``a`` that lie within a
    ``window``×``window`` square of one of the k largest pixels of ``b``. With ``window=1`` it is the
    plain :func:`top_k_intersection`; a saliency peak moved by a pixel no longer counts as lost. The
    paper reports both directions: with ``a`` the original map this is their w-LENS-prec@k, and
    ``lens_top_k_intersection(b, a, ...)`` their w-LENS-recall@k. ``diverse=True`` uses the top-k-div
    sets (:func:`diverse_top_k_mask`) for both maps (their "@k-div" variants). Squares are clipped
    at the border (their code's flat indices wrap across rows).

    Args:
        a, b: (B, H, W) maps (a: original, b: perturbed).
        k: 1 ≤ k ≤ H·W; window: odd side of the square (3 in the paper's main results).
    Returns:
        (B,) float in [0, 1].
    """
    if diverse:
        top_a, top_b = diverse_top_k_mask(a, k, window), diverse_top_k_mask(b, k, window)
    else:
        top_a, top_b = top_k_mask(a, k).view_as(a), top_k_mask(b, k).view_as(b)
    both = top_a & neighbourhood(top_b, window)
    return both.flatten(1).sum(dim=1).to(torch.get_default_dtype()) / k


def lens_kendall_tau(a: Tensor, b: Tensor, window: int = 3) -> Tensor:
    """Locality-sensitive Kendall τ-b: :func:`kendall_tau` of the maps' ``window``×``window`` local maxima.

    Kamath et al. extend their locality idea from top-k to rank correlations (LENS-Kendall); their
    released code implements the top-k variants only, so the construction here is ours, stated
    exactly: each map is replaced by its sliding-window maximum (stride 1, clipped at the border,
    i.e. grey-scale dilation), then τ-b is taken as usual. A peak that moves by up to ``window // 2``
    pixels keeps the high values of its neighbourhood, so such shifts cost little; a peak that
    moves farther still loses rank. ``window=1`` gives :func:`kendall_tau`.

    Args:
        a, b: (B, H, W) real maps; window: odd side of the square.
    Returns:
        (B,) in [−1, 1], dtype of a; NaN where a pooled map is constant.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 1, got {window}")

    def pooled(t: Tensor) -> Tensor:
        return torch.nn.functional.max_pool2d(t.unsqueeze(1), window, stride=1, padding=window // 2).squeeze(1)

    return kendall_tau(pooled(a), pooled(b))
