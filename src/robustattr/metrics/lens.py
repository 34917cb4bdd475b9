"""The LENS family of Kamath et al. ("Rethinking Robustness of Model Attributions", AAAI 2024), as their
code defines it.

With T_k(m) the k largest pixels of a map m and N_w(S) the union of the w×w windows around the pixels of S:

- w-LENS-recall@k(a, b)    = |N_w(T_k(a)) ∩ T_k(b)| / k   (:func:`lens_recall`)
- w-LENS-prec@k(a, b)      = |T_k(a) ∩ N_w(T_k(b))| / k   (:func:`lens_precision`)
- top-k-div D_k(m): greedy suppression over the ``candidates`` (k1) largest pixels — take the largest
  one still available, make its w-window unavailable, repeat k times (fewer when none is left);
  top-k-div intersection = |D_k(a) ∩ D_k(b)| / k (:func:`diverse_top_k_intersection`), and
  :func:`diverse_lens_recall` / :func:`diverse_lens_precision` the two LENS scores with D_k for T_k.
  The paper's MNIST setting: k1 = 600, w = 3, k = 100. Every score divides by k.

Windows (``compat=False``, the default) are 2-D w×w squares clipped at the image border.
``compat=True`` reproduces the authors' flat-index windows: the window of flat index p is
{p + dr·W + dc : |dr|, |dc| ≤ w // 2} kept where 0 < q < H·W, so it wraps from a row's end into
the next row, and pixel 0 is never in any window (their bound is ``q > 0``). In top-k-div the
chosen pixel itself always leaves the candidates, so pixel 0 cannot be chosen twice.

Ties: pixels of equal value are ranked by flat index, lower first (a stable descending sort), in
T_k and in the candidates' order. Maps are (B, H, W) or (B, 1, H, W), any real dtype; every
score is (B,) in [0, 1], default float dtype, on the maps' device; k sequential batched steps for
top-k-div, no host sync.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["lens_recall", "lens_precision", "diverse_top_k_intersection", "diverse_lens_recall",
           "diverse_lens_precision", "lens_top_k_set", "diverse_top_k_set", "lens_window_dilation"]


def _hw(m: Tensor) -> tuple[int, int, int]:
    """(B, H, W) of a (B, H, W) or (B, 1, ..., 1, H, W) map; ValueError otherwise."""
    if m.dim() < 3 or any(s != 1 for s in m.shape[1:-2]):
        raise ValueError(f"LENS metrics take (B, H, W) maps (or (B, 1, H, W)); got shape {tuple(m.shape)}")
    return m.shape[0], m.shape[-2], m.shape[-1]


def _check(window: int, k: int, n: int) -> None:
    if not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 1, got {window}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")


def _order(m: Tensor) -> Tensor:
    """(B, n) flat indices by decreasing value, ties by increasing index."""
    return m.reshape(m.shape[0], -1).sort(dim=1, descending=True, stable=True).indices


def lens_top_k_set(m: Tensor, k: int) -> Tensor:
    """(B, H·W) bool: T_k, the k largest pixels of each (B, H, W) map (ties: lower flat index)."""
    batch, h, w = _hw(m)
    _check(1, k, h * w)
    idx = _order(m)[:, :k]
    return torch.zeros(batch, h * w, dtype=torch.bool, device=m.device).scatter_(1, idx, True)


def lens_window_dilation(mask: Tensor, h: int, w: int, window: int, compat: bool = False) -> Tensor:
    """N_w: (B, H·W) bool, the pixels in the ``window``×``window`` window of a True pixel of ``mask`` (B, H·W).

    ``compat=False``: 2-D squares clipped at the border. ``compat=True``: the authors' flat windows
    (offsets dr·W + dc wrap across rows; pixel 0 never included).
    """
    batch, n = mask.shape
    r = window // 2
    if not compat:
        grown = torch.nn.functional.max_pool2d(mask.view(batch, 1, h, w).to(torch.float32), window, stride=1,
                                               padding=r)
        return grown.view(batch, n) > 0
    reach = r * w + r
    padded = torch.nn.functional.pad(mask, (reach, reach))  # False outside 0..n-1
    grown = torch.zeros_like(mask)
    for dr in range(-r, r + 1):
        for dc in range(-r, r + 1):
            off = dr * w + dc  # q = p + off is in p's window: grown[q] |= mask[q - off]
            grown |= padded[:, reach - off : reach - off + n]
    grown[:, 0] = False
    return grown


def _in_window(p: Tensor, h: int, w: int, window: int, compat: bool) -> Tensor:
    """(B, H·W) bool: the pixels of the window of flat pixel p (B,) (the window's own rule for pixel 0)."""
    q = torch.arange(h * w, device=p.device)
    r = window // 2
    if not compat:
        return (((q // w) - (p // w).unsqueeze(1)).abs() <= r) & (((q % w) - (p % w).unsqueeze(1)).abs() <= r)
    d = q - p.unsqueeze(1)
    near = torch.zeros_like(d, dtype=torch.bool)
    for dr in range(-r, r + 1):
        near |= (d - dr * w).abs() <= r
    return near & (q > 0)


def diverse_top_k_set(m: Tensor, k: int, window: int = 3, candidates: int = 600, compat: bool = False) -> Tensor:
    """(B, H·W) bool: top-k-div of each (B, H, W) map, greedy over its ``candidates`` largest pixels.

    ``candidates`` above H·W means every pixel. Fewer than k pixels are chosen when the candidates
    run out (each pick removes up to w² of them).
    """
    batch, h, w = _hw(m)
    n = h * w
    _check(window, k, n)
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    order = _order(m)[:, : min(candidates, n)]  # (B, k1) candidates, best first
    available = torch.ones_like(order, dtype=torch.bool)
    chosen = torch.zeros(batch, n, dtype=torch.bool, device=m.device)
    rows = torch.arange(batch, device=m.device)
    for _ in range(k):
        pos = available.to(torch.uint8).argmax(dim=1)  # the first available candidate = the best remaining
        ok = available[rows, pos]  # False once none is left
        p = order[rows, pos]
        chosen[rows, p] |= ok
        window_of_p = _in_window(p, h, w, window, compat).gather(1, order)
        available &= ~window_of_p
        available[rows, pos] = False  # the pick itself leaves, even where its window omits it (compat, pixel 0)
    return chosen


def _score(hit: Tensor, k: int) -> Tensor:
    return hit.sum(dim=1).to(torch.get_default_dtype()) / k


def _lens(top_a: Tensor, top_b: Tensor, h: int, w: int, k: int, window: int, compat: bool,
          recall: bool) -> Tensor:
    if recall:
        return _score(lens_window_dilation(top_a, h, w, window, compat) & top_b, k)
    return _score(top_a & lens_window_dilation(top_b, h, w, window, compat), k)


def _same_shape(a: Tensor, b: Tensor) -> tuple[int, int, int]:
    if a.shape != b.shape:
        raise ValueError(f"maps must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return _hw(a)


def lens_recall(a: Tensor, b: Tensor, k: int, window: int = 3, compat: bool = False) -> Tensor:
    """w-LENS-recall@k: |N_w(T_k(a)) ∩ T_k(b)| / k, the share of b's top k within a window of a's top k.

    Args:
        a, b: (B, H, W) (or (B, 1, H, W)) maps, a the original, b the perturbed one.
        k: 1 ≤ k ≤ H·W; window: odd w (1 gives the plain top-k intersection); compat: flat windows.
    Returns:
        (B,) float in [0, 1].
    """
    _, h, w = _same_shape(a, b)
    _check(window, k, h * w)
    return _lens(lens_top_k_set(a, k), lens_top_k_set(b, k), h, w, k, window, compat, recall=True)


def lens_precision(a: Tensor, b: Tensor, k: int, window: int = 3, compat: bool = False) -> Tensor:
    """w-LENS-prec@k: |T_k(a) ∩ N_w(T_k(b))| / k, the share of a's top k within a window of b's top k.

    Arguments and result as :func:`lens_recall`.
    """
    _, h, w = _same_shape(a, b)
    _check(window, k, h * w)
    return _lens(lens_top_k_set(a, k), lens_top_k_set(b, k), h, w, k, window, compat, recall=False)


def diverse_top_k_intersection(a: Tensor, b: Tensor, k: int, window: int = 3, candidates: int = 600,
                               compat: bool = False) -> Tensor:
    """top-k-div intersection: |D_k(a) ∩ D_k(b)| / k (:func:`diverse_top_k_set`).

    Args:
        a, b: (B, H, W) (or (B, 1, H, W)) maps; k: 1 ≤ k ≤ H·W; window: odd suppression window w;
        candidates: k1, how many of the largest pixels the greedy pass may pick from; compat: flat windows.
    Returns:
        (B,) float in [0, 1].
    """
    _same_shape(a, b)
    return _score(diverse_top_k_set(a, k, window, candidates, compat) & diverse_top_k_set(b, k, window, candidates,
                                                                                              compat), k)


def diverse_lens_recall(a: Tensor, b: Tensor, k: int, window: int = 3, candidates: int = 600,
                        compat: bool = False) -> Tensor:
    """w-LENS-recall@k-div: |N_w(D_k(a)) ∩ D_k(b)| / k; arguments as :func:`diverse_top_k_intersection`."""
    _, h, w = _same_shape(a, b)
    da, db = diverse_top_k_set(a, k, window, candidates, compat), diverse_top_k_set(b, k, window, candidates, compat)
    return _lens(da, db, h, w, k, window, compat, recall=True)


def diverse_lens_precision(a: Tensor, b: Tensor, k: int, window: int = 3, candidates: int = 600,
                           compat: bool = False) -> Tensor:
    """w-LENS-prec@k-div: |D_k(a) ∩ N_w(D_k(b))| / k; arguments as :func:`diverse_top_k_intersection`."""
    _, h, w = _same_shape(a, b)
    da, db = diverse_top_k_set(a, k, window, candidates, compat), diverse_top_k_set(b, k, window, candidates, compat)
    return _lens(da, db, h, w, k, window, compat, recall=False)
