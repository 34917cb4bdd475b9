"""robustattr.losses' TRADES, IGR, LGA, SSR and ART in a user's own loop, and their regularisers.

A model written here (nn.ReLU modules, no softplus switch: the surrogate terms swap its ReLUs)
trains in a plain PyTorch loop on real MNIST; ``regularizer`` gives (B,) in float32 and float64
with a path to the parameters; a regulariser cut from the graph would fail these tests.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustattr import data
from robustattr.errors import UserInputError
from robustattr.losses import ART, IGR, LGA, SSR, TRADES


class UserNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(6, 12, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                  nn.Linear(12 * 7 * 7, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


CHEAP = {  # the MNIST presets with a CPU-sized inner attack
    "TRADES": lambda **kw: TRADES(pgd_steps=3, step_size=0.1, **kw),
    "IGR": lambda **kw: IGR(pgd_steps=3, step_size=0.1, m=4, **kw),
    "IGR-madry": lambda **kw: IGR(pgd_steps=3, step_size=0.1, m=4, base="madry", **kw),
    "LGA": lambda **kw: LGA(**kw),
    "LGA-hessian": lambda **kw: LGA(variant="hessian", **kw),
    "SSR": lambda **kw: SSR(**kw),
    "ART": lambda **kw: ART(pgd_steps=2, top_k=100, **kw),
}
#: the weight that switches each regulariser off
OFF = {"TRADES": {"beta": 0.0}, "IGR": {"lam": 0.0}, "IGR-madry": {"lam": 0.0}, "LGA": {"lam_l2": 0.0, "lam_cos": 0.0},
       "LGA-hessian": {"lam_hessian": 0.0}, "SSR": {"scale": 0.0}, "ART": {"gamma": 0.0}}


@pytest.fixture(scope="module")
def mnist(mnist_root):
    return data.load("mnist", "train", root=mnist_root)


def test_defaults_are_the_mnist_presets():
    import json
    from pathlib import Path

    configs = Path(__file__).resolve().parents[2] / "configs" / "mnist"
    def preset(slug):
        return json.loads((configs / f"{slug}.json").read_text())

    t, i, g, s, a = preset("trades"), preset("igr"), preset("lga"), preset("ssr"), preset("art")
    assert (TRADES().beta, TRADES().start_std, TRADES().epsilon, TRADES().pgd_steps, TRADES().step_size) == (
        t["beta"], t["trades_start_std"], t["epsilon"], t["num_steps"], t["step_size"])
    assert (IGR().lam, IGR().m, IGR().base, IGR().beta, IGR().pgd_steps) == (
        i["lambda"], i["m"], i["igr_base"], i["beta"], i["num_steps"])
    assert (LGA().variant, LGA().lam_l2, LGA().lam_cos, LGA().lam_hessian, LGA().epsilon) == (
        g["lga_variant"], g["lam_l2"], g["lam_cos"], g["lam_hessian"], g["epsilon"])
    assert (SSR().alpha, SSR().scale) == (s["ssr_alpha"], s["ssr_scale"])
    assert (ART().gamma, ART().top_k, ART().pgd_steps, ART().step_size, ART().epsilon) == (
        a["gamma"], a["art_top_k"], a["art_steps"], a["art_step_size"], a["epsilon"])


@pytest.mark.parametrize("name", list(CHEAP))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_regularizer_is_per_example_with_a_path_to_the_parameters(name, dtype, mnist):
    torch.manual_seed(0)
    model = UserNet().to(dtype)
    x, y = mnist.batch(slice(0, 5))
    x = x.to(dtype)
    torch.manual_seed(1)
    x_adv = (x + torch.empty_like(x).uniform_(-0.3, 0.3)).clamp(0, 1)
    reg = CHEAP[name]().regularizer(model, x, x_adv, y)
    assert reg.shape == (5,) and reg.dtype == dtype and torch.isfinite(reg).all() and (reg >= 0).all()
    grads = torch.autograd.grad(reg.sum(), list(model.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads), "the regulariser does not reach the parameters"
    alone = CHEAP[name](**OFF[name]).regularizer(model, x, x_adv, y)
    assert torch.equal(alone, torch.zeros_like(alone))


@pytest.mark.parametrize("name", list(CHEAP))
def test_the_regularizer_changes_the_parameter_gradient(name, mnist):
    """The loss with its weight on and off, same draws: the gradients differ (a detached term, or
    IGR's IG(x′) without its second-order graph, would leave them equal)."""
    torch.manual_seed(0)
    model = UserNet().double()
    x, y = mnist.batch(slice(5, 10))
    x = x.double()
    grads = []
    for kwargs in ({}, OFF[name]):
        torch.manual_seed(7)
        grads.append(torch.autograd.grad(CHEAP[name](**kwargs)(model, x, y), list(model.parameters())))
    assert max((a - b).abs().max() for a, b in zip(*grads)) > 1e-6


def test_igr_chunked_equals_whole(mnist):
    torch.manual_seed(0)
    model = UserNet().double()
    x, y = mnist.batch(slice(10, 15))
    x = x.double()
    results = []
    for chunk in (None, 2):
        model.zero_grad()
        torch.manual_seed(3)
        loss = IGR(pgd_steps=2, step_size=0.1, m=3, chunk_size=chunk)(model, x, y)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-10, atol=0)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHEAP))
def test_trains_a_users_model_in_a_plain_loop(name, mnist):
    torch.manual_seed(0)
    model = UserNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    criterion = CHEAP[name]()
    x, y = mnist.batch(slice(0, 32))
    losses = []
    for _ in range(12):
        model.train()
        optimizer.zero_grad()
        loss = criterion(model, x, y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) < sum(losses[:3]), losses
    terms = criterion.terms(model, x, y).logs
    assert {"loss", "nat_acc", "nat_loss", "reg"} <= terms.keys()
    assert model.training and all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("make,match", [
    (lambda: TRADES(beta=-1.0), r"beta=-1\.0 must be >= 0"),
    (lambda: IGR(m=0), r"m=0 must be an integer >= 1"),
    (lambda: IGR(lam=-0.1), r"lam=-0\.1 must be >= 0"),
    (lambda: IGR(base="pgd"), r"base='pgd' must be one of trades, madry"),
    (lambda: LGA(variant="hess"), r"variant='hess' must be one of gradient, hessian"),
    (lambda: LGA(lam_l2=-1), r"lam_l2=-1 must be >= 0"),
    (lambda: SSR(alpha=1.5), r"alpha=1\.5 must be in \[0, 1\]"),
    (lambda: ART(top_k=0), r"top_k=0 must be >= 1"),
    (lambda: ART(reduction="avg"), r"reduction='avg'"),
    (lambda: TRADES(epsilon=0), r"epsilon=0 must be > 0"),
])
def test_bad_arguments_are_user_input_errors(make, match):
    with pytest.raises(UserInputError, match=match):
        make()


def test_igr_second_order_term_is_what_moves_the_parameters(mnist):
    """IGR's only path to the parameters is IG(x′)'s graph: the gradient of its regulariser equals
    the gradient through IG(x′)'s path gradients, and without that graph (the public replication's
    IG(x′)) the same value has none."""
    from robustattr.attribution import integrated_gradients

    torch.manual_seed(0)
    model = UserNet().double()
    x, y = mnist.batch(slice(20, 24))
    x = x.double()
    torch.manual_seed(2)
    x_adv = (x + torch.empty_like(x).uniform_(-0.3, 0.3)).clamp(0, 1)
    reg = IGR(m=4).regularizer(model, x, x_adv, y)
    params = list(model.parameters())
    grads = torch.autograd.grad(reg.sum(), params, allow_unused=True)  # the last bias is not in ∇ₓ f
    assert sum(g.abs().sum() for g in grads if g is not None) > 0

    def flat(ig):
        return ig.flatten(1)

    clean = flat(integrated_gradients(model, x, y, n_steps=4)).detach()
    moved = flat(integrated_gradients(model, x_adv, y, n_steps=4, create_graph=True))
    by_hand = 1 - (clean * moved).sum(1) / (clean.norm(dim=1) * moved.norm(dim=1))
    torch.testing.assert_close(reg, by_hand)
    for a, b in zip(grads, torch.autograd.grad(by_hand.sum(), params, allow_unused=True)):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)
    no_graph = flat(integrated_gradients(model, x_adv, y, n_steps=4, create_graph=False))
    replica = 1 - (clean * no_graph).sum(1) / (clean.norm(dim=1) * no_graph.norm(dim=1))
    torch.testing.assert_close(replica, reg.detach())
    assert not replica.requires_grad  # the replication's term: the same number, no gradient at all
