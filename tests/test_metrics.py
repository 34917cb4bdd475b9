"""Attribution-map similarity metrics against SciPy and hand-computed values."""

import numpy as np
import pytest
import scipy.stats
import torch

from robustattr.metrics import average_ranks, kendall_tau, mass_center, spearman, top_k_intersection


def _pairs(seed, ties):
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(6, 14, 14, generator=gen, dtype=torch.float64)
    b = a + 0.5 * torch.rand(6, 14, 14, generator=gen, dtype=torch.float64)
    if ties:
        a, b = torch.round(a * 5) / 5, torch.round(b * 3) / 3
        a[0, :4] = 0.0
        b[1] = torch.where(b[1] > 1, 1.0, b[1])
    return a, b


@pytest.mark.parametrize("ties", [False, True])
def test_kendall_and_spearman_equal_scipy(ties):
    a, b = _pairs(0 if not ties else 1, ties)
    tau = kendall_tau(a, b)
    rho = spearman(a, b)
    for i in range(a.shape[0]):
        fa, fb = a[i].flatten().numpy(), b[i].flatten().numpy()
        assert tau[i].item() == pytest.approx(scipy.stats.kendalltau(fa, fb).statistic, abs=1e-12)
        assert rho[i].item() == pytest.approx(scipy.stats.spearmanr(fa, fb).statistic, abs=1e-12)


def test_kendall_blocking_is_exact(monkeypatch):
    import robustattr.metrics.ranking as ranking_module
    import robustattr.metrics as metrics

    assert metrics.ranking is ranking_module

    a, b = _pairs(2, ties=True)
    full = kendall_tau(a, b)
    monkeypatch.setattr(metrics.ranking, "_PAIR_BLOCK_ELEMENTS", 97)
    torch.testing.assert_close(kendall_tau(a, b), full)


def test_average_ranks_equal_scipy_rankdata():
    a = torch.tensor([[3.0, 1.0, 3.0, 2.0, 3.0, 1.0]])
    np.testing.assert_allclose(average_ranks(a)[0].numpy(), scipy.stats.rankdata(a[0].numpy()))


def test_constant_map_gives_nan_like_scipy():
    a = torch.ones(1, 3, 3)
    b = torch.rand(1, 3, 3)
    assert torch.isnan(kendall_tau(a, b)).all() and torch.isnan(spearman(a, b)).all()


def test_top_k_intersection():
    a = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    b = torch.tensor([[5.0, 1.0, 4.0, 2.0, 3.0]])
    assert top_k_intersection(a, b, 2).tolist() == [0.5]
    assert top_k_intersection(a, a, 3).tolist() == [1.0]
    assert top_k_intersection(a, -a, 2).tolist() == [0.0]
    with pytest.raises(ValueError, match="k must be in 1..5"):
        top_k_intersection(a, b, 6)


def test_mass_center():
    s = torch.zeros(2, 4, 5)
    s[0, 1, 3] = 20.0
    s[1, 0, 0] = 10.0
    s[1, 2, 4] = 10.0
    torch.testing.assert_close(mass_center(s), torch.tensor([[1.0, 3.0], [1.0, 2.0]]))
