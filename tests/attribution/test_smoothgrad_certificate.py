"""The sparsified-SmoothGrad certificate's count against a one-image SciPy transcription, its limits, its noise."""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch

from robustattr.attribution.smoothgrad_certificate import (
    NOISE_BLOCK, certificate_noise, certified_top_k_count, hoeffding_margin, keep_count, sparsified_gradient_map,
)


def scipy_count(s: list[float], k: int, samples: int, sigma: float, radius: float, confidence: float) -> int:
    """#{i <= k : Phi(Phi^-1(s_i - e) - 2 rho / sigma) - e > s_(2k-i)}, 1-based, s sorted decreasing."""
    v = sorted(s, reverse=True)
    e = math.sqrt(math.log(2 * len(v) / (1 - confidence)) / (2 * samples))
    count = 0
    for i in range(1, k + 1):
        if v[i - 1] - e <= 0:  # Phi^-1 would be -inf: the lower bound is 0 - e, below any s
            continue
        lower = scipy.stats.norm.cdf(scipy.stats.norm.ppf(v[i - 1] - e) - 2 * radius / sigma) - e
        count += lower > v[2 * k - i - 1]
    return count


def _maps(seed: int, batch: int = 6, shape=(7, 9)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    s = torch.rand(batch, *shape, generator=gen, dtype=torch.float64) ** 3  # a few high values, a long tail
    s[0] = torch.round(s[0] * 8) / 8  # ties, as a mean of n binary maps has
    s[1, :2] = 1.0
    return s


@pytest.mark.parametrize("samples", [64, 2048, 10**6])
@pytest.mark.parametrize("radius", [0.0, 0.01, 0.05])
@pytest.mark.parametrize("confidence", [0.5, 0.99])
def test_count_equals_a_scipy_transcription(samples, radius, confidence):
    s = _maps(0)
    for k in (1, 5, 17, 32):  # 32 = (63 + 1) / 2, the largest k with 2k - 1 <= d
        got = certified_top_k_count(s, k, samples=samples, sigma=0.25, radius=radius, confidence=confidence)
        want = [scipy_count(s[i].flatten().tolist(), k, samples, 0.25, radius, confidence) for i in range(len(s))]
        assert got.tolist() == want, (k, samples, radius, confidence)


def test_limits_margin_and_radius_to_zero():
    s = _maps(1)
    flat = s.flatten(1).sort(dim=1, descending=True).values
    for k in (3, 20, 32):
        i = torch.arange(1, k + 1)
        # e -> 0 and rho = 0: the count is #{i <= k : s_i > s_(2k-i)} (i = k compares s_k with itself).
        exact = (flat[:, :k] > flat[:, 2 * k - i - 1]).sum(dim=1)
        none = certified_top_k_count(s, k, samples=10**15, sigma=0.25, radius=0.0, confidence=0.9)
        assert none.tolist() == exact.tolist()
        assert none[2:].tolist() == [k - 1] * (len(s) - 2)  # distinct values: all but the k-th
        # rho -> 0 with a finite n: Phi(Phi^-1(a)) = a, so the count is #{i : s_i - 2e > s_(2k-i)}.
        e = hoeffding_margin(63, 500, 0.9)
        margin_only = (flat[:, :k] - 2 * e > flat[:, 2 * k - i - 1]).sum(dim=1)
        assert certified_top_k_count(s, k, samples=500, sigma=0.25, radius=0.0, confidence=0.9).tolist() == \
            margin_only.tolist()
        # More radius never certifies more; more samples never certify less.
        counts = [certified_top_k_count(s, k, samples=n, sigma=0.25, radius=r, confidence=0.9)
                  for n in (100, 1000) for r in (0.0, 0.02, 0.1)]
        assert all((a >= b).all() for a, b in zip(counts[:2] + counts[3:5], counts[1:3] + counts[4:6]))
        assert all((counts[j + 3] >= counts[j]).all() for j in range(3))


def test_margin_is_the_hoeffding_union_bound():
    assert hoeffding_margin(784, 512, 0.99) == pytest.approx(math.sqrt(math.log(2 * 784 / 0.01) / 1024))
    with pytest.raises(ValueError, match="confidence must be in"):
        hoeffding_margin(784, 512, 1.0)
    with pytest.raises(ValueError, match=r"k must be in 1..32"):
        certified_top_k_count(_maps(2), 33, samples=10, sigma=0.25, radius=0.0, confidence=0.9)
    assert keep_count(0.2, 784) == 157 and keep_count(1e-9, 784) == 1 and keep_count(1.0, 784) == 784
    with pytest.raises(ValueError, match="sparsity"):
        keep_count(0.0, 784)


def test_noise_depends_on_the_seed_only_and_blocks_join_seamlessly():
    shape = (1, 4, 5)
    both = certificate_noise([11, 12], 0.5, shape, dtype=torch.float64, device=torch.device("cpu"))
    alone = certificate_noise([12], 0.5, shape, dtype=torch.float64, device=torch.device("cpu"))
    span = NOISE_BLOCK + 9
    torch.testing.assert_close(both(0, span)[1], alone(0, span)[0], rtol=0, atol=0)
    torch.testing.assert_close(both(NOISE_BLOCK - 3, span)[0], both(0, span)[0, NOISE_BLOCK - 3:], rtol=0, atol=0)
    assert not torch.equal(both(0, 4)[0], both(0, 4)[1])
    assert both(0, 4000)[0].std().item() == pytest.approx(0.5, rel=0.05)


def test_base_map_sets_the_largest_gradient_pixels_to_one():
    weight = torch.arange(12, dtype=torch.float64).view(1, 1, 3, 4) - 5.5  # |gradient| = |weight|
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2, dtype=torch.float64))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[1] = weight.flatten()
    z = torch.rand(2, 1, 3, 4, dtype=torch.float64)
    maps = sparsified_gradient_map(model, z, torch.tensor([1, 1]), keep=4)
    want = torch.zeros(3, 4, dtype=torch.float64)
    want.view(-1)[[0, 1, 10, 11]] = 1.0  # |weight| 5.5, 4.5, 4.5, 5.5
    torch.testing.assert_close(maps, want.expand(2, 3, 4))
