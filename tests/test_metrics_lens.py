"""Cosine similarity and the LENS metrics against naive per-image implementations (plain Python loops)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from robustattr.metrics import (
    cosine_similarity, diverse_lens_precision, diverse_lens_recall, diverse_top_k_intersection, diverse_top_k_mask,
    kendall_tau, lens_kendall_tau, lens_precision, lens_recall, lens_top_k_intersection, neighbourhood_kendall_tau,
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
def test_neighbourhood_kendall_is_kendall_of_local_maxima(window):
    a, b = _maps(3)
    got = neighbourhood_kendall_tau(a, b, window)
    torch.testing.assert_close(lens_kendall_tau(a, b, window), got)  # the deprecated name, same values
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
        neighbourhood_kendall_tau(a, b, window=0)
    for score in (lens_recall, lens_precision, diverse_top_k_intersection):
        with pytest.raises(ValueError, match="window must be an odd integer"):
            score(a, b, 5, window=4)
        with pytest.raises(ValueError, match="k must be in 1..99"):
            score(a, b, 100)
    with pytest.raises(ValueError, match="LENS metrics take"):
        lens_recall(a.flatten(1), b.flatten(1), 5)


# ---- the LENS authors' family: a second transcription, flat indices and Python sets -------------

def naive_window(p: int, h: int, w: int, window: int, compat: bool) -> set[int]:
    """The window around flat pixel p: a clipped 2-D square, or (compat) flat offsets dr*W + dc kept in 0 < q < H*W."""
    r = window // 2
    if compat:
        return {p + dr * w + dc for dr in range(-r, r + 1) for dc in range(-r, r + 1) if 0 < p + dr * w + dc < h * w}
    i, j = divmod(p, w)
    return {a * w + b for a in range(i - r, i + r + 1) for b in range(j - r, j + r + 1) if 0 <= a < h and 0 <= b < w}


def naive_order(m: list[float]) -> list[int]:
    return sorted(range(len(m)), key=lambda p: (-m[p], p))  # ties: lower flat index first


def naive_div(m: list[float], k: int, h: int, w: int, window: int, k1: int, compat: bool) -> set[int]:
    candidates = naive_order(m)[:k1]
    chosen: set[int] = set()
    while candidates and len(chosen) < k:
        p = candidates[0]
        chosen.add(p)
        gone = naive_window(p, h, w, window, compat) | {p}
        candidates = [q for q in candidates if q not in gone]
    return chosen


def naive_scores(a: np.ndarray, b: np.ndarray, k: int, window: int, k1: int, compat: bool) -> dict[str, float]:
    h, w = a.shape
    fa, fb = a.ravel().tolist(), b.ravel().tolist()

    def grow(s: set[int]) -> set[int]:
        return set().union(*(naive_window(p, h, w, window, compat) for p in s))

    ta, tb = set(naive_order(fa)[:k]), set(naive_order(fb)[:k])
    da, db = naive_div(fa, k, h, w, window, k1, compat), naive_div(fb, k, h, w, window, k1, compat)
    return {"recall": len(grow(ta) & tb) / k, "precision": len(ta & grow(tb)) / k, "div": len(da & db) / k,
            "div_recall": len(grow(da) & db) / k, "div_precision": len(da & grow(db)) / k}


def _check_family(a: torch.Tensor, b: torch.Tensor, k: int, window: int, k1: int, compat: bool) -> None:
    got = {"recall": lens_recall(a, b, k, window, compat), "precision": lens_precision(a, b, k, window, compat),
           "div": diverse_top_k_intersection(a, b, k, window, k1, compat),
           "div_recall": diverse_lens_recall(a, b, k, window, k1, compat),
           "div_precision": diverse_lens_precision(a, b, k, window, k1, compat)}
    for i in range(a.shape[0]):
        want = naive_scores(a[i].numpy(), b[i].numpy(), k, window, k1, compat)
        scores = {name: v[i].item() for name, v in got.items()}
        assert scores == pytest.approx(want, abs=1e-6), (i, k, window)  # float32 scores: 1e-6 << 1 / k


@pytest.mark.parametrize("compat", [False, True])
@pytest.mark.parametrize("window", [1, 3, 5])
def test_lens_family_equals_a_naive_transcription_on_random_maps(window, compat):
    a, b = _maps(5)
    for k in (1, 12, 60, 98, 99):  # up to k = H*W
        _check_family(a, b, k, window, 40, compat)
    ties_a, ties_b = torch.round(a * 3) / 3, torch.round(b * 2) / 2  # a few values: ties everywhere
    for k in (7, 50, 99):
        _check_family(ties_a, ties_b, k, window, 600, compat)


@pytest.mark.slow
@pytest.mark.parametrize("compat", [False, True])
def test_lens_family_equals_a_naive_transcription_on_real_mnist_maps(mnist_root, compat):
    from robustattr import data

    x, _ = data.load("mnist", "test", root=mnist_root).batch(torch.arange(4))
    a = x[:, 0].double()  # digits: most pixels tie at 0
    gen = torch.Generator().manual_seed(0)
    b = torch.roll(a, 1, dims=2) * (0.8 + 0.4 * torch.rand(a.shape, generator=gen, dtype=torch.float64))
    b[3] = torch.rand(28, 28, generator=gen, dtype=torch.float64)
    for k in (100, 783, 784):
        _check_family(a, b, k, 3, 600, compat)


def test_compat_windows_wrap_across_rows_and_drop_pixel_zero():
    a = torch.zeros(1, 4, 5)
    b = torch.zeros(1, 4, 5)
    a[0, 1, 4], b[0, 2, 0] = 1.0, 1.0  # flat 9 and 10: neighbours only by wrapping the row end
    assert lens_recall(a, b, 1).item() == 0.0 and lens_recall(a, b, 1, compat=True).item() == 1.0
    a, b = torch.zeros(1, 4, 5), torch.zeros(1, 4, 5)
    a[0, 0, 1], b[0, 0, 0] = 1.0, 1.0
    assert lens_recall(a, b, 1).item() == 1.0 and lens_recall(a, b, 1, compat=True).item() == 0.0
    assert lens_precision(b, b, 1, window=1).item() == 1.0 and lens_precision(b, b, 1, 1, compat=True).item() == 0.0


def test_lens_precision_is_the_old_lens_top_k_intersection_and_recall_its_mirror():
    a, b = _maps(6)  # continuous values: no ties, so both top-k rules agree
    for diverse in (False, True):
        old = lens_top_k_intersection(a, b, 10, 3, diverse=diverse)
        mirrored = lens_top_k_intersection(b, a, 10, 3, diverse=diverse)
        if diverse:
            new = diverse_lens_precision(a, b, 10, candidates=99)
            new_recall = diverse_lens_recall(a, b, 10, candidates=99)
        else:
            new, new_recall = lens_precision(a, b, 10), lens_recall(a, b, 10)
        torch.testing.assert_close(new, old)
        torch.testing.assert_close(new_recall, mirrored)
    torch.testing.assert_close(lens_recall(a, b, 10, window=1), top_k_intersection(a, b, 10))
