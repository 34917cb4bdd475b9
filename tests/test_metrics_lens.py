"""Cosine similarity and the LENS metrics against naive per-image implementations (plain Python loops)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from robustattr.metrics import (
    cosine_similarity, diverse_top_k_mask, kendall_tau, lens_kendall_tau, lens_top_k_intersection,
    top_k_intersection,
)


def _maps(seed: int, shape=(5, 9, 11)) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(*shape, generator=gen, dtype=torch.float64)
    b = 0.6 * a + 0.4 * torch.rand(*shape, generator=gen, dtype=torch.float64)
    b[0] = torch.roll(a[0], shifts=1, dims=1)  # a one-pixel shift: what LENS forgives
    return a, b


# ---- naive references: one image, explicit pixel loops ------------------------------------------

def naive_top_k(m: np.ndarray, k: int) -> set[tuple[int, int]]:
    order = sorted(np.ndindex(*m.shape), key=lambda p: (-m[p], p))  # ties: lower flat index first
    return set(order[:k])


def naive_near(p: tuple[int, int], q: tuple[int, int], window: int) -> bool:
    return abs(p[0] - q[0]) <= window // 2 and abs(p[1] - q[1]) <= window // 2


def naive_diverse(m: np.ndarray, k: int, window: int) -> set[tuple[int, int]]:
    candidates = sorted(np.ndindex(*m.shape), key=lambda p: (-m[p], p))
    chosen: list[tuple[int, int]] = []
    while candidates and len(chosen) < k:
        p = candidates[0]
        chosen.append(p)
        candidates = [q for q in candidates if not naive_near(p, q, window)]
    return set(chosen)


def naive_lens(a: np.ndarray, b: np.ndarray, k: int, window: int, diverse: bool) -> float:
    ta = naive_diverse(a, k, window) if diverse else naive_top_k(a, k)
    tb = naive_diverse(b, k, window) if diverse else naive_top_k(b, k)
    return sum(any(naive_near(p, q, window) for q in tb) for p in ta) / k


def naive_local_max(m: np.ndarray, window: int) -> np.ndarray:
    h, w = m.shape
    r = window // 2
    out = np.empty_like(m)
    for i in range(h):
        for j in range(w):
            out[i, j] = m[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].max()
    return out


# ---- tests ---------------------------------------------------------------------------------------

def test_cosine_similarity_equals_the_textbook_formula():
    a, b = _maps(0)
    got = cosine_similarity(a, b)
    for i in range(a.shape[0]):
        u, v = a[i].numpy().ravel(), b[i].numpy().ravel()
        assert got[i].item() == pytest.approx(float(u @ v / np.linalg.norm(u) / np.linalg.norm(v)), abs=1e-12)
    assert cosine_similarity(torch.zeros(2, 3, 3), torch.ones(2, 3, 3)).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("window", [1, 3, 5])
@pytest.mark.parametrize("diverse", [False, True])
def test_lens_top_k_equals_naive(window, diverse):
    a, b = _maps(1)
    k = 12
    got = lens_top_k_intersection(a, b, k, window, diverse=diverse)
    recall = lens_top_k_intersection(b, a, k, window, diverse=diverse)
    for i in range(a.shape[0]):
        A, B = a[i].numpy(), b[i].numpy()
        assert got[i].item() == pytest.approx(naive_lens(A, B, k, window, diverse), abs=1e-6)
        assert recall[i].item() == pytest.approx(naive_lens(B, A, k, window, diverse), abs=1e-6)


def test_lens_window_one_is_top_k_and_forgives_a_shift():
    a, b = _maps(2)
    torch.testing.assert_close(lens_top_k_intersection(a, b, 20, 1), top_k_intersection(a, b, 20))
    shifted = lens_top_k_intersection(a, b, 20, 3)[0]
    assert top_k_intersection(a, b, 20)[0] < 0.5 and shifted > 0.9  # b[0] is a shifted by one column


def test_diverse_top_k_runs_out_of_candidates_gracefully():
    s = torch.rand(2, 4, 4, dtype=torch.float64)
    mask = diverse_top_k_mask(s, 16, window=3)
    for i in range(2):
        want = naive_diverse(s[i].numpy(), 16, 3)
        assert {tuple(p) for p in mask[i].nonzero().tolist()} == want
        assert len(want) <= 4


@pytest.mark.parametrize("window", [1, 3])
def test_lens_kendall_is_kendall_of_local_maxima(window):
    a, b = _maps(3)
    got = lens_kendall_tau(a, b, window)
    for i in range(a.shape[0]):
        pa, pb = naive_local_max(a[i].numpy(), window), naive_local_max(b[i].numpy(), window)
        want = scipy.stats.kendalltau(pa.ravel(), pb.ravel()).statistic
        assert got[i].item() == pytest.approx(want, abs=1e-12)
    if window == 3:
        assert got[0] > kendall_tau(a, b)[0]  # the shifted map loses less under LENS


def test_bad_window_is_refused():
    a, b = _maps(4)
    with pytest.raises(ValueError, match="window must be an odd integer"):
        lens_top_k_intersection(a, b, 5, window=2)
    with pytest.raises(ValueError, match="window must be an odd integer"):
        lens_kendall_tau(a, b, window=0)
