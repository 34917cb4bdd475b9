"""Per-channel histogram equalisation with OpenCV ``equalizeHist`` semantics, in NumPy (spec §1.3).

For one uint8 channel with histogram ``h`` and ``total`` pixels, let ``m`` be its smallest value.
If every pixel equals ``m`` the channel is returned unchanged. Otherwise
``lut[m] = 0`` and, for ``v > m``, ``lut[v] = round((cdf[v] - h[m]) * (255 / (total - h[m])))``,
the product taken in float32 and rounded half to even (OpenCV's ``saturate_cast<uchar>``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["equalize_hist"]


def equalize_hist(images: np.ndarray, *, chunk: int = 8192) -> np.ndarray:
    """Equalise every channel of every image independently.

    Args:
        images: uint8 (N, C, H, W).
        chunk: images processed at once (bounds the (chunk·C, 256) lookup tables).

    Returns:
        uint8 (N, C, H, W), a new array.

    Example:
        >>> equalize_hist(np.array([10, 20, 30], np.uint8).reshape(1, 1, 1, 3)).ravel().tolist()
        [0, 128, 255]
    """
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"equalize_hist needs uint8 (N, C, H, W), got {images.dtype}{images.shape}")
    n, c, h, w = images.shape
    out = np.empty_like(images)
    total = h * w
    for start in range(0, n, chunk):
        block = np.asarray(images[start:start + chunk]).reshape(-1, total)  # (B·C, H·W)
        rows = block.shape[0]
        offsets = (np.arange(rows, dtype=np.int64) * 256)[:, None]
        hist = np.bincount((block + offsets).ravel(), minlength=rows * 256).reshape(rows, 256)
        vmin = block.min(axis=1)
        h_min = hist[np.arange(rows), vmin].astype(np.int64)
        cdf = np.cumsum(hist, axis=1)
        denom = total - h_min
        constant = denom == 0
        scale = (np.float32(255.0) / np.where(constant, 1, denom).astype(np.float32)).astype(np.float32)
        sums = (cdf - h_min[:, None]).astype(np.float32)
        lut = np.clip(np.rint(sums * scale[:, None]), 0, 255).astype(np.uint8)
        lut[np.arange(rows), vmin] = 0
        lut[constant] = np.arange(256, dtype=np.uint8)  # single-valued channel: unchanged
        eq = np.take_along_axis(lut, block.astype(np.intp), axis=1)
        out[start:start + chunk] = eq.reshape(-1, c, h, w)
    return out
