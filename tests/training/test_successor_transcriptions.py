"""TRADES, IGR, LGA, SSR and ART against one-example-at-a-time transcriptions of their formulas.

Each transcription below is written from the formula alone (docs/objectives.md): plain autograd,
one example at a time, nothing imported from robustattr but the data. It draws the step's random
numbers as the objectives promise to (one U(−ε, ε) tensor shaped like the batch from the global
RNG; a Gaussian from it by the inverse CDF), runs its own inner attack, and builds the loss; the
library's loss *and* its parameter gradient must agree to 1e-5 relative, in float64, on real MNIST.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustattr import data
from robustattr.losses import ART, IGR, LGA, SSR, TRADES

SEED, EPS, BATCH = 123, 0.3, 3


class Small(nn.Module):
    """A small CNN with a softplus switch (the surrogate the ART and Hessian terms differentiate)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 4, 5, padding=2), nn.Conv2d(4, 8, 5, padding=2)
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x, softplus=False):
        act = F.softplus if softplus else F.relu
        h = F.max_pool2d(act(self.conv1(x)), 2)
        h = F.max_pool2d(act(self.conv2(h)), 2)
        return self.fc(h.flatten(1))


@pytest.fixture(scope="module")
def batch(mnist_root):
    x, y = data.load("mnist", "train", root=mnist_root).batch(slice(100, 100 + BATCH))
    return x.double(), y


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return Small().double()


# --- the transcription's pieces (one example: x of shape (1, 1, 28, 28)) ---------------------------
def grad_of(value, wrt, graph=False):
    return torch.autograd.grad(value, wrt, create_graph=graph)[0]


def logit_grad(model, x, c, graph, softplus=False):
    leaf = x.detach().requires_grad_(True)
    return grad_of(model(leaf, softplus=softplus)[0, c], leaf, graph), leaf


def cos(a, b):
    a, b = a.flatten(), b.flatten()
    return (a @ b) / (a.norm() * b.norm())


def ce(model, x, c):
    return -torch.log_softmax(model(x)[0], 0)[c]


def kl(p_logits, q_logits):
    logp, logq = torch.log_softmax(p_logits[0], 0), torch.log_softmax(q_logits[0], 0)
    return (logp.exp() * (logp - logq)).sum()


def project(z, x, eps):
    return torch.clamp(torch.min(torch.max(z, x - eps), x + eps), 0.0, 1.0)


def draw(shape):
    torch.manual_seed(SEED)
    return torch.empty(shape, dtype=torch.float64).uniform_(-EPS, EPS)


def gauss(u):
    tiny = torch.finfo(u.dtype).eps
    return math.sqrt(2.0) * torch.erfinv((u / EPS).clamp(-1 + tiny, 1 - tiny))


def kl_pgd(model, x, start, steps, size):
    p = model(x).detach()
    z = start
    for _ in range(steps):
        leaf = z.detach().requires_grad_(True)
        z = project(z + size * grad_of(kl(p, model(leaf)), leaf).sign(), x, EPS)
    return project(z, x, EPS).detach()


def ce_pgd(model, x, y, start, steps, size):
    z = start
    for _ in range(steps):
        leaf = z.detach().requires_grad_(True)
        z = project(z + size * grad_of(ce(model, leaf, y), leaf).sign(), x, EPS)
    return project(z, x, EPS).detach()


def ig(model, z, c, m, graph):
    total = 0
    for k in range(1, m + 1):
        total = total + logit_grad(model, (k / m) * z, c, graph)[0]
    return z * total / m


def align(model, x, c, graph=True):
    g, leaf = logit_grad(model, x, c, True, softplus=True)
    return 1 - cos(leaf, g), leaf


def art_attack(model, x, y, start, steps, size, k):
    z = start
    for _ in range(steps):
        d, leaf = align(model, z, y)
        g = grad_of(d, leaf).flatten()
        mask = torch.zeros_like(g)
        mask[g.abs().topk(k).indices] = 1.0
        z = project(z + size * (g.sign() * mask).view_as(z), x, EPS)
    return project(z, x, EPS).detach()


# --- per-example losses ---------------------------------------------------------------------------
def trades_example(model, x, y, u, beta=1.0, std=0.001, steps=3, size=0.1):
    x_adv = kl_pgd(model, x, x + std * gauss(u), steps, size)
    return ce(model, x, y) + beta * kl(model(x), model(x_adv))


def igr_example(model, x, y, u, base, lam=1.0, m=4, beta=1.0, std=0.001, steps=3, size=0.1):
    if base == "trades":
        x_adv = kl_pgd(model, x, x + std * gauss(u), steps, size)
        loss = ce(model, x, y) + beta * kl(model(x), model(x_adv))
    else:
        x_adv = ce_pgd(model, x, y, x + u, steps, size)
        loss = ce(model, x_adv, y)
    return loss + lam * (1 - cos(ig(model, x, y, m, False).detach(), ig(model, x_adv, y, m, True)))


def lga_example(model, x, y, u, variant, lam_l2=0.1, lam_cos=1.0, lam_h=1.0, detach=True):
    if variant == "hessian":
        v = gauss(u)
        g, leaf = logit_grad(model, x, y, True, softplus=True)
        hv = grad_of((g * v).sum(), leaf, True)
        return ce(model, x, y) + lam_h * hv.square().sum()
    g0 = logit_grad(model, x, y, False)[0].detach() if detach else logit_grad(model, x, y, True)[0]
    g1 = logit_grad(model, torch.clamp(x + u, 0, 1), y, True)[0]
    return ce(model, x, y) + lam_l2 * (g0 - g1).square().sum() + lam_cos * (1 - cos(g0, g1)) / 2


def ssr_example(model, x, y, u, alpha=0.3, scale=1.0):
    leaf = x.detach().requires_grad_(True)
    logits = model(leaf)[0]
    w = torch.stack([grad_of(logits[c], leaf, True).flatten() for c in range(10)], dim=1)  # (d, C)
    p = torch.softmax(logits, 0)
    hessian = w @ (torch.diag(p) - torch.outer(p, p)) @ w.T  # (d, d), W A Wᵀ
    return (1 - alpha) * ce(model, x, y) + alpha * scale * torch.linalg.eigvalsh(hessian)[-1]


def art_example(model, x, y, u, gamma=1.0, k=50, steps=2, size=0.1):
    x_adv = art_attack(model, x, y, x + u, steps, size, k)
    others = model(x)[0].detach().clone()
    others[y] = -math.inf
    j = int(others.argmax())
    d_ap = torch.max(align(model, x, y)[0], align(model, x_adv, y)[0])
    d_an = torch.min(align(model, x, j)[0], align(model, x_adv, j)[0])
    return ce(model, x_adv, y) + gamma * F.softplus(d_ap - d_an)


CASES = {
    "trades": (lambda: TRADES(pgd_steps=3, step_size=0.1), lambda *a: trades_example(*a)),
    "igr-trades": (lambda: IGR(pgd_steps=3, step_size=0.1, m=4), lambda *a: igr_example(*a, "trades")),
    "igr-madry": (lambda: IGR(pgd_steps=3, step_size=0.1, m=4, base="madry"), lambda *a: igr_example(*a, "madry")),
    "lga": (lambda: LGA(), lambda *a: lga_example(*a, "gradient")),
    "lga-hessian": (lambda: LGA(variant="hessian"), lambda *a: lga_example(*a, "hessian")),
    "lga-both-differentiated": (lambda: LGA(detach_source=False), lambda *a: lga_example(*a, "gradient", detach=False)),
    "ssr": (lambda: SSR(), lambda *a: ssr_example(*a)),
    "art": (lambda: ART(pgd_steps=2, step_size=0.1, top_k=50), lambda *a: art_example(*a)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_loss_and_parameter_gradient_equal_the_transcription(case, model, batch):
    make, example = CASES[case]
    x, y = batch
    params = list(model.parameters())
    torch.manual_seed(SEED)
    loss = make()(model, x, y)
    got = torch.autograd.grad(loss, params)

    u = draw(x.shape)
    want_loss = sum(example(model, x[i:i + 1], int(y[i]), u[i:i + 1]) for i in range(len(y)))
    want = torch.autograd.grad(want_loss, params)
    torch.testing.assert_close(loss, want_loss, rtol=1e-5, atol=0)
    for name, a, b in zip([n for n, _ in model.named_parameters()], got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-9 * b.abs().max().item(), msg=f"{case} {name}")
