"""attribution_robustness_of: any model, tensors or a DataLoader, one result per example."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from robustattr.attacks.strong_attribution import strong_attribution_attack
from robustattr.evaluation import attribution_robustness_of
from robustattr.metrics import cosine_similarity, lens_kendall_tau, lens_top_k_intersection

SETTINGS = dict(epsilon=0.1, step_size=0.04, steps=3, k_top=10, eval_k_top=8, n_steps=4, seed=11)


def _model_and_data():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).double()
    x = torch.rand(7, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[2] = (y[2] + 1) % 3  # misclassified: not attacked
    return model, x, y


@pytest.mark.parametrize("strong", [True, False])
def test_tensors_and_a_loader_give_the_same_per_example_results(strong):
    model, x, y = _model_and_data()
    a = attribution_robustness_of(model, (x, y), strong=strong, batch_size=3, **SETTINGS)
    b = attribution_robustness_of(model, DataLoader(TensorDataset(x, y), batch_size=5), strong=strong, **SETTINGS)
    for name in ("intersection", "kendall", "cosine", "lens_kendall", "x_adv"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), equal_nan=True, rtol=0, atol=1e-12)
    assert a.attacked.tolist() == [True, True, False, True, True, True, True] and torch.isnan(a.kendall[2])
    assert a.found.any() and (a.kendall[a.found] < 1).all()
    summary = a.summary()
    assert summary["num_attacked"] == 6 and summary["kendall"] == pytest.approx(a.kendall[a.attacked].mean().item())


def test_strong_results_are_the_attacks_and_the_maps_metrics():
    model, x, y = _model_and_data()
    r = attribution_robustness_of(model, (x, y), strong=True, **SETTINGS)
    settings = {k: v for k, v in SETTINGS.items() if k != "seed"}
    direct = strong_attribution_attack(model, x, y, seed=11, example_ids=range(7), **settings)
    torch.testing.assert_close(r.kendall, direct.kendall, equal_nan=True)
    ok = r.attacked
    torch.testing.assert_close(r.cosine[ok], cosine_similarity(direct.saliency, direct.saliency_adv)[ok])
    torch.testing.assert_close(r.lens_kendall[ok], lens_kendall_tau(direct.saliency, direct.saliency_adv)[ok])
    torch.testing.assert_close(r.lens_intersection[ok],
                               lens_top_k_intersection(direct.saliency, direct.saliency_adv, 8).double()[ok])
