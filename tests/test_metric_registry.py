"""Registry-driven: every registered map similarity is batched, scores identical maps at its maximum,
and a scrambled map lower, at any k and window it uses."""

from __future__ import annotations

import pytest
import torch

from robustattr.metrics import METRICS


@pytest.mark.parametrize("name", list(METRICS))
def test_every_metric_is_batched_and_ranks_identical_above_scrambled(name: str) -> None:
    metric = METRICS[name]
    g = torch.Generator().manual_seed(0)
    a = torch.rand(5, 12, 12, generator=g, dtype=torch.float64)
    scrambled = a.flatten(1)[:, torch.randperm(144, generator=g)].view_as(a)
    same = metric.compare(a, a.clone(), k=20, window=3)
    other = metric.compare(a, scrambled, k=20, window=3)
    assert same.shape == other.shape == (5,)
    torch.testing.assert_close(same, torch.full_like(same, metric.identical))
    assert bool((other < same).all()) and bool((other >= metric.lowest - 1e-9).all())
    # One example at a time gives the batch's values: no example depends on another.
    one = torch.cat([metric.compare(a[i:i + 1], scrambled[i:i + 1], k=20, window=3) for i in range(5)])
    torch.testing.assert_close(one, other)


def test_a_metric_that_takes_k_refuses_to_run_without_it() -> None:
    with pytest.raises(ValueError, match="needs k"):
        METRICS["top_k_intersection"].compare(torch.rand(1, 4, 4), torch.rand(1, 4, 4))
