"""The swap-in-place softplus surrogate for models built from nn.ReLU / nn.LeakyReLU modules."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustattr import models
from robustattr.attacks import attribution_attack
from robustattr.attribution import SoftplusActivation, softplus_surrogate
from robustattr.errors import UserInputError


class ModuleCNN(nn.Module):
    """Madry's MNIST CNN written the way users write models: activations are nn.ReLU modules."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(7 * 7 * 64, 1024)
        self.fc2 = nn.Linear(1024, 10)
        self.act = nn.ReLU()  # one module, used three times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(F.max_pool2d(self.conv1(x), 2))
        h = self.act(F.max_pool2d(self.conv2(h), 2))
        h = h.permute(0, 2, 3, 1).flatten(1)  # MadryCNN's TF (h, w, c) order
        return self.fc2(self.act(self.fc1(h)))


class Mixed(nn.Module):
    """A different layout: Sequential with a leaky ReLU, a nested block and an inplace ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2),
                                      nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(inplace=True)))
        self.head = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def _mixed_by_hand(model: Mixed, x: torch.Tensor) -> torch.Tensor:
    conv_a, conv_b = model.features[0], model.features[2][0]
    h = conv_a(x)
    h = 0.2 * h + 0.8 * F.softplus(h)
    h = F.softplus(conv_b(h))
    return model.head(h.flatten(1))


def test_swapped_cnn_equals_the_builtin_switch_with_the_same_weights():
    torch.manual_seed(0)
    builtin = models.create("mnist_cnn").double()
    user = ModuleCNN().double()
    user.load_state_dict(builtin.state_dict())
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    with softplus_surrogate(user) as same:
        assert same is user
        torch.testing.assert_close(user(x), builtin(x, softplus=True), rtol=0, atol=1e-12)
    torch.testing.assert_close(user(x), builtin(x), rtol=0, atol=1e-12)
    assert not torch.equal(builtin(x), builtin(x, softplus=True))


def test_swap_restores_modules_and_shares_parameters():
    torch.manual_seed(1)
    model = Mixed().double()
    before = {name: m for name, m in model.named_modules()}
    params = {name: p.data_ptr() for name, p in model.named_parameters()}
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    with softplus_surrogate(model):
        assert isinstance(model.features[1], SoftplusActivation) and model.features[1].negative_slope == 0.2
        assert isinstance(model.features[2][1], SoftplusActivation)
        assert {n: p.data_ptr() for n, p in model.named_parameters()} == params
        torch.testing.assert_close(model(x), _mixed_by_hand(model, x), rtol=0, atol=1e-12)
    assert {name: m for name, m in model.named_modules()} == before


def test_swap_is_undone_when_the_body_raises():
    model = Mixed()
    relu = model.features[2][1]
    with pytest.raises(RuntimeError, match="boom"):
        with softplus_surrogate(model):
            raise RuntimeError("boom")
    assert model.features[2][1] is relu


def test_graph_built_inside_keeps_the_surrogate_derivative():
    torch.manual_seed(2)
    model = Mixed().double()
    x = torch.randn(1, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    with softplus_surrogate(model):
        out = model(x)[0, 0]
        (g,) = torch.autograd.grad(out, x, create_graph=True)
    (gg,) = torch.autograd.grad(g.square().sum(), x)  # second derivative, after the exit
    xr = x.detach().requires_grad_(True)
    (gr,) = torch.autograd.grad(_mixed_by_hand(model, xr)[0, 0], xr, create_graph=True)
    (ggr,) = torch.autograd.grad(gr.square().sum(), xr)
    torch.testing.assert_close(gg, ggr, rtol=1e-10, atol=1e-12)
    assert gg.abs().sum() > 0


class Smooth(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(2 * 8 * 8, 6), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x.flatten(1))))


def test_nothing_to_swap_is_one_clear_error():
    with pytest.raises(UserInputError, match=r"Smooth has no nn\.ReLU or nn\.LeakyReLU module.*surrogate='none'"):
        with softplus_surrogate(Smooth()):
            pass


class TinyModules(nn.Module):
    """The attack tests' Tiny model with an nn.ReLU module instead of a softplus switch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)
        self.skip = nn.Linear(2 * 8 * 8, 3)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.max_pool2d(self.act(self.conv(x)), 2).flatten(1)) + self.skip(x.flatten(1))


class TinySwitch(TinyModules):
    def forward(self, x: torch.Tensor, *, softplus: bool = False) -> torch.Tensor:
        act = F.softplus if softplus else F.relu
        return self.fc(F.max_pool2d(act(self.conv(x)), 2).flatten(1)) + self.skip(x.flatten(1))


ATTACK = dict(epsilon=0.1, step_size=0.04, steps=4, k_top=10, eval_k_top=8, n_steps=6)


@pytest.mark.parametrize("method", ["topK", "mass_center"])
def test_attack_on_a_module_model_equals_the_switch_model(method):
    torch.manual_seed(3)
    switch = TinySwitch().double()
    plain = TinyModules().double()
    plain.load_state_dict(switch.state_dict())
    x = torch.rand(4, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        y = switch(x).argmax(1)
    a = attribution_attack(switch, x, y, method=method, **ATTACK)
    b = attribution_attack(plain, x, y, method=method, **ATTACK)
    assert a.found.any()
    torch.testing.assert_close(b.x_adv, a.x_adv, rtol=0, atol=1e-12)
    torch.testing.assert_close(b.kendall, a.kendall, rtol=0, atol=1e-12)
    assert isinstance(plain.act, nn.ReLU)  # restored after the attack


def test_attack_refuses_a_model_without_activations_unless_asked():
    torch.manual_seed(4)
    model = Smooth().double()
    x = torch.rand(3, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    with pytest.raises(UserInputError, match="no nn.ReLU or nn.LeakyReLU module"):
        attribution_attack(model, x, y, method="topK", **ATTACK)
    r = attribution_attack(model, x, y, method="topK", surrogate="none", **ATTACK)
    assert r.attacked.all() and r.found.any()  # GELU is smooth: its own gradients move the map
    assert (r.x_adv - x).abs().max() <= 0.1 + 1e-12
    with pytest.raises(UserInputError, match=r"attribution_attack_surrogate='relu'.*softplus, none"):
        attribution_attack(model, x, y, method="topK", surrogate="relu", **ATTACK)
