"""Seeded offline augmentation and class balancing of GTSRB / Flower-17 training sets (spec §1.3, §1.4).

For class ``c`` with ``n_c`` originals, all originals are kept and ``per_class - n_c`` new images
are made, the i-th from original ``i mod n_c``, by the chain (bilinear, pixel centres at integers):

1. rotation by U(-15°, 15°) about the image centre, edge-replicated border;
2. translation by (tx, ty), each 5·U(0, 1) - 2.5 px, black border;
3. perspective: d = H·0.3·U(0, 0.8); the 8 corner coordinates jittered by U(-d, d); the output pixel
   at a jittered corner samples the input at the true corner; edge-replicated border;
4. ×255 and truncation to uint8.

Stages 1-3 run on float images in [0, 1], batched with ``torch.nn.functional.grid_sample``. The
random numbers come from one ``numpy.random.RandomState``, drawn class by class, so the result
depends only on the seed and the inputs, not on the chunk size. The original used skimage and
OpenCV, unseeded for GTSRB, so its images cannot be reproduced bit for bit; the distributions are
the original's.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

__all__ = ["draw_params", "augment", "balance"]

log = logging.getLogger(__name__)


def draw_params(rng: np.random.RandomState, n: int, size: int) -> dict[str, np.ndarray]:
    """Random parameters of ``n`` augmentations of ``size``×``size`` images.

    Returns:
        ``angle`` (n,) degrees, ``shift`` (n, 2) pixels (tx, ty), ``jitter`` (n, 8) pixels in the order
        tl_top, tl_left, bl_bottom, bl_left, tr_top, tr_right, br_bottom, br_right.
    """
    angle = rng.uniform(-15.0, 15.0, n)
    shift = rng.uniform(0.0, 1.0, (n, 2)) * 5.0 - 2.5
    d = size * 0.3 * rng.uniform(0.0, 0.8, n)
    jitter = rng.uniform(-1.0, 1.0, (n, 8)) * d[:, None]
    return {"angle": angle, "shift": shift, "jitter": jitter}


def _warp(x: torch.Tensor, grid: torch.Tensor, padding: str) -> torch.Tensor:
    """Bilinear sampling of x (B, C, H, W) at normalised coordinates grid (B, H, W, 2), corners aligned."""
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=True)


def _homographies(jitter: np.ndarray, size: int) -> np.ndarray:
    """(n, 3, 3) maps from output to input coordinates sending jittered corners to true corners."""
    tl_top, tl_left, bl_bottom, bl_left, tr_top, tr_right, br_bottom, br_right = jitter.T
    s = float(size)
    src = np.stack([  # (n, 4, 2) jittered corners (x, y) in the output image
        np.stack([tl_left, tl_top], -1), np.stack([bl_left, s - bl_bottom], -1),
        np.stack([s - br_right, s - br_bottom], -1), np.stack([s - tr_right, tr_top], -1),
    ], axis=1)
    dst = np.array([[0.0, 0.0], [0.0, s], [s, s], [s, 0.0]])
    n = jitter.shape[0]
    a = np.zeros((n, 8, 8))
    b = np.zeros((n, 8))
    for k in range(4):
        x, y = src[:, k, 0], src[:, k, 1]
        u, v = dst[k]
        a[:, 2 * k] = np.stack([x, y, np.ones(n), 0 * x, 0 * x, 0 * x, -u * x, -u * y], -1)
        a[:, 2 * k + 1] = np.stack([0 * x, 0 * x, 0 * x, x, y, np.ones(n), -v * x, -v * y], -1)
        b[:, 2 * k], b[:, 2 * k + 1] = u, v
    h = np.linalg.solve(a, b[..., None])[..., 0]
    return np.concatenate([h, np.ones((n, 1))], axis=1).reshape(n, 3, 3)


def augment(images: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """Apply the rotation → translation → perspective chain to a batch.

    Args:
        images: uint8 (B, C, H, W) with H == W.
        params: from :func:`draw_params`, B rows each.

    Returns:
        uint8 (B, C, H, W): the warped images ×255, truncated.
    """
    b, _, h, w = images.shape
    if h != w:
        raise ValueError(f"augment needs square images, got {h}x{w}")
    # Pixel coordinates p = (col, row) relate to grid_sample's normalised u by p = s·(u + 1), s = (W-1)/2.
    s = (w - 1) / 2.0
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32) / 255.0
    size = [b, 1, h, w]

    # 1. rotation about the centre c = (s, s): source = R(θ)(p - c) + c, as skimage.transform.rotate;
    #    in normalised coordinates simply R(θ)·u. Edge-replicated border.
    theta = np.deg2rad(params["angle"])
    rot = np.zeros((b, 2, 3))
    rot[:, 0, 0], rot[:, 0, 1] = np.cos(theta), -np.sin(theta)
    rot[:, 1, 0], rot[:, 1, 1] = np.sin(theta), np.cos(theta)
    x = _warp(x, F.affine_grid(torch.from_numpy(rot).float(), size, align_corners=True), "border")
    # 2. translation: dst(p) = src(p - t), black border (cv2.warpAffine, BORDER_CONSTANT).
    shift = np.zeros((b, 2, 3))
    shift[:, 0, 0] = shift[:, 1, 1] = 1.0
    shift[:, :, 2] = -params["shift"] / s
    x = _warp(x, F.affine_grid(torch.from_numpy(shift).float(), size, align_corners=True), "zeros")
    # 3. perspective, edge mode (skimage.transform.warp with a ProjectiveTransform inverse map):
    #    in normalised coordinates the homography is S⁻¹·H·S with S = [[s, 0, s], [0, s, s], [0, 0, 1]].
    scale = np.array([[s, 0.0, s], [0.0, s, s], [0.0, 0.0, 1.0]])
    hn = np.linalg.inv(scale) @ _homographies(params["jitter"], h) @ scale
    lin = torch.linspace(-1.0, 1.0, w)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    base = torch.stack((gx, gy, torch.ones_like(gx)), dim=-1).reshape(1, h * w, 3)
    src = base @ torch.from_numpy(hn).float().transpose(1, 2)  # (B, H·W, 3)
    grid = (src[..., :2] / src[..., 2:]).reshape(b, h, w, 2)
    x = _warp(x, grid, "border")
    return (x * 255.0).clamp_(0.0, 255.0).to(torch.uint8).numpy()  # .to(uint8) truncates


def balance(images: np.ndarray, labels: np.ndarray, per_class: int, rng: np.random.RandomState,
            out: np.ndarray | None = None, desc: str = "augmenting") -> tuple[np.ndarray, np.ndarray]:
    """Keep all originals and add augmented images until every class has ``per_class`` images.

    Args:
        images: uint8 (N, C, H, W) originals; labels: int (N,).
        per_class: target count per class (classes with more originals keep them all).
        rng: the seeded generator; parameters are drawn class by class, in increasing label order.
        out: optional preallocated uint8 array (a memory map) of the returned length.

    Returns:
        (images uint8 (M, C, H, W), labels int64 (M,)): per class, in increasing label order, the
        originals in their given order followed by the new images.
    """
    classes, counts = np.unique(labels, return_counts=True)
    sizes = np.maximum(counts, per_class)
    total = int(sizes.sum())
    if out is None:
        out = np.empty((total,) + images.shape[1:], dtype=np.uint8)
    if out.shape != (total,) + images.shape[1:]:
        raise ValueError(f"out has shape {out.shape}, expected {(total,) + images.shape[1:]}")
    out_labels = np.repeat(classes.astype(np.int64), sizes)
    chunk = max(1, (1 << 24) // int(np.prod(images.shape[1:])))
    pos = 0
    with tqdm(total=int((sizes - counts).sum()), desc=desc, unit="img", disable=None) as bar:
        for c, n_c, size in zip(classes, counts, sizes):
            idx = np.flatnonzero(labels == c)
            out[pos:pos + n_c] = images[idx]
            pos += n_c
            k = int(size - n_c)
            params = draw_params(rng, k, images.shape[-1])
            for start in range(0, k, chunk):
                stop = min(k, start + chunk)
                src = images[idx[np.arange(start, stop) % n_c]]
                out[pos:pos + stop - start] = augment(src, {key: v[start:stop] for key, v in params.items()})
                pos += stop - start
                bar.update(stop - start)
    return out, out_labels
