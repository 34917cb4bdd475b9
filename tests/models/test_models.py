"""The paper's architectures: sizes, shapes, surrogate, standardisation, TF padding."""

import pytest
import torch
import torch.nn.functional as F

from robustattr import models
from robustattr.errors import UserInputError
from robustattr.models.layers import pad_same_stride2, standardize_per_image

EXPECTED = {
    "mnist_cnn": (3_274_634, (1, 28, 28), 10),
    "gtsrb_resnet": (173_723, (3, 32, 32), 43),
    "flower_resnet": (75_265, (3, 128, 128), 17),
}


@pytest.mark.parametrize("name", list(models.MODELS))
def test_parameter_count_and_output_shape(name):
    count, shape, classes = EXPECTED[name]
    model = models.create(name)
    assert models.parameter_count(model) == count
    x = torch.rand(2, *shape) * (1 if name == "mnist_cnn" else 255)
    assert model(x).shape == (2, classes)
    assert model(x, softplus=True).shape == (2, classes)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_surrogate_shares_weights(name):
    _, shape, _ = EXPECTED[name]
    model = models.create(name)
    view = models.surrogate(model)
    assert {id(p) for p in view.parameters()} == {id(p) for p in model.parameters()}
    x = torch.rand(2, *shape)
    before = view(x)
    assert not torch.allclose(before, model(x))  # softplus differs from the ReLU network
    with torch.no_grad():
        next(model.parameters()).add_(0.5)
    assert not torch.allclose(view(x), before)  # a change to the model is seen by the view


@pytest.mark.parametrize("name", ["gtsrb_resnet", "flower_resnet"])
def test_resnets_are_scale_invariant(name):
    _, shape, _ = EXPECTED[name]
    model = models.create(name).double()
    x = torch.rand(3, *shape, dtype=torch.float64) * 255
    torch.testing.assert_close(model(x), model(2 * x))


def test_standardisation_matches_definition():
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64) * 255
    out = standardize_per_image(x)
    flat = out.flatten(1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(4, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(flat.std(1, unbiased=False), torch.ones(4, dtype=torch.float64))
    const = torch.full((1, 3, 8, 8), 7.0, requires_grad=True)
    y = standardize_per_image(const)
    y.sum().backward()
    assert torch.isfinite(const.grad).all()  # constant image: σ floored at 1/√N, no NaN


def test_tf_same_padding_for_stride_two():
    # TF "SAME" on an even input pads 0 before and 1 after; compare with an explicit formula:
    # output pixel (i, j) samples input rows 2i..2i+2 with the extra row at the bottom.
    x = torch.arange(16.0).view(1, 1, 4, 4)
    weight = torch.zeros(1, 1, 3, 3)
    weight[0, 0, 0, 0] = 1.0  # picks the top-left tap of each window
    out = F.conv2d(pad_same_stride2(x, 3), weight, stride=2)
    assert out.shape == (1, 1, 2, 2)
    torch.testing.assert_close(out[0, 0], x[0, 0, ::2, ::2])  # windows start at row/col 0, not −1


def test_cnn_initialisation_is_the_originals():
    torch.manual_seed(0)
    model = models.create("mnist_cnn")
    for layer in (model.conv1, model.conv2, model.fc1, model.fc2):
        assert layer.weight.abs().max() <= 0.2 + 1e-6  # truncated at 2σ, σ = 0.1
        assert torch.all(layer.bias == 0.1)
    assert 0.085 < model.fc1.weight.std().item() < 0.095  # truncation shrinks σ to ≈ 0.088


def test_unknown_model_is_a_clear_error():
    with pytest.raises(UserInputError, match="unknown model 'mnist_cn'.*did you mean 'mnist_cnn'"):
        models.create("mnist_cn")


@pytest.mark.parametrize("softplus", [False, True])
def test_cnn_pool_before_activation_equals_textbook_order(softplus):
    """MadryCNN pools before its activation; the spec's order (activation, then pool) must give the
    same logits, input gradients and second-order (double-backprop) gradients."""
    torch.manual_seed(0)
    net = models.create("mnist_cnn").double()
    act = F.softplus if softplus else F.relu

    def textbook(x):
        h = F.max_pool2d(act(net.conv1(x)), 2)
        h = F.max_pool2d(act(net.conv2(h)), 2)
        h = act(net.fc1(h.permute(0, 2, 3, 1).flatten(1)))
        return net.fc2(h)

    x = torch.rand(4, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    results = []
    for forward in (lambda z: net(z, softplus=softplus), textbook):
        out = forward(x)
        (g,) = torch.autograd.grad(out[:, 3].sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.square().sum(), net.conv1.weight)
        results.append((out, g, gg))
    for ours, reference in zip(*results):
        torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-12)
