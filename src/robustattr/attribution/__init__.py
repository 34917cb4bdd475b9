"""Attributions: Integrated Gradients, simple gradients, saliency maps, the IG-of-loss regulariser.

Pure functions over batched (B, C, H, W) tensors; nothing here prints or loops over examples.
"""

from robustattr.attribution.ig import (
    integrated_gradients, mean_point_gradients, path_gradients, right_riemann_alphas, simple_gradient,
)
from robustattr.attribution.regularizer import (
    activation_bytes_per_image,
    CPU_POINTS_PER_PASS,
    chunk_size_for_budget,
    clipped_cross_entropy,
    default_chunk_size,
    ig_regularizer,
    loss_integrated_gradients,
    loss_path_alphas,
)
from robustattr.attribution.saliency import (
    SALIENCY_KINDS, SALIENCY_METHODS, SaliencyKind, SaliencyMethod, gradient_saliency, register_saliency, ig_saliency, input_x_gradient, saliency_map, smoothgrad,
)
from robustattr.attribution.surrogate import SoftplusActivation, softplus_surrogate, swappable_activations
from robustattr.attribution.smoothgrad_certificate import certified_top_k_count, smoothgrad_certificate  # noqa: F401

__all__ = [
    "CPU_POINTS_PER_PASS",
    "activation_bytes_per_image",
    "chunk_size_for_budget",
    "clipped_cross_entropy",
    "default_chunk_size",
    "gradient_saliency",
    "ig_regularizer",
    "ig_saliency",
    "input_x_gradient",
    "integrated_gradients",
    "mean_point_gradients",
    "loss_integrated_gradients",
    "loss_path_alphas",
    "path_gradients",
    "right_riemann_alphas",
    "saliency_map",
    "simple_gradient",
    "smoothgrad",
    "SALIENCY_KINDS",
    "SALIENCY_METHODS",
    "SaliencyKind",
    "register_saliency",
    "SaliencyMethod",
    "SoftplusActivation",
    "softplus_surrogate",
    "swappable_activations",
]
