"""Objectives on a tiny float64 CNN: reductions, weight decay on weights only, logs, and the
memory-bounded (chunked) regulariser giving the same gradient as the whole batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustattr.errors import UserInputError
from robustattr.training import OBJECTIVES, ObjectiveParams, get_objective
from robustattr.training.objectives import resolve_reduction
from robustattr.training.objectives._base import weight_decay_term

PARAMS = ObjectiveParams(m=6, approx_factor=2, epsilon=0.2, num_steps=3, step_size=0.05, lam=0.5, loss_func="xent")


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 8), nn.ReLU(), nn.Linear(8, 3)
    ).double()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return torch.rand(6, 1, 6, 6, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2, 2, 1, 0])


def _grads(name: str, params: ObjectiveParams) -> tuple[torch.Tensor, list[torch.Tensor], dict]:
    model, (x, y) = _model(), _batch()
    torch.manual_seed(123)  # the PGD start
    model.zero_grad()
    out = OBJECTIVES[name](model, x, y, params)
    out.loss.backward()
    return out.loss.detach(), [p.grad.clone() for p in model.parameters()], out.logs


def test_original_reductions_follow_the_spec_table() -> None:
    assert {resolve_reduction("original", "mnist", o) for o in OBJECTIVES} == {"sum"}
    assert {resolve_reduction("original", "fashion-mnist", o) for o in OBJECTIVES} == {"sum"}
    for dataset in ("gtsrb", "flower17"):
        assert [resolve_reduction("original", dataset, o) for o in ("nat", "adv", "ar", "adv_ar")] == [
            "mean", "mean", "sum", "sum"]
    assert resolve_reduction("mean", "mnist", "ar") == "mean"


def test_weight_decay_covers_conv_and_fc_weights_only() -> None:
    model = _model()
    expected = 0.1 * 0.5 * sum(m.weight.square().sum() for m in model if isinstance(m, (nn.Conv2d, nn.Linear)))
    torch.testing.assert_close(weight_decay_term(model, ObjectiveParams(weight_decay=0.1)), expected)
    assert weight_decay_term(model, ObjectiveParams(weight_decay=0.0)) == 0.0


@pytest.mark.parametrize("name,keys", [
    ("nat", {"loss", "nat_acc", "nat_loss"}),
    ("adv", {"loss", "nat_acc", "nat_loss", "adv_acc", "adv_loss"}),
    ("ar", {"loss", "nat_acc", "nat_loss", "adv_acc", "adv_loss", "ig"}),
    ("adv_ar", {"loss", "nat_acc", "nat_loss", "adv_acc", "adv_loss", "ig"}),
])
def test_objectives_give_finite_losses_and_logs(name: str, keys: set[str]) -> None:
    loss, grads, logs = _grads(name, PARAMS)
    assert torch.isfinite(loss) and set(logs) == keys
    assert all(v.dim() == 0 and not v.requires_grad for v in logs.values())
    assert all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_sum_and_mean_reductions_and_weight_decay() -> None:
    total, _, _ = _grads("nat", PARAMS)
    mean, _, _ = _grads("nat", ObjectiveParams(reduction="mean"))
    torch.testing.assert_close(total, 6 * mean)
    decayed, _, _ = _grads("nat", ObjectiveParams(reduction="mean", weight_decay=0.1))
    torch.testing.assert_close(decayed - mean, weight_decay_term(_model(), ObjectiveParams(weight_decay=0.1)))


@pytest.mark.parametrize("name", ["ar", "adv_ar"])
def test_chunked_regulariser_gives_the_whole_batch_gradient(name: str) -> None:
    loss, grads, logs = _grads(name, PARAMS)
    chunked = ObjectiveParams(**{**PARAMS.__dict__, "chunk_size": 4, "pgd_chunk_size": 5})
    loss_c, grads_c, logs_c = _grads(name, chunked)
    torch.testing.assert_close(loss_c, loss)
    torch.testing.assert_close(logs_c["ig"], logs["ig"])
    for g, g_c in zip(grads, grads_c):
        torch.testing.assert_close(g_c, g)


def test_ig_norm_penalises_the_ig_term_and_ig_sum_norm_has_no_clean_term() -> None:
    no_reg = ObjectiveParams(**{**PARAMS.__dict__, "lam": 0.0})
    _, _, ar_logs = _grads("ar", PARAMS)
    ar_loss0, _, ar_logs0 = _grads("ar", no_reg)
    torch.testing.assert_close(ar_loss0, ar_logs0["nat_loss"] * 6)  # Σ CE(x) only
    assert ar_logs["ig"] > 0
    adv_ar_loss0, _, adv_ar_logs0 = _grads("adv_ar", no_reg)
    torch.testing.assert_close(adv_ar_loss0, adv_ar_logs0["adv_loss"] * 6)  # Σ CE(x') only


def test_unknown_objective() -> None:
    expected = (r"training_objective='ars'.*did you mean 'ar'.*choose from nat \(NATURAL\), adv \(Madry\), "
                r"ar \(IG-NORM\), adv_ar \(IG-SUM-NORM\)")
    with pytest.raises(UserInputError, match=expected):
        get_objective("ars")
