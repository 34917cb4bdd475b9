"""``robustattr figure``: one test image attacked against each run's model, drawn as a panel.

For each run, the image at ``index`` is attacked with the run's budget and IG steps: by default
with the strong evaluation, drawing the perturbation of the lowest Kendall's τ over all its
members (``attack="strong"``), or with the run's own faithful attack (``attack="faithful"``). The
panel holds the image, its IG map, the attacked image and its IG map, with their top-k
intersection and Kendall's τ, and says when no attack moved the map: an unchanged image is never
shown as an attacked one. ``write_convergence`` draws a run's strong evaluation converging (its
running worst case against steps and against walks). Drawing is ``reports.figures``' job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from robustattr.errors import UserInputError
from robustattr.evaluation._common import load_model_and_data
from robustattr.attacks.attribution_attack import attribution_attack
from robustattr.attacks.settings import STRONG, AttackSettings
from robustattr.config import load_run_or_config
from robustattr.data.catalog import DATASETS
from robustattr.evaluation import STRONG_RESULT_FILE
from robustattr.evaluation.results import ATTRIBUTION_RESULT, read_result
from robustattr.reports.figures import Panel, draw_attack_panels, draw_convergence, draw_training_curves
from robustattr.run_lock import run_dir_lock
from robustattr.training.objectives import REGISTRY

__all__ = ["ATTACKS", "compute_panel", "write_convergence", "write_figure"]

ATTACKS = ("strong", "faithful")


def _to_display(x: torch.Tensor) -> Any:
    """(C, H, W) tensor → (H, W) or (H, W, 3) numpy array for imshow."""
    arr = x.detach().cpu().float()
    return arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).numpy()


def compute_panel(cfg: Any, index: int, attack: str = "strong") -> Panel:
    """Attack test image ``index`` against the run's model (``attack``: strong or faithful); its panel."""
    if attack not in ATTACKS:
        raise UserInputError(f"--attack {attack!r} is not supported; choose from {', '.join(ATTACKS)}")
    model, _meta, split, _n, device = load_model_and_data(cfg)
    if not 0 <= index < len(split):
        raise UserInputError(f"--index {index} is outside the {cfg.eval_split} split (0..{len(split) - 1})")
    info = cfg.dataset_info()
    x, y = split.batch(torch.tensor([index]))
    x, y = x.to(device), y.to(device)
    method = cfg.attribution_attack_method
    strong = attack == "strong" or method == "strong"
    settings = AttackSettings.from_config(cfg, info)
    if strong:
        settings = AttackSettings.of(settings, method=STRONG)
    r = attribution_attack(model, x, y, settings, example_ids=[index])
    if strong:
        member = int(r.worst_member["kendall"][0]) if bool(r.attacked[0]) else -1
        how = f"strong: lowest τ by {r.members[member]}" if member >= 0 else "strong evaluation"
    else:
        how = f"faithful {method}"
    if not bool(r.attacked[0]):
        raise UserInputError(
            f"test image {index} (label {int(y[0])}) is misclassified by {cfg.model_dir}, so it is not "
            "attacked; choose another --index"
        )
    with torch.no_grad():
        predicted = int(model(r.x_adv).argmax(1)[0])
    info_objective = REGISTRY.get(cfg.training_objective)
    objective = info_objective.display if info_objective else cfg.training_objective
    return Panel(
        label=f"{objective}\n{Path(cfg.model_dir).name}",
        image=_to_display(x[0]),
        saliency=r.saliency[0].detach().cpu().numpy(),
        image_adv=_to_display(r.x_adv[0]),
        saliency_adv=r.saliency_adv[0].detach().cpu().numpy(),
        intersection=float(r.intersection[0]),
        kendall=float(r.kendall[0]),
        true_label=int(y[0]),
        predicted_adv=predicted,
        moved=bool(r.found[0]),
        attack=how,
    )


def write_figure(run_dirs: list[str | Path], *, index: int | None = None, out: str | Path | None = None,
                 curves: bool = False, overrides: list[str] | tuple[str, ...] = (), attack: str = "strong") -> Path:
    """``robustattr figure``: the attack panel (one row per run) or, with ``curves``, training curves.

    ``attack``: "strong" (default: the perturbation of the lowest Kendall τ over the strong
    evaluation's members) or "faithful" (the run's configured attack).

    ``overrides`` (``K=V`` strings, as ``--set``) change the attack settings read from each run's
    config, e.g. to draw with the reduced budget its evaluation used.
    """
    configs = [load_run_or_config(str(d), list(overrides)) for d in run_dirs]
    first = Path(configs[0].model_dir)
    with run_dir_lock(first, "figure"):  # the figure goes there by default
        if curves:
            return draw_training_curves([c.model_dir for c in configs], out or first / "figure_training.png")
        if index is None:
            # The test image the original's notebook shows (spec §5), for the built-in datasets.
            dataset = DATASETS.get(configs[0].dataset)
            index = dataset.figure_index if dataset else 0
        panels = [compute_panel(cfg, index, attack) for cfg in configs]
        return draw_attack_panels(panels, out or first / f"figure_attack_{index}.png")


def write_convergence(folder: str | Path, out: str | Path | None = None) -> Path:
    """``robustattr figure --convergence``: the strong evaluation's running worst case (mean IN and
    CO) against steps and against walks, from ``folder/eval_attribution_strong.json`` (a run
    directory or a results folder), to ``out`` (default ``folder/figure_convergence.png``)."""
    path = Path(folder) / STRONG_RESULT_FILE
    if not path.is_file():
        raise UserInputError(f"{path}: not found; run `robustattr eval attribution {folder} --set "
                             "attribution_attack_method=strong` first")
    return draw_convergence(read_result(path, ATTRIBUTION_RESULT), out or Path(folder) / "figure_convergence.png")
