"""The paper's attribution regulariser: IG of the loss from x to x' (spec §3.1).

IG(x, x') = (x' − x) ⊙ (1/|K|) Σ_{k∈K} ∇_z L(x + (k/m)(x' − x), y) with
L(z, y) = −log clip(softmax(f(z))_y, 1e−10, 1) and K = {a, 2a, …} ∩ [1, m] for approx_factor a
(a = 1: all m points), m = ``n_steps`` (the config key ``m``). The regulariser is ‖IG‖₁ summed over
the whole batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robustattr.attribution.ig import path_gradients


def clipped_cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Per-example −log(clip(softmax(logits)_y, 1e−10, 1)): (N, classes), (N,) → (N,).

    The original builds the softmax explicitly and clips it; the gradient vanishes for a class
    probability clipped below 1e−10, unlike the fused stable cross-entropy.
    """
    prob = torch.softmax(logits, dim=1).gather(1, y.unsqueeze(1)).squeeze(1)
    return -torch.log(prob.clamp(1e-10, 1.0))


def loss_path_alphas(n_steps: int, approx_factor: int = 1, *, dtype: torch.dtype, device: torch.device) -> Tensor:
    """k/m for k = a, 2a, … ≤ m (m = ``n_steps``): the points the (approximate) regulariser evaluates."""
    if n_steps < 1 or approx_factor < 1:
        raise ValueError(f"n_steps and approx_factor must be ≥ 1, got n_steps={n_steps}, "
                         f"approx_factor={approx_factor}")
    return torch.arange(approx_factor, n_steps + 1, approx_factor, dtype=dtype, device=device) / n_steps


def loss_integrated_gradients(
    model: nn.Module,
    x: Tensor,
    x_adv: Tensor,
    y: Tensor,
    n_steps: int,
    approx_factor: int = 1,
    create_graph: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """IG of the clipped-softmax cross-entropy along the straight path x → x_adv.

    Args:
        model: ReLU network, (N, C, H, W) → logits.
        x: (B, C, H, W) natural images (the baseline).
        x_adv: (B, C, H, W) perturbed images (the end point); may require grad (PGD on the IG term).
        y: (B,) int64 labels.
        n_steps: number of path points m (the config's ``m``); approx_factor: keep every a-th point only.
        create_graph: keep the graph so the result can be differentiated w.r.t. x_adv or the
            parameters (double backprop). To bound memory in that case, call this on slices of
            the batch and backpropagate each slice's term separately: the L1 norm is a sum over
            examples, so per-example slices are exact (slicing the points would not be).
        chunk_size: examples per forward.
    Returns:
        (B, C, H, W) attributions of the loss.
    """
    alphas = loss_path_alphas(n_steps, approx_factor, dtype=x.dtype, device=x.device)

    def loss(points: Tensor, labels: Tensor) -> Tensor:
        return clipped_cross_entropy(model(points), labels)

    grads = path_gradients(loss, x, x_adv, alphas, y, create_graph=create_graph, chunk_size=chunk_size)
    delta = x_adv - x
    return delta * grads if create_graph else delta.detach() * grads


def ig_regularizer(
    model: nn.Module,
    x: Tensor,
    x_adv: Tensor,
    y: Tensor,
    n_steps: int,
    approx_factor: int = 1,
    create_graph: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """‖IG(x, x_adv)‖₁ summed over the batch, pixels and channels: a scalar (spec §3.1).

    Positional order ``(model, x, x_adv, y, n_steps, approx_factor, create_graph, chunk_size)``, as
    the training objectives call it; ``n_steps`` is the config's ``m``.
    """
    return loss_integrated_gradients(model, x, x_adv, y, n_steps, approx_factor, create_graph, chunk_size).abs().sum()


def chunk_size_for_budget(memory_budget_mb: float | None, bytes_per_example: int) -> int | None:
    """Examples per chunk so that chunk·bytes_per_example fits the budget (None: no budget)."""
    if memory_budget_mb is None:
        return None
    return max(1, int(memory_budget_mb * 2**20) // max(1, int(bytes_per_example)))


# Path points per forward/backward pass that ran fastest on a CPU (docs/performance.md: 100–200
# points; a 6,400-point pass is memory bound because the activations fall out of cache).
CPU_POINTS_PER_PASS = 128


def default_chunk_size(points_per_example: int, device: torch.device | str,
                       memory_budget_mb: float | None = None, bytes_per_point: int = 0) -> int | None:
    """Examples per pass for the drivers: the memory budget's bound and, on a CPU, ~128 points.

    On a GPU without a budget the whole batch goes in one pass (None): large passes are what
    keep it busy. ``bytes_per_point`` (activation bytes of one path point, ×3 for double
    backprop is the caller's business) is only needed with a budget.
    """
    candidates = []
    if memory_budget_mb is not None:
        candidates.append(chunk_size_for_budget(memory_budget_mb, points_per_example * bytes_per_point))
    if torch.device(device).type == "cpu":
        candidates.append(max(1, CPU_POINTS_PER_PASS // max(1, points_per_example)))
    return min(candidates) if candidates else None


def activation_bytes_per_image(model: nn.Module, image: Tensor) -> int:
    """Bytes of every intermediate output of one forward of ``image`` (1, C, H, W).

    A rough per-image memory figure: multiply by the path points, and by ~3 for double backprop.
    """
    total = 0

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, Tensor):
            total += output.numel() * output.element_size()

    handles = [mod.register_forward_hook(hook) for mod in model.modules() if mod is not model]
    try:
        with torch.no_grad():
            model(image)
    finally:
        for handle in handles:
            handle.remove()
    # Activation functions are not modules here: count each layer output twice.
    return 2 * total + image.numel() * image.element_size()
