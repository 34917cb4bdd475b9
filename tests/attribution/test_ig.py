"""Integrated Gradients against Captum, completeness, chunking, differentiability."""

import pytest
import torch

from robustattr import models
from robustattr.attribution import gradient_saliency, ig_saliency, integrated_gradients, saliency_map, simple_gradient

SHAPES = {"mnist_cnn": ((1, 28, 28), 1.0), "gtsrb_resnet": ((3, 32, 32), 255.0), "flower_resnet": ((3, 128, 128), 255.0)}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SHAPES))
def test_matches_captum_riemann_right(name):
    torch.manual_seed(0)
    shape, scale = SHAPES[name]
    model = models.create(name).double()
    batch = 2 if name == "flower_resnet" else 4
    x = torch.rand(batch, *shape, dtype=torch.float64) * scale
    target = torch.randint(0, 10, (batch,))
    baseline = torch.rand_like(x) * scale * 0.1
    captum_attr = pytest.importorskip("captum.attr")  # the dev extra
    ours = integrated_gradients(model, x, target, baseline=baseline, n_steps=16)
    theirs = captum_attr.IntegratedGradients(model).attribute(x, baseline, target=target, n_steps=16, method="riemann_right")
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9)


@pytest.mark.slow
def test_completeness_with_many_steps():
    torch.manual_seed(1)
    model = models.create("mnist_cnn").double()
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    target = torch.tensor([0, 3, 7])
    ig = integrated_gradients(model, x, target, n_steps=2000)
    gap = model(x).gather(1, target[:, None]).squeeze(1) - model(torch.zeros_like(x)).gather(1, target[:, None]).squeeze(1)
    torch.testing.assert_close(ig.sum(dim=(1, 2, 3)), gap, rtol=2e-3, atol=2e-3)


def test_chunking_does_not_change_the_result():
    torch.manual_seed(2)
    model = models.create("mnist_cnn")
    x = torch.rand(5, 1, 28, 28)
    target = torch.randint(0, 10, (5,))
    torch.testing.assert_close(
        integrated_gradients(model, x, target, n_steps=7),
        integrated_gradients(model, x, target, n_steps=7, chunk_size=2),
    )


def test_steps_is_an_alias_of_n_steps():
    """``steps`` (the stable API's old name) and the fifth positional argument mean ``n_steps``."""
    torch.manual_seed(2)
    model = models.create("mnist_cnn")
    x = torch.rand(2, 1, 28, 28)
    target = torch.tensor([1, 4])
    want = integrated_gradients(model, x, target, n_steps=7)
    assert torch.equal(integrated_gradients(model, x, target, steps=7), want)
    assert torch.equal(integrated_gradients(model, x, target, None, 7), want)
    assert not torch.equal(integrated_gradients(model, x, target, steps=6), want)
    with pytest.raises(TypeError, match="give one"):
        integrated_gradients(model, x, target, n_steps=7, steps=6)


def test_create_graph_gives_input_derivative_matching_finite_differences():
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5), torch.nn.Softplus(), torch.nn.Linear(5, 3)).double()
    x = torch.rand(2, 1, 3, 4, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 2])

    def score(inp):
        return integrated_gradients(model, inp, target, n_steps=5, create_graph=True).square().sum()

    (grad,) = torch.autograd.grad(score(x), x)
    eps = 1e-6
    direction = torch.randn_like(x)
    numeric = (score(x + eps * direction) - score(x - eps * direction)) / (2 * eps)
    torch.testing.assert_close((grad * direction).sum(), numeric.detach(), rtol=1e-5, atol=1e-8)


def test_simple_gradient_and_saliency_maps():
    torch.manual_seed(4)
    model = models.create("mnist_cnn").double()
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    target = torch.tensor([1, 2])
    grad = simple_gradient(model, x, target)
    x_req = x.clone().requires_grad_(True)
    model(x_req).gather(1, target[:, None]).sum().backward()
    torch.testing.assert_close(grad, x_req.grad)
    for sal in (gradient_saliency(model, x, target), ig_saliency(model, x, target, n_steps=5)):
        assert sal.shape == (2, 28, 28) and (sal >= 0).all()
        torch.testing.assert_close(sal.sum(dim=(1, 2)), torch.full((2,), 784.0, dtype=torch.float64))


def test_saliency_map_sums_channels_of_absolute_values():
    attr = torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.0]]]])  # (1, 2, 1, 2)
    torch.testing.assert_close(saliency_map(attr), torch.tensor([[[4.0 / 6 * 2, 2.0 / 6 * 2]]]))
    torch.testing.assert_close(saliency_map(torch.zeros(1, 1, 2, 2)), torch.ones(1, 2, 2))
