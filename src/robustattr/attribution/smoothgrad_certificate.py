"""Sparsified SmoothGrad and its top-k robustness certificate (Levine, Singla & Feizi, "Certifiably
Robust Interpretation in Deep Learning", 2019, arXiv:1905.12105).

The base map of a point z is binary: h(z)_p = 1 for the ``keep`` pixels with the largest
Σ_c |∂f_c(z)/∂z_{c,p}| (c: the class certified, fixed per image: the clean image's top logit),
0 elsewhere — the paper's sparsified variant, whose values lie in [0, 1] as the bound needs (a
binary map needs no further clipping). ``keep`` = max(1, round(sparsity · H·W)); ties go to the
lower flat index. The smoothed map is ŝ(x) = (1/n) Σ_t h(x + δ_t), δ_t ~ N(0, σ² I), n samples.

Each pixel of E[h(x + δ)] has Φ⁻¹ of it (1/σ)-Lipschitz in x (the Gaussian-smoothing bound of
Cohen et al. / Salman et al. that the paper extends), and with probability ≥ η every pixel of ŝ
lies within e = √(ln(2d / (1 − η)) / (2n)) of it (Hoeffding, union bound over the d = H·W pixels).
With ŝ sorted in decreasing order s_1 ≥ s_2 ≥ ..., the certified count is
    #{i ≤ k : Φ(Φ⁻¹(s_i − e) − 2ρ/σ) − e > s_(2k−i)},
and the certified top-k intersection at ℓ2 radius ρ is that count / k: with probability ≥ η no
perturbation of ℓ2 norm ≤ ρ takes the top-k intersection of the smoothed map lower.

Noise: example j's samples come in blocks of :data:`NOISE_BLOCK`, block b drawn on the CPU from a
generator seeded by (seeds[j], b); so an example's map depends on its seed only, never on the batch
or the device, and an attack can re-use exactly the certificate's samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["NOISE_BLOCK", "SmoothGradCertificate", "certificate_noise", "sparsified_gradient_map",
           "sparsified_smoothgrad", "certified_top_k_count", "smoothgrad_certificate", "hoeffding_margin",
           "keep_count"]

#: Noise samples per independently seeded block (fixed, so a map does not depend on any chunking).
NOISE_BLOCK = 32
#: Φ⁻¹'s argument is clamped into [_TINY, 1 − _TINY] (float64): 0 and 1 would give ∓inf.
_TINY = 1e-15

Noise = Callable[[int, int], Tensor]


def keep_count(sparsity: float, num_pixels: int) -> int:
    """How many pixels a base map sets to 1: max(1, round(sparsity · num_pixels)), at most num_pixels."""
    if not 0 < sparsity <= 1:
        raise ValueError(f"sparsity must be in (0, 1], got {sparsity}")
    return min(num_pixels, max(1, round(sparsity * num_pixels)))


def certificate_noise(seeds: Sequence[int], sigma: float, shape: tuple[int, ...], *, dtype: torch.dtype,
                      device: torch.device) -> Noise:
    """``noise(lo, hi)`` → (B, hi − lo, *shape): samples lo..hi−1 of N(0, σ² I) for each of the B examples.

    Sample t of example j is entry t % NOISE_BLOCK of block t // NOISE_BLOCK, drawn on the CPU from
    a generator seeded by (seeds[j], block) through NumPy's SeedSequence.
    """
    import numpy as np

    def block(seed: int, b: int) -> Tensor:
        state = np.random.SeedSequence([int(seed), int(b)]).generate_state(1, np.uint64)[0]
        gen = torch.Generator().manual_seed(int(state) & (2**63 - 1))
        return torch.randn((NOISE_BLOCK, *shape), generator=gen, dtype=torch.float32)

    def noise(lo: int, hi: int) -> Tensor:
        first, last = lo // NOISE_BLOCK, (hi - 1) // NOISE_BLOCK
        per_example = [torch.cat([block(s, b) for b in range(first, last + 1)])[lo - first * NOISE_BLOCK:
                                                                                hi - first * NOISE_BLOCK]
                       for s in seeds]
        return (torch.stack(per_example) * sigma).to(device=device, dtype=dtype)

    return noise


def sparsified_gradient_map(model: nn.Module, z: Tensor, target: Tensor, keep: int) -> Tensor:
    """(N, H, W) float in {0, 1}: 1 on the ``keep`` largest Σ_c |∇_z f_target(z)| of each point z (N, C, H, W)."""
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        logit = model(z).gather(1, target.unsqueeze(1)).sum()
        (grad,) = torch.autograd.grad(logit, z)
    u = grad.abs().sum(dim=1).flatten(1)  # (N, H·W)
    top = u.sort(dim=1, descending=True, stable=True).indices[:, :keep]
    return torch.zeros_like(u).scatter_(1, top, 1.0).view(z.shape[0], *z.shape[2:])


def sparsified_smoothgrad(model: nn.Module, x: Tensor, target: Tensor, noise: Noise, *, samples: int, keep: int,
                          chunk_size: int | None = None) -> Tensor:
    """ŝ(x): (B, H, W) in [0, 1], multiples of 1/samples: the mean sparsified map over ``samples`` noisy copies.

    Args:
        x: (B, C, H, W) float; target: (B,) int64 class of each map; noise: :func:`certificate_noise`'s
        callable (B examples); keep: pixels set per base map; chunk_size: examples per forward
        (each brings NOISE_BLOCK points; default all).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    batch = x.shape[0]
    chunk = batch if chunk_size is None else max(1, int(chunk_size))
    total = x.new_zeros(batch, *x.shape[2:])
    for lo in range(0, samples, NOISE_BLOCK):
        hi = min(samples, lo + NOISE_BLOCK)
        delta = noise(lo, hi)  # (B, m, C, H, W)
        for a in range(0, batch, chunk):
            b = min(batch, a + chunk)
            points = (x[a:b].detach().unsqueeze(1) + delta[a:b]).flatten(0, 1)
            maps = sparsified_gradient_map(model, points, target[a:b].repeat_interleave(hi - lo), keep)
            total[a:b] += maps.view(b - a, hi - lo, *maps.shape[1:]).sum(dim=1)
    return total / samples


def hoeffding_margin(num_pixels: int, samples: int, confidence: float) -> float:
    """e = √(ln(2d / (1 − η)) / (2n)): every pixel of ŝ is within e of its expectation with probability ≥ η."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return math.sqrt(math.log(2 * num_pixels / (1 - confidence)) / (2 * samples))


def certified_top_k_count(s: Tensor, k: int, *, samples: int, sigma: float, radius: float,
                          confidence: float) -> Tensor:
    """(B,) int64 #{i ≤ k : Φ(Φ⁻¹(s_i − e) − 2ρ/σ) − e > s_(2k−i)} of each smoothed map s (B, ...) in [0, 1].

    s sorted in decreasing order (1-based s_1 ≥ s_2 ≥ ...), e = :func:`hoeffding_margin` with d the
    entries per map; Φ⁻¹'s argument clamped into (0, 1). Needs 2k − 1 ≤ d. Computed in float64.
    """
    flat = s.reshape(s.shape[0], -1).to(torch.float64)
    d = flat.shape[1]
    if not 1 <= k <= (d + 1) // 2:
        raise ValueError(f"k must be in 1..{(d + 1) // 2} (2k - 1 <= {d} pixels), got {k}")
    if sigma <= 0 or radius < 0:
        raise ValueError(f"need sigma > 0 and radius >= 0, got sigma={sigma}, radius={radius}")
    e = hoeffding_margin(d, samples, confidence)
    v = flat.sort(dim=1, descending=True).values
    i = torch.arange(1, k + 1, device=flat.device)
    top = v[:, :k]  # s_i, i = 1..k
    rival = v[:, 2 * k - i - 1]  # s_(2k−i), 0-based index 2k − i − 1
    inner = torch.special.ndtri((top - e).clamp(_TINY, 1 - _TINY)) - 2 * radius / sigma
    lower = torch.special.ndtr(inner) - e
    return (lower > rival).sum(dim=1)


@dataclass(frozen=True)
class SmoothGradCertificate:
    """Per image: ``smoothed`` (B, H, W) ŝ, ``target`` (B,) its class, ``certified_count`` (B,) int64,
    ``certified_intersection`` (B,) float = count / k, and the ``margin`` e used."""

    smoothed: Tensor
    target: Tensor
    certified_count: Tensor
    certified_intersection: Tensor
    margin: float


def smoothgrad_certificate(model: nn.Module, x: Tensor, *, k: int, samples: int, sigma: float, radius: float,
                           confidence: float, sparsity: float, seeds: Sequence[int], target: Tensor | None = None,
                           chunk_size: int | None = None) -> SmoothGradCertificate:
    """Sparsified SmoothGrad of x and its certified top-k intersection at ℓ2 radius ``radius``.

    Args:
        model: logits of (N, C, H, W) inputs; x: (B, C, H, W) in the model's pixel units.
        k: the top-k certified (2k − 1 ≤ H·W); samples: n; sigma: σ, and radius: ρ, in x's units;
        confidence: η in (0, 1); sparsity: fraction of pixels a base map sets to 1 (:func:`keep_count`);
        seeds: one noise seed per example; target: (B,) classes (default: the top logit at x).
    Returns:
        :class:`SmoothGradCertificate`.

    Example:
        >>> c = smoothgrad_certificate(model, x, k=100, samples=256, sigma=0.25, radius=0.1,
        ...                            confidence=0.95, sparsity=0.1, seeds=range(len(x)))
    """
    if len(seeds) != x.shape[0]:
        raise ValueError(f"need one seed per example: {len(seeds)} seeds for {x.shape[0]} examples")
    if target is None:
        with torch.no_grad():
            target = model(x).argmax(dim=1)
    noise = certificate_noise(seeds, sigma, tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
    keep = keep_count(sparsity, x.shape[-2] * x.shape[-1])
    smoothed = sparsified_smoothgrad(model, x, target, noise, samples=samples, keep=keep, chunk_size=chunk_size)
    count = certified_top_k_count(smoothed, k, samples=samples, sigma=sigma, radius=radius, confidence=confidence)
    return SmoothGradCertificate(smoothed=smoothed, target=target, certified_count=count,
                                 certified_intersection=count.to(torch.get_default_dtype()) / k,
                                 margin=hoeffding_margin(x.shape[-2] * x.shape[-1], samples, confidence))
