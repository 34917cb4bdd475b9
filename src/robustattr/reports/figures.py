"""Figures: the attack panel of spec §5 (one row per model) and training curves.

matplotlib is imported lazily with the Agg backend, so importing robustattr stays light and
figures render without a display. Files are written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustattr.files import atomic_file
from robustattr.errors import UserInputError
from robustattr.run_files import read_metrics

__all__ = ["Panel", "draw_attack_panels", "draw_training_curves", "draw_convergence", "save_panel", "load_panel"]


@dataclass(frozen=True)
class Panel:
    """One model's row: an image, its IG map, the attacked image and its IG map.

    Attributes:
        label: row title (run and method).
        image, image_adv: (H, W) in [0, 1] or (H, W, 3) in [0, 255] as float arrays.
        saliency, saliency_adv: (H, W) non-negative maps.
        intersection, kendall: similarity of the two maps (top-k intersection in [0, 1], tau-b).
        true_label, predicted_adv: the class before and the prediction after the attack.
        moved: some label-keeping perturbation lowered the map's similarity; False means the
            "attacked" image is the clean one and the row must say so.
        attack: which attack produced the perturbation, in words.
    """

    label: str
    image: np.ndarray
    saliency: np.ndarray
    image_adv: np.ndarray
    saliency_adv: np.ndarray
    intersection: float
    kendall: float
    true_label: int
    predicted_adv: int
    moved: bool = True
    attack: str = ""


_PANEL_ARRAYS = ("image", "saliency", "image_adv", "saliency_adv")


def save_panel(panel: Panel, out: str | Path, *, index: int) -> Path:
    """Keep one row of an attack figure as an ``.npz`` (its four arrays, float32, and its numbers),
    so that a figure with a row per model can be drawn after the checkpoints are gone. ``index``:
    the test image's, recorded beside it (rows of one figure must show the same image)."""
    fields = {k: np.asarray(getattr(panel, k), dtype=np.float32) for k in _PANEL_ARRAYS}
    scalars = {k: np.asarray(getattr(panel, k)) for k in ("label", "intersection", "kendall", "true_label",
                                                          "predicted_adv", "moved", "attack")}
    with atomic_file(Path(out), "wb") as f:
        np.savez_compressed(f, index=np.asarray(index), **fields, **scalars)
    return Path(out)


def load_panel(path: str | Path) -> tuple[int, Panel]:
    """(test image index, :class:`Panel`) from a :func:`save_panel` file."""
    with np.load(Path(path), allow_pickle=False) as z:
        return int(z["index"]), Panel(
            label=str(z["label"]), **{k: z[k] for k in _PANEL_ARRAYS},
            intersection=float(z["intersection"]), kendall=float(z["kendall"]), true_label=int(z["true_label"]),
            predicted_adv=int(z["predicted_adv"]), moved=bool(z["moved"]), attack=str(z["attack"]),
        )


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "sans-serif", "font.size": 11})
    return plt


def _save(fig, out: Path) -> Path:
    out = Path(out)
    with atomic_file(out, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    return out


def _show_image(ax, image: np.ndarray) -> None:
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(np.clip(image, 0, 255).astype(np.uint8))


def draw_attack_panels(panels: list[Panel], out: str | Path) -> Path:
    """Write a PNG with one row per panel: image, IG map, attacked image, its IG map."""
    plt = _pyplot()
    rows = len(panels)
    fig, axes = plt.subplots(rows, 4, figsize=(13, 3.4 * rows), squeeze=False)
    titles = ("Original Image", "Original Image Saliency Map", "Perturbed Image", "Perturbed Image Saliency Map")
    for row, panel in enumerate(panels):
        _show_image(axes[row, 0], panel.image)
        axes[row, 1].imshow(panel.saliency, cmap="hot")
        _show_image(axes[row, 2], panel.image_adv)
        axes[row, 3].imshow(panel.saliency_adv, cmap="hot")
        for col, ax in enumerate(axes[row]):
            ax.set_title(titles[col], fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(panel.label, fontsize=11)
        if panel.moved:
            axes[row, 2].set_xlabel(f"label {panel.true_label}, predicted {panel.predicted_adv}\n{panel.attack}",
                                    fontsize=9)
            axes[row, 3].set_xlabel(
                f"top-k intersection {100 * panel.intersection:.1f}%   Kendall {panel.kendall:.3f}", fontsize=10
            )
        else:
            # The "perturbed" image is the clean one: say so, rather than let τ = 1 read as robustness.
            axes[row, 2].set_title("NOT MOVED by any attack\n(the clean image)", fontsize=10, color="crimson")
            axes[row, 2].set_xlabel(panel.attack, fontsize=9)
            axes[row, 3].set_xlabel("no label-keeping perturbation changed the map", fontsize=10, color="crimson")
    fig.tight_layout()
    path = _save(fig, out)
    plt.close(fig)
    return path


def _read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        raise UserInputError(f"{path}: missing; train the run first (robustattr train CONFIG)")
    return read_metrics(path)


def draw_training_curves(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Loss, natural/adversarial batch accuracy and the IG term against the step, one line per run."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = (
        ("loss", ("loss",), "loss"),
        ("accuracy", ("nat_acc", "natural_accuracy", "adv_acc", "adversarial_accuracy"), "batch accuracy"),
        ("IG term", ("ig_term", "ig_norm", "regularizer"), "‖IG‖₁"),
    )
    for run_dir in map(Path, run_dirs):
        records = _read_metrics(run_dir)
        steps = [r.get("step") for r in records]
        for ax, (_title, keys, _ylabel) in zip(axes, panels):
            for key in keys:
                values = [r.get(key) for r in records]
                if any(v is not None for v in values):
                    pts = [(s, v) for s, v in zip(steps, values) if v is not None and s is not None]
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], label=f"{run_dir.name}: {key}")
    for ax, (title, _keys, ylabel) in zip(axes, panels):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = _save(fig, out)
    plt.close(fig)
    return path


def draw_convergence(result: dict, out: str | Path) -> Path:
    """The strong evaluation's running worst case (mean IN and CO) against steps and against walks
    (members × restarts), from the ``convergence`` object of an ``eval_attribution_strong.json``
    (``evaluation.convergence``). Raises UserInputError for a result without one (an older file)."""
    conv = result.get("convergence") if isinstance(result, dict) else None
    if not isinstance(conv, dict):
        raise UserInputError("this result has no convergence object; run `eval attribution` with "
                             "attribution_attack_method=strong again to get one")
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, axis, xlabel in ((axes[0], "steps", "steps"), (axes[1], "walks", "walks (members x restarts)")):
        curves = conv.get(axis, {})
        for key, label in (("top_k_intersection", "IN"), ("kendall", "CO (Kendall)")):
            ax.plot(curves.get("at", []), curves.get(key, []), marker="o", label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("mean running worst case")
        if axis == "steps":
            ax.set_xscale("log", base=2)
        ax.legend(fontsize=7)
    fig.suptitle("strong evaluation: convergence" + (" (still falling)" if conv.get("still_falling") else ""))
    fig.tight_layout()
    path = _save(fig, out)
    plt.close(fig)
    return path
