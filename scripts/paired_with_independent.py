"""A unit minus a reference unit, image by image, with each unit's per-image worst case taken over
the strong evaluation and the independent attack (`scripts/independent_topk_walks.py`) together
(docs/benchmark.md, the verdicts). The paired interval is the benchmark report's: `bootstrap_estimate`
over the per-image differences, as `reports.benchmark.paired_difference` does. Run from the
repository root, e.g. MNIST's LGA at 1,356 steps against IG-SUM-NORM:

    .venv/bin/python scripts/paired_with_independent.py \\
        results/benchmark/mnist/at-cost-25/lga results/independent/benchmark-mnist-at-cost-lga \\
        results/benchmark/mnist/ig-sum-norm results/independent/benchmark-mnist-ig-sum-norm

Each unit is a pair of folders: its benchmark folder (``eval_attribution_strong_examples.csv``) and
its independent-attack folder (``independent_topk_walks.csv``). Prints, for the top-k intersection
and Kendall's τ, both units' means and the paired difference, strong alone and with the independent
attack's minimum.
"""
import argparse
import csv
from pathlib import Path

import numpy as np

from robustattr.reports.benchmark import bootstrap_estimate

STRONG_CSV, INDEPENDENT_CSV = "eval_attribution_strong_examples.csv", "independent_topk_walks.csv"
STRONG_COLUMNS, INDEPENDENT_COLUMNS = ("index", "correct", "intersection", "kendall"), ("index", "intersection", "kendall")


def per_image(strong_dir: Path, independent_dir: Path) -> dict[int, tuple[dict, dict]]:
    """index -> (strong row, independent row), for the images the strong evaluation attacked."""
    with open(independent_dir / INDEPENDENT_CSV) as fh:
        independent = {int(r["index"]): r for r in csv.DictReader(fh)}
    with open(strong_dir / STRONG_CSV) as fh:
        return {int(r["index"]): (r, independent[int(r["index"])]) for r in csv.DictReader(fh)
                if r["correct"] == "1" and int(r["index"]) in independent}


def worst(pairs: dict[int, tuple[dict, dict]], common: list[int], metric: str, with_independent: bool) -> np.ndarray:
    """Per common image: the strong value, or its minimum with the independent attack's."""
    strong = np.array([float(pairs[k][0][metric]) for k in common])
    independent = np.array([float(pairs[k][1][metric]) for k in common])
    return np.minimum(strong, independent) if with_independent else strong


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("unit_strong", type=Path, help="the unit's benchmark folder")
    p.add_argument("unit_independent", type=Path, help="the unit's independent-attack folder")
    p.add_argument("reference_strong", type=Path, help="the reference's benchmark folder")
    p.add_argument("reference_independent", type=Path, help="the reference's independent-attack folder")
    args = p.parse_args()
    files = [args.unit_strong / STRONG_CSV, args.unit_independent / INDEPENDENT_CSV,
             args.reference_strong / STRONG_CSV, args.reference_independent / INDEPENDENT_CSV]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        p.error(f"no such file: {', '.join(missing)}")  # one line, exit 2
    for f, columns in zip(files, [STRONG_COLUMNS, INDEPENDENT_COLUMNS] * 2):
        with open(f, newline="") as fh:
            lacking = sorted(set(columns) - set(next(csv.reader(fh), [])))
        if lacking:
            p.error(f"{f}: no column {', '.join(lacking)}; is it the file its name says?")
    unit = per_image(args.unit_strong, args.unit_independent)
    reference = per_image(args.reference_strong, args.reference_independent)
    common = sorted(set(unit) & set(reference))
    if not common:
        p.error("the two units have no attacked image in common with an independent-attack row")
    print("common images", len(common))
    for metric in ("intersection", "kendall"):
        for name, with_independent in (("strong only", False), ("min(strong, independent)", True)):
            a = worst(unit, common, metric, with_independent)
            b = worst(reference, common, metric, with_independent)
            d = bootstrap_estimate(a - b)
            print(f"{metric:12s} {name:26s} unit {a.mean():.4f} reference {b.mean():.4f} "
                  f"diff {d.value:+.4f} [{d.low:+.4f}, {d.high:+.4f}]")


if __name__ == "__main__":
    main()
