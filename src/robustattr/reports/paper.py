"""The paper's reported numbers (Table 1 and the MNIST row of Table 2), from shared/paper-results.md.

Approximate (± a point): use them for the shape of a comparison, never as exact thresholds.
Keys: dataset name as in ``robustattr.data.DATASETS``, method as in ``METHOD_NAMES``.
"""

from __future__ import annotations

from robustattr.training.objectives import REGISTRY

#: training_objective -> the method's name in tables (the objectives registry's ``display``).
METHOD_NAMES = {name: info.display for name, info in REGISTRY.items()}

# (dataset, method) -> (NA, AA, IN, CO); fractions in [0, 1] except CO (Kendall's tau).
PAPER_RESULTS: dict[tuple[str, str], tuple[float, float, float, float]] = {
    ("mnist", "NATURAL"): (0.9917, 0.0000, 0.4661, 0.1758),
    ("mnist", "IG-NORM"): (0.9874, 0.8143, 0.7136, 0.2841),
    ("mnist", "IG-SUM-NORM"): (0.9834, 0.8817, 0.7245, 0.3111),
    ("mnist", "Madry"): (0.9840, 0.9247, 0.6256, 0.2067),
    ("fashion-mnist", "NATURAL"): (0.9086, 0.0001, 0.3901, 0.4610),
    ("fashion-mnist", "IG-NORM"): (0.8513, 0.7037, 0.7208, 0.6736),
    ("fashion-mnist", "IG-SUM-NORM"): (0.8544, 0.7026, 0.7211, 0.6758),
    ("gtsrb", "NATURAL"): (0.9857, 0.2105, 0.5416, 0.6790),
    ("gtsrb", "IG-NORM"): (0.9702, 0.7524, 0.7481, 0.7555),
    ("gtsrb", "IG-SUM-NORM"): (0.9568, 0.7712, 0.7404, 0.7573),
    ("flower17", "NATURAL"): (0.8676, 0.0000, 0.0812, 0.4978),
    ("flower17", "IG-NORM"): (0.8529, 0.2426, 0.6468, 0.7591),
    ("flower17", "IG-SUM-NORM"): (0.8235, 0.4706, 0.6633, 0.7974),
}


def paper_result(dataset: str, method: str) -> tuple[float, float, float, float] | None:
    """(NA, AA, IN, CO) the paper reports for this setting, or None where it reports none."""
    return PAPER_RESULTS.get((dataset, method))
