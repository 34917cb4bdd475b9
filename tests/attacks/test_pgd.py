"""L∞ PGD: every loss stays in the ε-ball and the pixel range, raises its loss, and leaves the model as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustattr.attacks import PGD_LOSSES, pgd, pgd_loss
from robustattr.attacks._common import attack_mode, feasible_box, project_and_clamp, random_start
from robustattr.errors import UserInputError

EPS, STEPS, ALPHA = 0.1, 10, 0.02


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 3)
    ).double()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 6, 6, generator=g, dtype=torch.float64)
    return x, torch.tensor([0, 1, 2, 0, 1, 2])


def _attack(model, x, y, loss, **kw):
    kw.setdefault("generator", torch.Generator().manual_seed(7))
    return pgd(model, x, y, EPS, STEPS, ALPHA, loss=loss, n_steps=8, approx_factor=2, lam=0.5, **kw)


@pytest.mark.parametrize("loss", PGD_LOSSES)
def test_pgd_stays_in_ball_and_bounds_and_raises_the_loss(loss: str) -> None:
    model, (x, y) = _tiny_model(), _batch()
    x_adv = _attack(model, x, y, loss)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= EPS + 1e-12
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    objective = pgd_loss(loss, n_steps=8, approx_factor=2, lam=0.5)
    start = project_and_clamp(random_start(x, EPS, torch.Generator().manual_seed(7)), x, EPS, (0.0, 1.0))
    with attack_mode(model), torch.enable_grad():
        before = objective(model, x, start, y).item()
        after = objective(model, x, x_adv, y).item()
    assert after > before


def _original_pgd(model, x, y, eps, steps, step_size, start, bounds):
    """The original's loop, one image at a time (spec §4.1): x += a·sign(∇CE); clip to the ball; clip to the range."""
    out = []
    for i in range(x.shape[0]):
        xi, xa = x[i : i + 1], start[i : i + 1].clone()
        for _ in range(steps):
            xa.requires_grad_(True)
            loss = nn.functional.cross_entropy(model(xa), y[i : i + 1], reduction="sum")
            (g,) = torch.autograd.grad(loss, xa)
            xa = xa.detach() + step_size * torch.sign(g)
            xa = torch.clamp(torch.clamp(xa, xi - eps, xi + eps), *bounds)
        out.append(xa)
    return torch.cat(out)


@pytest.mark.parametrize("scale", [1.0, 255.0])  # MNIST's [0, 1] and GTSRB's integer range
def test_batched_pgd_equals_the_original_loop_one_image_at_a_time(scale: float) -> None:
    model, (x, y) = _tiny_model(), _batch()
    model[0].weight.data /= scale
    x, eps, step, bounds = x * scale, 0.3 * scale, 0.05 * scale, (0.0, scale)
    noise = torch.empty_like(x).uniform_(-eps, eps, generator=torch.Generator().manual_seed(3))
    got = pgd(model, x, y, eps, 12, step, random_start=True, bounds=bounds, start_noise=noise)
    with attack_mode(model):
        want = _original_pgd(model, x, y, eps, 12, step, x + noise, bounds)
    assert torch.equal(got, want)


def test_feasible_box_clamp_is_project_then_clip_bit_for_bit() -> None:
    g = torch.Generator().manual_seed(0)
    for scale in (1.0, 255.0):
        x = torch.rand(4, 3, 8, 8, generator=g) * scale
        x_adv = x + (torch.rand(x.shape, generator=g) - 0.5) * scale  # far outside the ball and the range too
        lower, upper = feasible_box(x, 0.1 * scale, (0.0, scale))
        assert torch.equal(x_adv.clamp(lower, upper), project_and_clamp(x_adv, x, 0.1 * scale, (0.0, scale)))


@pytest.mark.parametrize("loss", ["xent", "ar_approx", "adv_ar"])
def test_pgd_leaves_parameters_grads_flags_and_mode_alone(loss: str) -> None:
    model, (x, y) = _tiny_model(), _batch()
    model.train()
    model[0].eval()  # a mixed mode must come back as it was
    grads = {}
    for i, p in enumerate(model.parameters()):
        p.grad = torch.full_like(p, float(i))
        grads[i] = p.grad.clone()
    model[3].bias.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    before = [p.detach().clone() for p in model.parameters()]
    _attack(model, x, y, loss)
    assert model.training and not model[0].training and model[3].training
    assert [p.requires_grad for p in model.parameters()] == flags
    for i, (p, old) in enumerate(zip(model.parameters(), before)):
        assert torch.equal(p, old) and torch.equal(p.grad, grads[i])


def test_ig_loss_without_random_start_does_not_move() -> None:
    # At x' = x the IG term is flat (|·| at 0), and sign(0) = 0: the spec's reason for the random start.
    model, (x, y) = _tiny_model(), _batch()
    assert torch.equal(_attack(model, x, y, "ar", random_start=False), x)


def test_chunked_equals_whole_batch_and_seed_reproduces() -> None:
    model, (x, y) = _tiny_model(), _batch()
    whole = _attack(model, x, y, "adv_ar_approx")
    chunked = _attack(model, x, y, "adv_ar_approx", chunk_size=4)
    torch.testing.assert_close(chunked, whole)
    assert torch.equal(_attack(model, x, y, "adv_ar_approx"), whole)


def test_cw_shrinks_the_margin() -> None:
    model, (x, y) = _tiny_model(), _batch()
    x_adv = _attack(model, x, y, "cw")

    def margin(z: torch.Tensor) -> torch.Tensor:
        logits = model(z)
        other = logits.masked_fill(torch.nn.functional.one_hot(y, 3).bool(), float("-inf")).amax(1)
        return logits.gather(1, y[:, None]).squeeze(1) - other

    with torch.no_grad():
        assert margin(x_adv).sum() < margin(x).sum()


def test_zero_steps_returns_clipped_start_and_respects_bounds() -> None:
    model, (x, y) = _tiny_model(), _batch()
    x255 = x * 255
    x_adv = pgd(model, x255, y, 8.0, 0, 2.0, bounds=(0.0, 255.0), generator=torch.Generator().manual_seed(3))
    assert x_adv.min() >= 0 and x_adv.max() <= 255 and (x_adv - x255).abs().max() <= 8.0


def test_unknown_loss_and_bad_arguments_are_user_errors() -> None:
    model, (x, y) = _tiny_model(), _batch()
    with pytest.raises(UserInputError, match=r"loss_func='xnet'.*did you mean 'xent'.*choose from xent, cw, ar"):
        pgd(model, x, y, EPS, 1, ALPHA, loss="xnet")
    with pytest.raises(UserInputError, match="epsilon"):
        pgd(model, x, y, -1.0, 1, ALPHA)
    with pytest.raises(UserInputError, match="bounds"):
        pgd(model, x, y, EPS, 1, ALPHA, bounds=(1.0, 0.0))


def test_real_mnist_cnn_on_mnist_images(mnist_root) -> None:
    from robustattr import data, models

    split = data.load("mnist", "test", root=mnist_root)
    x, y = split.batch(slice(0, 4))
    torch.manual_seed(0)
    model = models.create("mnist_cnn")
    for loss in ("xent", "ar_approx"):
        x_adv = pgd(model, x, y, 0.3, 3, 0.01, loss=loss, n_steps=10, approx_factor=5,
                    generator=torch.Generator().manual_seed(0))
        assert (x_adv - x).abs().max() <= 0.3 + 1e-6 and 0 <= x_adv.min() and x_adv.max() <= 1
        objective = pgd_loss(loss, n_steps=10, approx_factor=5)
        start = project_and_clamp(random_start(x, 0.3, torch.Generator().manual_seed(0)), x, 0.3, (0.0, 1.0))
        with attack_mode(model), torch.enable_grad():
            assert objective(model, x, x_adv, y) > objective(model, x, start, y)
