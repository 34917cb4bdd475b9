"""Worked example: your own CNN on your own data, trained NATURAL and IG-NORM, then attacked.

Everything goes through the Python API a user has: the data is an ``.npz`` file (here MNIST,
exported by ``export_npz`` below; any arrays x_train, y_train, x_test, y_test work), the model is a
plain ``nn.Module`` with ``nn.ReLU`` modules (not one of robustattr's), the IG-NORM loss is
``robustattr.losses.IGNorm`` in an ordinary training loop, and the evaluation is the strong one
(the worst case per example and metric over a portfolio of attribution attacks), with the paper's
metrics and later work's (cosine, LENS). Output: ``results.json``, ``results.md`` and ``figure.png``.

    python docs/examples/own_model.py --out docs/own-model            # the committed output
    python docs/examples/own_model.py --out /tmp/x --budget tiny      # seconds (the test suite)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robustattr import data
from robustattr.evaluation import attribution_robustness_of
from robustattr.losses import IGNorm
from robustattr.reports.figures import Panel, draw_attack_panels

# steps: training updates; batch; ig_m/pgd_steps: IG-NORM's path points and inner PGD steps;
# eval_n: test images attacked; attack_steps/ig_steps: the evaluation's walk and IG points.
BUDGETS = {
    "full": dict(n_train=10000, n_test=1000, steps=200, batch=32, ig_m=8, pgd_steps=5,
                 eval_n=100, attack_steps=20, ig_steps=20),
    "tiny": dict(n_train=500, n_test=50, steps=4, batch=20, ig_m=4, pgd_steps=2,
                 eval_n=6, attack_steps=2, ig_steps=4),
}
EPSILON, K_TOP, EVAL_K_TOP = 0.3, 200, 100  # the paper's MNIST threat model, pixels in [0, 1]


class SmallCNN(nn.Module):
    """A user's model: two conv blocks and an MLP head, nn.ReLU modules throughout."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def export_npz(path: Path, n_train: int, n_test: int, data_root: str | None = None) -> Path:
    """Write MNIST's first images as uint8 (N, 28, 28) arrays: the kind of file a user brings."""
    train = data.load("mnist", "train", root=data_root)
    test = data.load("mnist", "test", root=data_root)
    np.savez_compressed(path, x_train=train.images[:n_train, 0].numpy(), y_train=train.labels[:n_train].numpy(),
                        x_test=test.images[:n_test, 0].numpy(), y_test=test.labels[:n_test].numpy())
    return path


def train(split: data.ImageSplit, criterion: IGNorm | None, budget: dict, seed: int = 0) -> nn.Module:
    """Adam on shuffled batches; ``criterion`` None is NATURAL training (summed cross-entropy)."""
    torch.manual_seed(seed)
    model = SmallCNN(split.info.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    model.train()
    for step in range(budget["steps"]):
        lo = (step * budget["batch"]) % (len(split) - budget["batch"] + 1)
        x, y = split.batch(order[lo : lo + budget["batch"]])
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y, reduction="sum") if criterion is None else criterion(model, x, y)
        loss.backward()
        optimizer.step()
    return model.eval()


def evaluate(model: nn.Module, test: data.ImageSplit, budget: dict) -> tuple[dict, object]:
    x, y = test.batch(slice(0, budget["eval_n"]))
    with torch.no_grad():
        accuracy = (model(test.batch(slice(0, len(test)))[0]).argmax(1) == test.labels).float().mean().item()
    r = attribution_robustness_of(model, (x, y), epsilon=EPSILON, step_size=0.01, steps=budget["attack_steps"],
                               k_top=K_TOP, eval_k_top=EVAL_K_TOP, n_steps=budget["ig_steps"], strong=True,
                               batch_size=50, seed=0)
    return {"natural_accuracy": accuracy, **r.summary()}, r


def main(out: Path, budget_name: str = "full", data_root: str | None = None) -> dict:
    budget = BUDGETS[budget_name]
    out.mkdir(parents=True, exist_ok=True)
    npz = export_npz(out / "mnist-subset.npz", budget["n_train"], budget["n_test"], data_root)
    cache = data_root or None
    train_split = data.load(f"npz:{npz}", "train", root=cache, pixel_range=(0.0, 1.0))
    test_split = data.load(f"npz:{npz}", "test", root=cache, pixel_range=(0.0, 1.0))
    ig_norm = IGNorm(epsilon=EPSILON, lam=1.0, m=budget["ig_m"], approx_factor=2, pgd_steps=budget["pgd_steps"],
                     step_size=0.01 * 40 / budget["pgd_steps"], bounds=(0.0, 1.0))
    results, panels = {}, []
    for name, criterion in (("NATURAL", None), ("IG-NORM", ig_norm)):
        start = time.perf_counter()
        model = train(train_split, criterion, budget)
        trained = time.perf_counter()
        print(f"{name}: trained in {trained - start:.0f} s", flush=True)
        summary, r = evaluate(model, test_split, budget)
        results[name] = {**summary, "train_seconds": round(trained - start, 1),
                         "eval_seconds": round(time.perf_counter() - trained, 1)}
        i = int(r.attacked.nonzero()[0]) if r.attacked.any() else 0  # the first attacked test image
        with torch.no_grad():
            predicted = int(model(r.x_adv[i : i + 1]).argmax(1))
        panels.append(Panel(label=name, image=test_split.batch([i])[0][0, 0].numpy(), saliency=r.saliency[i].numpy(),
                            image_adv=r.x_adv[i, 0].numpy(), saliency_adv=r.saliency_adv[i].numpy(),
                            intersection=float(r.intersection[i]), kendall=float(r.kendall[i]),
                            true_label=int(test_split.labels[i]), predicted_adv=predicted))
    (out / "mnist-subset.npz").unlink()  # the data is MNIST's; only the results are kept
    (out / "results.json").write_text(json.dumps({"budget": budget, "results": results}, indent=2) + "\n")
    (out / "results.md").write_text(_table(results, budget))
    draw_attack_panels(panels, out / "figure.png")
    return results


def _table(results: dict, budget: dict) -> str:
    keys = [("natural_accuracy", "NA"), ("top_k_intersection", "IN"), ("kendall", "CO (Kendall)"),
            ("spearman", "Spearman"), ("cosine", "cosine"), ("lens_top_k_intersection", "LENS IN (3x3)"),
            ("lens_kendall", "LENS Kendall (3x3)")]
    lines = ["| model | " + " | ".join(label for _, label in keys) + " | train s | eval s |",
             "|---" * (len(keys) + 3) + "|"]
    for name, r in results.items():
        cells = " | ".join(f"{r[k]:.3f}" for k, _ in keys)
        lines.append(f"| {name} | {cells} | {r['train_seconds']} | {r['eval_seconds']} |")
    note = (f"\nStrong evaluation, ε = {EPSILON}, {budget['attack_steps']} steps, k = {K_TOP} (IN at {EVAL_K_TOP}), "
            f"IG with {budget['ig_steps']} points, on the first {budget['eval_n']} test images; "
            "means over the correctly classified ones.\n")
    return "\n".join(lines) + "\n" + note


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/own-model"))
    parser.add_argument("--budget", choices=list(BUDGETS), default="full")
    parser.add_argument("--data-root", default=None, help="robustattr's dataset cache (default $ROBUSTATTR_DATA)")
    args = parser.parse_args()
    print(json.dumps(main(args.out, args.budget, args.data_root), indent=2))
