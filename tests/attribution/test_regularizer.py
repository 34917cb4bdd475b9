"""The IG-of-loss regulariser (spec §3.1) against an explicit loop and finite differences."""

import pytest
import torch
import torch.nn.functional as F

from robustattr.attribution import clipped_cross_entropy, ig_regularizer, loss_integrated_gradients


def tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(3 * 16, 4)
    ).double()


def explicit_loop(model, x, x_adv, y, m, a):
    """One path point at a time, one example at a time, exactly as written in the spec."""
    rows = []
    for i in range(x.shape[0]):
        grads = []
        for k in range(a, m + 1, a):
            z = (x[i : i + 1] + (k / m) * (x_adv[i : i + 1] - x[i : i + 1])).requires_grad_(True)
            prob = F.softmax(model(z), dim=1)[0, y[i]]
            loss = -torch.log(torch.clamp(prob, 1e-10, 1.0))
            grads.append(torch.autograd.grad(loss, z)[0])
        rows.append((x_adv[i : i + 1] - x[i : i + 1]) * torch.stack(grads).mean(0))
    return torch.cat(rows)


@pytest.mark.parametrize("m,a", [(10, 1), (10, 5), (7, 3)])
def test_equals_explicit_loop(m, a):
    model = tiny_model()
    x = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    x_adv = (x + 0.3 * (torch.rand_like(x) * 2 - 1)).clamp(0, 1)
    y = torch.tensor([0, 3, 1])
    ours = loss_integrated_gradients(model, x, x_adv, y, n_steps=m, approx_factor=a)
    torch.testing.assert_close(ours, explicit_loop(model, x, x_adv, y, m, a))
    torch.testing.assert_close(ig_regularizer(model, x, x_adv, y, m, a), ours.abs().sum())
    torch.testing.assert_close(loss_integrated_gradients(model, x, x_adv, y, m, a, chunk_size=1), ours)


def test_parameter_gradient_matches_finite_differences():
    model = tiny_model()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    x_adv = (x + 0.2 * (torch.rand_like(x) * 2 - 1)).clamp(0, 1)
    y = torch.tensor([2, 0])
    params = list(model.parameters())
    value = ig_regularizer(model, x, x_adv, y, n_steps=6, create_graph=True)
    grads = torch.autograd.grad(value, params)
    directions = [torch.randn_like(p) for p in params]
    analytic = sum((g * d).sum() for g, d in zip(grads, directions))
    eps = 1e-6

    def at(sign):
        with torch.no_grad():
            for p, d in zip(params, directions):
                p.add_(sign * eps * d)
        out = ig_regularizer(model, x, x_adv, y, n_steps=6).detach()
        with torch.no_grad():
            for p, d in zip(params, directions):
                p.sub_(sign * eps * d)
        return out

    numeric = (at(1) - at(-1)) / (2 * eps)
    torch.testing.assert_close(analytic.detach(), numeric, rtol=1e-4, atol=1e-8)


def test_input_gradient_flows_through_path_points():
    model = tiny_model()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    x_adv = (x + 0.1).clamp(0, 1).requires_grad_(True)
    y = torch.tensor([1, 2])
    value = ig_regularizer(model, x, x_adv, y, n_steps=5, create_graph=True)
    (grad,) = torch.autograd.grad(value, x_adv)
    direction = torch.randn_like(x)
    eps = 1e-6
    numeric = (
        ig_regularizer(model, x, x_adv.detach() + eps * direction, y, n_steps=5)
        - ig_regularizer(model, x, x_adv.detach() - eps * direction, y, n_steps=5)
    ) / (2 * eps)
    torch.testing.assert_close((grad * direction).sum(), numeric, rtol=1e-4, atol=1e-8)


def test_clipped_cross_entropy_clips_like_the_original():
    logits = torch.tensor([[0.0, 0.0], [100.0, -100.0]], dtype=torch.float64, requires_grad=True)
    loss = clipped_cross_entropy(logits, torch.tensor([0, 1]))
    torch.testing.assert_close(loss[0], torch.log(torch.tensor(2.0, dtype=torch.float64)))
    torch.testing.assert_close(loss[1], -torch.log(torch.tensor(1e-10, dtype=torch.float64)))
    loss[1].backward()
    assert torch.all(logits.grad[1] == 0)  # probability clipped: no gradient, unlike stable CE
