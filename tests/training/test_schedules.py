"""Learning-rate schedule boundaries (TF piecewise_constant) and the optimizers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from robustattr.errors import UserInputError
from robustattr.training import PiecewiseConstant, build_optimizer, learning_rate_at


def test_piecewise_boundaries_belong_to_the_earlier_piece() -> None:
    lr = PiecewiseConstant([[0, 0.001], [500, 0.01], [60000, 0.002]])
    assert [lr(s) for s in (0, 499, 500)] == [0.001] * 3
    assert [lr(s) for s in (501, 60000)] == [0.01] * 2
    assert lr(60001) == lr(70000) == 0.002


def test_optimizers() -> None:
    model = torch.nn.Linear(2, 2)
    adam = build_optimizer(SimpleNamespace(optimizer="adam", learning_rate=1e-4), model.parameters())
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 1e-4 and adam.defaults["eps"] == 1e-8
    cfg = SimpleNamespace(optimizer="momentum", momentum=0.9, step_size_schedule=[[0, 0.1], [5, 0.2]])
    sgd = build_optimizer(cfg, model.parameters())
    assert isinstance(sgd, torch.optim.SGD)
    assert (sgd.defaults["momentum"], sgd.defaults["dampening"], sgd.defaults["nesterov"],
            sgd.defaults["weight_decay"]) == (0.9, 0.0, False, 0.0)
    assert learning_rate_at(cfg, 5) == 0.1 and learning_rate_at(cfg, 6) == 0.2
    with pytest.raises(UserInputError, match="step_size_schedule steps must increase"):
        PiecewiseConstant([[0, 0.1], [50, 0.2], [10, 0.3]])


def test_epsilon_ramp_grows_linearly_to_epsilon_and_is_off_by_default() -> None:
    from robustattr.training import epsilon_at

    ramp = SimpleNamespace(epsilon=0.3, epsilon_ramp_steps=4)
    assert [round(epsilon_at(ramp, s), 6) for s in range(6)] == [0.075, 0.15, 0.225, 0.3, 0.3, 0.3]
    assert epsilon_at(SimpleNamespace(epsilon=0.3, epsilon_ramp_steps=0), 0) == 0.3


def test_adam_learning_rate_schedule_replaces_the_constant_rate_when_set() -> None:
    constant = SimpleNamespace(optimizer="adam", learning_rate=1e-3, learning_rate_schedule=None)
    assert [learning_rate_at(constant, s) for s in (0, 10_000)] == [1e-3, 1e-3]
    decayed = SimpleNamespace(optimizer="adam", learning_rate=1e-3, learning_rate_schedule=[[0, 1e-3], [3000, 1e-4]])
    assert [learning_rate_at(decayed, s) for s in (0, 3000, 3001)] == [1e-3, 1e-3, 1e-4]
