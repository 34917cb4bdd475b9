"""input × gradient, SmoothGrad and IG from a non-zero baseline: against Captum, and differentiable."""

from __future__ import annotations

import pytest
import torch

from robustattr import models
from robustattr.attribution import SaliencyMethod, input_x_gradient, saliency_map, smoothgrad
from robustattr.attribution.saliency import smoothgrad_noise
from robustattr.errors import UserInputError

def _captum():
    """captum.attr (the dev extra); the tests that compare with it skip without it."""
    return pytest.importorskip("captum.attr")


PAPER_MODELS = {"mnist_cnn": ((1, 28, 28), 1.0), "gtsrb_resnet": ((3, 32, 32), 255.0)}


def _setup(name: str, batch: int = 3):
    torch.manual_seed(0)
    shape, scale = PAPER_MODELS[name]
    model = models.create(name).double().eval()
    x = torch.rand(batch, *shape, dtype=torch.float64) * scale
    target = torch.randint(0, 10, (batch,))
    return model, x, target, scale


@pytest.mark.parametrize("name", list(PAPER_MODELS))
def test_input_x_gradient_matches_captum(name):
    model, x, target, _ = _setup(name)
    theirs = _captum().InputXGradient(model).attribute(x, target=target)
    torch.testing.assert_close(input_x_gradient(model, x, target), theirs, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(SaliencyMethod("input_x_gradient").map(model, x, target), saliency_map(theirs))


@pytest.mark.parametrize("name", list(PAPER_MODELS))
def test_smoothgrad_is_the_mean_of_captum_gradients_at_the_seeded_points(name):
    model, x, target, scale = _setup(name)
    samples, sigma = 6, 0.1 * scale
    noise = smoothgrad_noise((samples, *x.shape[1:]), sigma, seed=7, dtype=x.dtype, device=x.device)
    saliency = _captum().Saliency(model)
    theirs = torch.stack([saliency.attribute(x + noise[i], target=target, abs=False) for i in range(samples)]).mean(0)
    ours = smoothgrad(model, x, target, samples=samples, sigma=sigma, seed=7, chunk_size=2)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    # Seeded: the same seed gives the same map, another seed another one; batching changes nothing.
    torch.testing.assert_close(smoothgrad(model, x[1:2], target[1:2], samples=samples, sigma=sigma, seed=7), ours[1:2])
    assert not torch.allclose(smoothgrad(model, x, target, samples=samples, sigma=sigma, seed=8), ours)


@pytest.mark.parametrize("name", list(PAPER_MODELS))
def test_ig_from_a_constant_baseline_matches_captum(name):
    model, x, target, scale = _setup(name)
    method = SaliencyMethod("ig", n_steps=16, baseline=0.5 * scale)  # k/16: exact in the float32 alphas Captum uses
    theirs = _captum().IntegratedGradients(model).attribute(x, torch.full_like(x, 0.5 * scale), target=target, n_steps=16,
                                                  method="riemann_right")
    torch.testing.assert_close(method.attributions(model, x, target, chunk_size=2), theirs, rtol=1e-9, atol=1e-9)
    zero = SaliencyMethod("ig", n_steps=16).attributions(model, x, target)
    assert not torch.allclose(zero, theirs)


@pytest.mark.parametrize("kind", ["input_x_gradient", "smoothgrad", "ig"])
def test_maps_are_differentiable_for_the_attack(kind):
    """The input derivative of a map-based objective equals finite differences (smooth model, float64)."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5), torch.nn.Softplus(),
                                torch.nn.Linear(5, 3)).double()
    method = SaliencyMethod(kind, n_steps=4, baseline=0.3, samples=3, sigma=0.2, seed=1)
    x = torch.rand(2, 1, 3, 4, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 2])
    weights = torch.rand(2, 3, 4, dtype=torch.float64)

    def objective(inp):
        return (method.map(model, inp, target, create_graph=True) * weights).sum()

    (grad,) = torch.autograd.grad(objective(x), x)
    direction = torch.randn_like(x)
    eps = 1e-6
    numeric = (objective(x + eps * direction) - objective(x - eps * direction)) / (2 * eps)
    assert (grad * direction).sum().item() == pytest.approx(numeric.item(), rel=1e-5, abs=1e-8)
    assert grad.abs().sum() > 0


def test_unknown_kind_is_a_user_input_error():
    with pytest.raises(UserInputError, match=r"saliency_type='smooth_grad'.*input_x_gradient, smoothgrad.*did you mean"):
        SaliencyMethod("smooth_grad")


@pytest.mark.parametrize("saliency", ["input_x_gradient", "smoothgrad",
                                      SaliencyMethod("ig", n_steps=4, baseline=0.5),
                                      SaliencyMethod("smoothgrad", samples=3, sigma=0.05, seed=2)])
def test_the_attack_ascends_every_method(saliency):
    from robustattr.attacks import attribution_attack

    torch.manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 8 * 8, 3)).double()
    x = torch.rand(4, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    r = attribution_attack(model, x, y, method="topK", epsilon=0.1, step_size=0.04, steps=3, k_top=10,
                           saliency=saliency, n_steps=4)
    assert r.attacked.all() and r.found.any()
    assert (r.kendall[r.found] < 1).all() and (r.x_adv - x).abs().max() <= 0.1 + 1e-12
