"""robustattr's neighbourhood-tolerant similarities, written before the LENS authors' code was read.

:func:`lens_top_k_intersection` is w-LENS-prec@k with 2-D windows (:func:`robustattr.metrics.lens_precision`
is the code-checked family, with ``compat`` and the ``candidates`` of top-k-div); it is kept because the
attribution evaluation's result files report it. :func:`neighbourhood_kendall_tau` is our own
construction (no LENS Kendall exists in the authors' code); ``lens_kendall_tau`` is its deprecated old name.
"""

from __future__ import annotations

import torch
from torch import Tensor

from robustattr.metrics.ranking import kendall_tau, top_k_mask

__all__ = ["neighbourhood", "diverse_top_k_mask", "lens_top_k_intersection", "neighbourhood_kendall_tau",
           "lens_kendall_tau"]


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


def neighbourhood_kendall_tau(a: Tensor, b: Tensor, window: int = 3) -> Tensor:
    """Our neighbourhood Kendall τ-b: :func:`kendall_tau` of the maps' ``window``×``window`` local maxima.

    Not a LENS metric: Kamath et al.'s code defines no Kendall variant (only the top-k family in
    :mod:`robustattr.metrics.lens`). This construction, in the spirit of their locality idea, is
    robustattr's own, stated exactly: each map is replaced by its sliding-window maximum (stride 1,
    clipped at the border, i.e. grey-scale dilation), then τ-b is taken as usual. A peak that moves by up to ``window // 2``
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


def lens_kendall_tau(a: Tensor, b: Tensor, window: int = 3) -> Tensor:
    """Deprecated name of :func:`neighbourhood_kendall_tau` (the result files' ``lens_kendall`` key
    still uses it); it is our construction, not a LENS metric. Same arguments, same result."""
    return neighbourhood_kendall_tau(a, b, window)
