"""Registry-driven: every registered saliency method gives batched (B, H, W) maps summing to H·W on
real MNIST, differentiable when asked, with each example's map independent of its batch."""

from __future__ import annotations

import pytest
import torch

from robustattr import data, models
from robustattr.attribution import SALIENCY_KINDS, SALIENCY_METHODS, SaliencyMethod


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(SALIENCY_METHODS))
def test_every_saliency_method_maps_real_images(kind: str, mnist_root) -> None:
    torch.manual_seed(0)
    model = models.create("mnist_cnn").double().eval()
    x, y = data.load("mnist", "test", root=mnist_root).batch(slice(0, 3))
    x = x.double()
    method = SaliencyMethod(kind, n_steps=8, samples=4, sigma=0.1, seed=1)
    maps = method.map(model, x, y)
    assert maps.shape == (3, 28, 28) and bool((maps >= 0).all())
    torch.testing.assert_close(maps.sum(dim=(1, 2)), torch.full((3,), 784.0, dtype=maps.dtype))
    one = torch.cat([method.map(model, x[i:i + 1], y[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(one, maps)
    assert method.points_per_example >= 1
    xg = x.clone().requires_grad_(True)
    graph = method.map(model, xg, y, create_graph=True)
    assert graph.requires_grad  # an attack can ascend it


def test_the_config_choices_are_the_registry() -> None:
    assert SALIENCY_KINDS == tuple(SALIENCY_METHODS) == ("ig", "simple_gradient", "input_x_gradient", "smoothgrad")
