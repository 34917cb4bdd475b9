"""LGA's MNIST cost-matched unit (1,356 steps) minus IG-SUM-NORM, image by image, with each unit's
per-image worst case taken over the strong evaluation and the independent attack together
(docs/benchmark.md, MNIST verdict). The paired interval is the report's: `bootstrap_estimate` over the
per-image differences, as `reports.benchmark.paired_difference` does. Run from the repository root.
"""
import csv

import numpy as np

from robustattr.reports.benchmark import bootstrap_estimate


def per_image(strong_csv: str, independent_csv: str) -> dict[int, tuple[dict, dict]]:
    """index -> (strong row, independent row), for the images the strong evaluation attacked."""
    with open(independent_csv) as fh:
        independent = {int(r["index"]): r for r in csv.DictReader(fh)}
    with open(strong_csv) as fh:
        return {int(r["index"]): (r, independent[int(r["index"])]) for r in csv.DictReader(fh)
                if r["correct"] == "1" and int(r["index"]) in independent}


lga = per_image("results/benchmark/mnist/at-cost-25/lga/eval_attribution_strong_examples.csv",
                "results/independent/benchmark-mnist-at-cost-lga/independent_topk_walks.csv")
reference = per_image("results/benchmark/mnist/ig-sum-norm/eval_attribution_strong_examples.csv",
                      "results/independent/benchmark-mnist-ig-sum-norm/independent_topk_walks.csv")
common = sorted(set(lga) & set(reference))
print("common images", len(common))


def worst(pairs: dict[int, tuple[dict, dict]], metric: str, with_independent: bool) -> np.ndarray:
    """Per common image: the strong value, or its minimum with the independent attack's."""
    strong = np.array([float(pairs[k][0][metric]) for k in common])
    independent = np.array([float(pairs[k][1][metric]) for k in common])
    return np.minimum(strong, independent) if with_independent else strong


for metric in ("intersection", "kendall"):
    for name, with_independent in (("strong only", False), ("min(strong, independent)", True)):
        a, b = worst(lga, metric, with_independent), worst(reference, metric, with_independent)
        d = bootstrap_estimate(a - b)
        print(f"{metric:12s} {name:26s} LGA {a.mean():.4f} IGSN {b.mean():.4f} "
              f"diff {d.value:+.4f} [{d.low:+.4f}, {d.high:+.4f}]")
