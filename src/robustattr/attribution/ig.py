"""Integrated Gradients (Sundararajan et al., 2017), batched over examples and path points.

All path points of a chunk of examples go through the model in one forward, so a batch of B
images with ``n_steps`` points costs ``ceil(B / chunk_size)`` forward/backward passes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def right_riemann_alphas(n_steps: int, *, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Path coefficients k/n_steps for k = 1..n_steps (the paper's rule, Captum's ``riemann_right``)."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be ≥ 1, got {n_steps}")
    return torch.arange(1, n_steps + 1, dtype=dtype, device=device) / n_steps


def path_gradients(
    scalar_fn: Callable[[Tensor, Tensor], Tensor],
    start: Tensor,
    end: Tensor,
    alphas: Tensor,
    aux: Tensor,
    *,
    create_graph: bool,
    chunk_size: int | None = None,
) -> Tensor:
    """Mean gradient of a per-example scalar along straight paths ``start + α (end − start)``.

    Args:
        scalar_fn: ``(points (N, C, H, W), aux (N,)) -> (N,)``, one value per point whose sum is
            differentiated; each point's value may depend only on that point.
        start, end: (B, C, H, W) path ends.
        alphas: (S,) path coefficients.
        aux: (B,) per-example tensor (a class index) repeated for each of the S points.
        create_graph: keep the graph of the gradients (double backprop for training/attacks).
        chunk_size: examples per forward (None: all B at once).
    Returns:
        (B, C, H, W): (1/S) Σ_s ∇ scalar_fn at the S points.
    """
    steps = alphas.shape[0]
    shape = (1, steps) + (1,) * (start.dim() - 1)
    if not create_graph:
        start, end = start.detach(), end.detach()

    def points(lo: int, hi: int) -> Tensor:
        s, e = start[lo:hi], end[lo:hi]
        return s.unsqueeze(1) + alphas.view(shape) * (e - s).unsqueeze(1)

    return mean_point_gradients(scalar_fn, points, start.shape[0], aux, create_graph=create_graph,
                                chunk_size=chunk_size)


def mean_point_gradients(
    scalar_fn: Callable[[Tensor, Tensor], Tensor],
    points: Callable[[int, int], Tensor],
    batch: int,
    aux: Tensor,
    *,
    create_graph: bool,
    chunk_size: int | None = None,
) -> Tensor:
    """Mean gradient of a per-example scalar over S points per example, chunk by chunk.

    Args:
        scalar_fn: as :func:`path_gradients`.
        points: ``(lo, hi) -> (hi − lo, S, C, H, W)``, the points of examples lo..hi−1.
        batch: number of examples B; aux: (B,) per-example tensor, repeated for each point.
        create_graph, chunk_size: as :func:`path_gradients`.
    Returns:
        (B, C, H, W): (1/S) Σ_s ∇ scalar_fn at each example's S points.
    """
    chunk = batch if chunk_size is None else max(1, int(chunk_size))
    means = []
    for lo in range(0, batch, chunk):
        pts = points(lo, min(batch, lo + chunk))
        n, steps = pts.shape[:2]
        # (n, S, C, H, W) -> (n·S, C, H, W): every point of every example in one forward.
        flat = pts.flatten(0, 1)
        if not flat.requires_grad:
            flat.requires_grad_(True)
        values = scalar_fn(flat, aux[lo : lo + n].repeat_interleave(steps))
        (grads,) = torch.autograd.grad(values.sum(), flat, create_graph=create_graph)
        means.append(grads.view(n, steps, *pts.shape[2:]).mean(dim=1))
    return torch.cat(means) if len(means) > 1 else means[0]


def _target_logit(model: nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    def fn(points: Tensor, target: Tensor) -> Tensor:
        return model(points).gather(1, target.unsqueeze(1)).squeeze(1)

    return fn


def integrated_gradients(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    baseline: Tensor | None = None,
    n_steps: int = 50,
    create_graph: bool = False,
    chunk_size: int | None = None,
    *,
    steps: int | None = None,
) -> Tensor:
    """Integrated Gradients of the ``target`` logit, right Riemann sum.

    IG(x) = (x − x₀) ⊙ (1/n) Σ_{k=1..n} ∇f_target(x₀ + (k/n)(x − x₀)) with n = ``n_steps``; equal to
    Captum's ``IntegratedGradients(model).attribute(x, x₀, target, n_steps=n,
    method="riemann_right")``.

    Args:
        model: maps (N, C, H, W) float to logits (N, classes).
        x: (B, C, H, W) float, the dataset's value range.
        target: (B,) int64 class per example.
        baseline: (B, C, H, W) or broadcastable; zeros when None.
        n_steps: number of path points n (≥ 1), Captum's name; the fifth positional argument.
        create_graph: differentiable result (w.r.t. x and the parameters), for training and attacks.
        chunk_size: examples per forward; bounds memory at chunk_size·n_steps images.
        steps: keyword alias of ``n_steps`` (the name of the stable API before Captum's vocabulary
            was adopted; ``integrated_gradients(model, x, y, steps=100)`` keeps working). Give one.
    Returns:
        (B, C, H, W) attributions, same dtype and device as x.
    """
    if steps is not None:
        if n_steps not in (50, steps):
            raise TypeError(f"integrated_gradients got n_steps={n_steps} and steps={steps}; give one (steps is "
                            "an alias of n_steps)")
        n_steps = steps
    baseline = torch.zeros_like(x) if baseline is None else baseline.expand_as(x)
    alphas = right_riemann_alphas(n_steps, dtype=x.dtype, device=x.device)
    grads = path_gradients(_target_logit(model), baseline, x, alphas, target, create_graph=create_graph, chunk_size=chunk_size)
    return (x - baseline) * grads if create_graph else (x - baseline).detach() * grads


def simple_gradient(model: nn.Module, x: Tensor, target: Tensor, create_graph: bool = False) -> Tensor:
    """∇_x f_target(x): (B, C, H, W) for x (B, C, H, W) and target (B,) int64."""
    if not create_graph:
        x = x.detach()
    if not x.requires_grad:
        x = x.requires_grad_(True)
    logit = _target_logit(model)(x, target)
    (grad,) = torch.autograd.grad(logit.sum(), x, create_graph=create_graph)
    return grad
