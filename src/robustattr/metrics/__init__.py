"""Similarity of attribution maps: top-k intersection, Kendall's tau-b, Spearman's rho, mass centre,
cosine similarity, the LENS family of Kamath et al. (AAAI 2024) and our neighbourhood Kendall.

Pure tensor functions, batched over the first dimension and computed on the inputs' device, so
an attack loop never leaves the device to score its iterates (the original called SciPy per image).

- :mod:`~robustattr.metrics.ranking`: ``top_k_intersection``, ``kendall_tau``, ``spearman``, ...
- :mod:`~robustattr.metrics.maps`: ``mass_center``, ``cosine_similarity``
- :mod:`~robustattr.metrics.lens`: the LENS authors' definitions (``lens_recall``, ``lens_precision``,
  ``diverse_top_k_intersection`` and the div variants), 2-D windows or their flat ones (``compat``)
- :mod:`~robustattr.metrics.registry`: ``METRICS``, every similarity above by name with what it needs
- :mod:`~robustattr.metrics.neighbourhood`: ``lens_top_k_intersection`` (w-LENS-prec@k, as the result
  files report it) and ``neighbourhood_kendall_tau`` (ours; ``lens_kendall_tau`` its deprecated name)
"""

from robustattr.metrics.lens import (
    diverse_lens_precision, diverse_lens_recall, diverse_top_k_intersection, diverse_top_k_set, lens_precision,
    lens_recall, lens_top_k_set, lens_window_dilation,
)
from robustattr.metrics.maps import cosine_similarity, mass_center
from robustattr.metrics.neighbourhood import (
    diverse_top_k_mask, lens_kendall_tau, lens_top_k_intersection, neighbourhood, neighbourhood_kendall_tau,
)
from robustattr.metrics.ranking import average_ranks, kendall_tau, spearman, top_k_intersection, top_k_mask
from robustattr.metrics.registry import METRICS, MapMetric, register_metric

__all__ = ["top_k_intersection", "top_k_mask", "kendall_tau", "spearman", "mass_center", "average_ranks",
           "cosine_similarity", "neighbourhood", "diverse_top_k_mask", "lens_top_k_intersection", "lens_kendall_tau",
           "neighbourhood_kendall_tau", "lens_recall", "lens_precision", "diverse_top_k_intersection",
           "diverse_lens_recall", "diverse_lens_precision", "lens_top_k_set", "diverse_top_k_set",
           "lens_window_dilation", "METRICS", "MapMetric", "register_metric"]
