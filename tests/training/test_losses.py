"""robustattr.losses in a hand-written loop gives the weights ``robustattr train`` gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robustattr import data, models
from robustattr.errors import UserInputError
from robustattr.losses import IGNorm, IGSumNorm, Madry

SETTINGS = {"epsilon": 0.2, "num_steps": 2, "step_size": 0.05, "m": 4, "approx_factor": 2, "lambda": 0.5}
OBJECTIVES = {"ar": (IGNorm, "ar_approx"), "adv_ar": (IGSumNorm, "adv_ar_approx"), "adv": (Madry, "xent")}
STEPS, BATCH, LR = 2, 10, 1e-3


def _criterion(objective: str):
    cls, _ = OBJECTIVES[objective]
    common = dict(epsilon=SETTINGS["epsilon"], pgd_steps=SETTINGS["num_steps"], step_size=SETTINGS["step_size"],
                  bounds=(0.0, 1.0))
    if cls is Madry:
        return cls(**common)
    return cls(**common, lam=SETTINGS["lambda"], m=SETTINGS["m"], approx_factor=SETTINGS["approx_factor"])


@pytest.mark.slow
@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_hand_loop_with_the_loss_equals_the_trainer(objective, mnist_root, tmp_path):
    from robustattr.checkpoints import load_run_model
    from robustattr.config import load_config, load_run_or_config
    from robustattr.training import order_for_dataset, train

    cfg = load_config(None, base={
        "dataset": "mnist", "training_objective": objective, "loss_func": OBJECTIVES[objective][1],
        "data_root": str(mnist_root), "model_dir": str(tmp_path / "run"), "device": "cpu",
        "max_num_training_steps": STEPS, "num_checkpoint_steps": STEPS, "training_batch_size": BATCH,
        "optimizer": "momentum", "step_size_schedule": [[0, LR]], **SETTINGS,
    })
    train(cfg, progress=False)
    trained, _ = load_run_model(load_run_or_config(tmp_path / "run"), device="cpu")

    # The same run by hand: seed, model, momentum SGD (TF's), the original's batch order, the loss.
    # (Momentum, not Adam: Adam's first steps are ±lr whatever the gradient's size.)
    split = data.load("mnist", "train", root=mnist_root)
    torch.manual_seed(cfg.random_seed)
    np.random.seed(cfg.np_random_seed)
    model = models.create("mnist_cnn")
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    order = order_for_dataset("mnist", len(split), BATCH, cfg.np_random_seed)
    criterion = _criterion(objective)
    model.train()
    for _ in range(STEPS):
        x, y = split.batch(order.next())
        optimizer.zero_grad()
        loss = criterion(model, x, y)
        loss.backward()
        optimizer.step()
    for (name, got), (_, want) in zip(model.state_dict().items(), trained.state_dict().items()):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7, msg=name)
    assert not torch.equal(model.fc2.weight, models.create("mnist_cnn").fc2.weight)


class UserNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                  nn.Linear(24, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_ig_norm_on_a_user_model_trains_the_regulariser():
    torch.manual_seed(0)
    model = UserNet()
    x, y = torch.rand(6, 3, 8, 8) * 255, torch.randint(0, 4, (6,))
    kw = dict(epsilon=8.0, pgd_steps=2, step_size=4.0, bounds=(0.0, 255.0), m=5)
    with_reg = IGNorm(lam=1.0, **kw).terms(model, x, y)
    torch.manual_seed(1)
    assert set(with_reg.logs) >= {"nat_acc", "adv_acc", "ig"} and with_reg.logs["ig"] > 0
    grads = torch.autograd.grad(with_reg.loss, list(model.parameters()))
    torch.manual_seed(1)
    plain = IGNorm(lam=0.0, **kw)(model, x, y)
    plain_grads = torch.autograd.grad(plain, list(model.parameters()))
    assert any(not torch.allclose(a, b) for a, b in zip(grads, plain_grads))  # the IG term has a gradient
    assert model.training is True and all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("kwargs,match", [
    ({"reduction": "avg"}, r"reduction='avg'.*sum, mean"),
    ({"epsilon": 0.0}, r"epsilon=0\.0 must be > 0"),
    ({"approx_factor": 9, "m": 4}, r"approx_factor=9 must lie in 1\.\.m"),
])
def test_bad_settings_are_user_input_errors(kwargs, match):
    base = dict(epsilon=0.1, pgd_steps=1, step_size=0.01)
    with pytest.raises(UserInputError, match=match):
        IGNorm(**{**base, **kwargs})


@pytest.mark.parametrize("cls,preset", [(IGNorm, "ig-norm"), (IGSumNorm, "ig-sum-norm"), (Madry, "madry")])
def test_constructor_defaults_are_the_mnist_presets(cls, preset):
    """design.md: every loss class argument defaults to its MNIST preset value."""
    from pathlib import Path

    from robustattr.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "mnist" / f"{preset}.json")
    criterion = cls()
    assert (criterion.epsilon, criterion.pgd_steps, criterion.step_size) == (cfg.epsilon, cfg.num_steps, cfg.step_size)
    if cls is not Madry:
        assert (criterion.lam, criterion.m, criterion.approx_factor) == (cfg.lambda_, cfg.m, cfg.approx_factor)
