"""IN/CO of reproduction units split by whether the topK objective can move the image at all.

IG with a zero baseline is x ⊙ (mean gradient), so it is exactly 0 wherever the pixel is 0. When
an image has at most ``k_top`` non-zero pixels, the top-``k_top`` mask of its clean map already
holds all the saliency mass, the normalised map keeps it all there under any perturbation, and
topK's objective D = −Σ M·S is constant: its exact gradient is 0 and the walk only moves on float
rounding (spec §4.2; the original has the same objective). Such images report (1, 1, 1) when the
walk does not move, for every model alike, which compresses the differences between methods.

Which images these are depends only on the image (its non-zero pixel count), not on the model,
so the split below is the same for every unit. The spec's numbers are the "all" columns; the
"movable" columns are a diagnostic, not a replacement.

    .venv/bin/python scripts/topk_flat_subset.py results/mnist results/fashion-mnist
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from robustattr import data


def split_unit(unit_dir: Path, nonzero: torch.Tensor) -> dict:
    config = json.loads((unit_dir / "config.json").read_text())
    k_top = json.loads((unit_dir / "eval_attribution.json").read_text())["k_top"]
    with open(unit_dir / "eval_attribution_examples.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["correct"] == "1"]
    out = {"method": unit_dir.name, "objective": config.get("training_objective"), "k_top": k_top}
    for name, keep in (("all", lambda r: True), ("movable", lambda r: nonzero[int(r["index"])] > k_top),
                       ("flat", lambda r: nonzero[int(r["index"])] <= k_top)):
        part = [r for r in rows if keep(r)]
        n = len(part)
        out[name] = {
            "attacked": n,
            "not_found": sum(1 for r in part if r["found"] == "0"),
            "IN": sum(float(r["intersection"]) for r in part) / n if n else None,
            "CO": sum(float(r["kendall"]) for r in part) / n if n else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path, help="results/<dataset> folders")
    parser.add_argument("--root", help="dataset cache folder")
    args = parser.parse_args()
    for folder in args.datasets:
        units = [d for d in sorted(folder.iterdir()) if (d / "eval_attribution_examples.csv").is_file()]
        if not units:
            continue
        dataset = json.loads((units[0] / "config.json").read_text())["dataset"]
        x, _ = data.load(dataset, "test", root=args.root).batch(slice(None))
        nonzero = (x.flatten(1) != 0).sum(1)
        print(f"\n{dataset}: | method | attacked | not found | IN all | CO all | movable (n, not found) | IN movable | CO movable | flat (n, not found) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for unit in units:
            s = split_unit(unit, nonzero)
            a, m, fl = s["all"], s["movable"], s["flat"]
            fmt = lambda v, p: "—" if v is None else (f"{100 * v:.2f}%" if p else f"{v:.4f}")  # noqa: E731
            print(f"| {s['method']} | {a['attacked']} | {a['not_found']} | {fmt(a['IN'], 1)} | {fmt(a['CO'], 0)} | "
                  f"{m['attacked']}, {m['not_found']} | {fmt(m['IN'], 1)} | {fmt(m['CO'], 0)} | {fl['attacked']}, {fl['not_found']} |")


if __name__ == "__main__":
    main()
