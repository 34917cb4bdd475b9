"""The registry of map similarities: one :class:`MapMetric` per metric, with what it needs.

Every similarity of two attribution maps robustattr reports is here with its metadata, so that a
caller (an evaluation, a benchmark table, a test) can compute any of them by name with one call,
``METRICS[name].compare(a, b, k=..., window=...)``, and list them without keeping its own copy of
their names. A new metric is a pure function in this package plus one :func:`register_metric`.

    >>> from robustattr.metrics import METRICS
    >>> METRICS["lens_recall"].compare(a, b, k=100, window=3)     # (B,), a and b (B, H, W)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from robustattr.metrics.lens import (
    diverse_lens_precision, diverse_lens_recall, diverse_top_k_intersection, lens_precision, lens_recall,
)
from robustattr.metrics.maps import cosine_similarity
from robustattr.metrics.neighbourhood import lens_top_k_intersection, neighbourhood_kendall_tau
from robustattr.metrics.ranking import kendall_tau, spearman, top_k_intersection

__all__ = ["MapMetric", "METRICS", "register_metric"]


@dataclass(frozen=True)
class MapMetric:
    """One similarity of two batches of maps.

    name: how results and tables call it. function: the pure function, ``(a, b, ...) -> (B,)``.
    uses_k: it takes the top-k size ``k``; uses_window: it takes the neighbourhood side ``window``.
    identical: its value for two identical maps (the most similar; lower means less similar).
    lowest: its smallest possible value. source: where it comes from, one line.
    """

    name: str
    function: Callable[..., Tensor]
    uses_k: bool = False
    uses_window: bool = False
    identical: float = 1.0
    lowest: float = 0.0
    source: str = ""

    def compare(self, a: Tensor, b: Tensor, *, k: int | None = None, window: int = 3) -> Tensor:
        """(B,) similarity of maps ``a`` and ``b`` (B, ...) as a float tensor; ``k`` is required when
        :attr:`uses_k`."""
        kwargs = {}
        if self.uses_k:
            if k is None:
                raise ValueError(f"metric {self.name} needs k")
            kwargs["k"] = k
        if self.uses_window:
            kwargs["window"] = window
        return self.function(a, b, **kwargs).to(a.dtype if a.is_floating_point() else None)


#: name → metric, in the order tables list them.
METRICS: dict[str, MapMetric] = {}


def register_metric(metric: MapMetric) -> MapMetric:
    """Add ``metric`` to :data:`METRICS` (a name already taken is an error)."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


for _metric in (
    MapMetric("top_k_intersection", top_k_intersection, uses_k=True, source="Ghorbani et al. 2019; the paper's IN"),
    MapMetric("kendall", kendall_tau, lowest=-1.0, source="Kendall's tau-b; the paper's CO"),
    MapMetric("spearman", spearman, lowest=-1.0, source="Spearman's rho (Ghorbani et al. 2019)"),
    MapMetric("cosine", cosine_similarity, lowest=-1.0, source="cosine similarity (Wang & Kong 2022)"),
    MapMetric("lens_recall", lens_recall, uses_k=True, uses_window=True, source="w-LENS-recall@k (Kamath et al.)"),
    MapMetric("lens_precision", lens_precision, uses_k=True, uses_window=True,
              source="w-LENS-prec@k (Kamath et al.)"),
    MapMetric("diverse_top_k_intersection", diverse_top_k_intersection, uses_k=True, uses_window=True,
              source="top-k-div intersection (Kamath et al.)"),
    MapMetric("diverse_lens_recall", diverse_lens_recall, uses_k=True, uses_window=True,
              source="w-LENS-recall@k-div (Kamath et al.)"),
    MapMetric("diverse_lens_precision", diverse_lens_precision, uses_k=True, uses_window=True,
              source="w-LENS-prec@k-div (Kamath et al.)"),
    MapMetric("lens_intersection", lens_top_k_intersection, uses_k=True, uses_window=True,
              source="w-LENS-prec@k as the result files' lens_top_k_intersection"),
    MapMetric("neighbourhood_kendall", neighbourhood_kendall_tau, uses_window=True, lowest=-1.0,
              source="ours: Kendall's tau of the window-max maps (no LENS Kendall exists)"),
):
    register_metric(_metric)
