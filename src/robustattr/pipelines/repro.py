"""``robustattr repro DATASET``: the paper's Table 1 for one dataset, unit by unit, resumable.

A *unit* is one (dataset, method) recipe, ``configs/repro/<dataset>/<method>.json`` — an ordinary
config holding both its training and its evaluation settings. Running a unit trains (or resumes)
its run in the recipe's ``model_dir``, evaluates NA/AA on the test set and IN/CO twice on the
recipe's subsets — the faithful attack (``evaluate``) and the ``strong`` evaluation (``strong``:
values laid over ``evaluate``, with ``attribution_attack_method`` "strong") — draws its attack figure
(from the strong evaluation), and copies the small artifacts to ``results/<dataset>/<method>/``:
the resolved config, ``metrics.jsonl``, the evaluation JSON files and per-example CSVs, the figure
and ``unit.json`` (wall-clock per phase, the machine, the recipe's digest). A unit whose
``unit.json`` names the current recipe's digest is finished and skipped; checkpoints stay in the
run directory and are never copied. A recipe with ``init_from`` another recipe's run (fine-tuning
from NATURAL) gets that run trained first when its checkpoint is missing.

At the end the dataset's report (Table 1 layout, paper values beside ours) is written to
``results/<dataset>/report.md``; when every unit's checkpoint is at hand, also one attack figure
with a row per method on the same test image and the training curves.

The unit machinery (reading recipes, timing phases, the figure's test image) is
``pipelines.units``, shared with ``robustattr benchmark``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from robustattr.config import Config
from robustattr.evaluation.results import ATTRIBUTION_RESULT, PGD_RESULT, read_result
from robustattr.files import atomic_write_bytes
from robustattr.pipelines.stages import attribution_is_current, is_trained, pgd_is_current, train_or_resume
from robustattr.pipelines.units import (
    METHODS, PhaseClock, Unit, attack_overrides, copy_run_files, ensure_init_run, figure_index, finished_unit, machine,
    read_recipe, select_methods,
)

__all__ = ["METHODS", "UNIT_FILE", "run_repro", "run_unit"]

log = logging.getLogger(__name__)

UNIT_FILE = "unit.json"
RUN_FILES = ("config.json", "metrics.jsonl", "eval_pgd.json", "eval_attribution.json",
             "eval_attribution_examples.csv", "eval_attribution_strong.json",
             "eval_attribution_strong_examples.csv")


def _recipe(recipes: Path, dataset: str, method: str, data_root: str | None) -> Unit:
    """Read ``recipes/<dataset>/<method>.json`` (``pipelines.units.read_recipe``; no certify section)."""
    return read_recipe(recipes, dataset, method, data_root)


def _figure_index(dataset: str, run_dirs: list[Path]) -> int | None:
    return figure_index(dataset, run_dirs)


def _attack_overrides(cfg: Config) -> list[str]:
    return attack_overrides(cfg)


def run_unit(dataset: str, method: str, *, recipes: str | Path = "configs/repro", results: str | Path = "results",
             data_root: str | None = None, force: bool = False) -> dict[str, Any]:
    """Run or finish one unit; returns its ``unit.json`` content (``"skipped": True`` if it was finished)."""
    from robustattr.evaluation import (
        ATTRIBUTION_RESULT_FILE, PGD_RESULT_FILE, STRONG_RESULT_FILE, evaluate_attribution, evaluate_pgd,
    )
    from robustattr.pipelines.figure import write_figure

    recipes, results = Path(recipes), Path(results)
    unit_recipe = _recipe(recipes, dataset, method, data_root)
    path, cfg, eval_cfg, strong_cfg = unit_recipe.path, unit_recipe.train, unit_recipe.evaluate, unit_recipe.strong
    out = results / dataset / method
    unit_file = out / UNIT_FILE
    digest = unit_recipe.digest()  # now: an edit while the unit runs must not be credited to it
    done = None if force else finished_unit(unit_file, digest)
    if done is not None:
        log.info("repro: %s/%s finished before (recipe unchanged); skipped", dataset, method)
        return {**done, "skipped": True}

    run_dir = Path(cfg.model_dir)
    # The times survive an interruption, so resumed phases keep their time.
    phase = PhaseClock(run_dir / "repro_phases.json", f"repro: {dataset}/{method}")
    phases = phase.phases

    def train() -> str:
        ensure_init_run(cfg, recipes, dataset, data_root)
        return train_or_resume(cfg)

    phase("train", train)
    phase("eval_pgd", lambda: "reused" if pgd_is_current(eval_cfg) else (evaluate_pgd(eval_cfg) and "evaluated"))
    phase("eval_attribution", lambda: "reused" if attribution_is_current(eval_cfg)
          else (evaluate_attribution(eval_cfg) and "evaluated"))
    phase("eval_attribution_strong", lambda: "reused" if attribution_is_current(strong_cfg)
          else (evaluate_attribution(strong_cfg) and "evaluated"))
    out.mkdir(parents=True, exist_ok=True)
    def figure() -> str:
        index = _figure_index(dataset, [run_dir])
        if index is None:
            return "skipped (no test image of the subset was attacked)"
        write_figure([run_dir], index=index, out=out / "figure.png", overrides=_attack_overrides(strong_cfg))
        return f"drawn (test image {index})"

    phase("figure", figure)

    copy_run_files(run_dir, out, RUN_FILES)
    pgd = read_result(run_dir / PGD_RESULT_FILE, PGD_RESULT)
    attr = read_result(run_dir / ATTRIBUTION_RESULT_FILE, ATTRIBUTION_RESULT)
    strong = read_result(run_dir / STRONG_RESULT_FILE, ATTRIBUTION_RESULT)
    unit = {
        "dataset": dataset, "method": method, "recipe": str(path), "recipe_sha256": digest,
        "run_dir": str(run_dir), "train_steps": pgd.get("checkpoint_step"), "init_from": cfg.init_from,
        "phases": phases, "total_seconds": round(sum(p["seconds"] for p in phases.values()), 1),
        "results": {"natural_accuracy": pgd.get("natural_accuracy"), "adversarial_accuracy": pgd.get("adversarial_accuracy"),
                    "top_k_intersection": attr.get("top_k_intersection"), "kendall": attr.get("kendall"),
                    "spearman": attr.get("spearman"), "num_attacked": attr.get("num_attacked"),
                    "num_not_found": attr.get("num_not_found"),
                    "strong": {k: strong.get(k) for k in ("top_k_intersection", "kendall", "spearman",
                                                          "num_attacked", "num_not_found")}},
        "machine": machine(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # Written last: its presence marks the unit finished.
    atomic_write_bytes(unit_file, (json.dumps(unit, indent=2) + "\n").encode())
    return unit


def _dataset_figures(dataset: str, units: list[tuple[str, Unit]], results: Path) -> list[str]:
    """The per-dataset figures; skipped (with a note) when a unit's checkpoint is not here."""
    from robustattr.pipelines.figure import write_figure
    from robustattr.reports import draw_training_curves

    notes = []
    curve_dirs = [results / dataset / m for m, _ in units if (results / dataset / m / "metrics.jsonl").is_file()]
    if curve_dirs:
        notes.append(f"training curves: {draw_training_curves(curve_dirs, results / dataset / 'training-curves.png')}")
    missing = [m for m, unit in units if not is_trained(unit.train)]
    if missing:
        notes.append(f"attack figure with every method not redrawn: no checkpoint here for {', '.join(missing)}")
    elif units:
        run_dirs = [Path(unit.train.model_dir) for _, unit in units]
        index = _figure_index(dataset, [results / dataset / m for m, _ in units])
        if index is None:
            notes.append("attack figure not drawn: no test image was attacked on every model")
        else:
            figure = write_figure(run_dirs, index=index, out=results / dataset / "figure-methods.png",
                                  overrides=_attack_overrides(units[0][1].strong))
            notes.append(f"attack figure (test image {index}, one row per method): {figure}")
    return notes


def run_repro(dataset: str, *, methods: list[str] | None = None, recipes: str | Path = "configs/repro",
              results: str | Path = "results", data_root: str | None = None, force: bool = False) -> str:
    """Run or resume the dataset's units, then write and return its report (Markdown)."""
    from robustattr.reports import collect_rows, format_criteria, format_rows, judge_aims, judge_shape

    recipes, results = Path(recipes), Path(results)
    methods = select_methods(recipes, dataset, methods, lambda m: _recipe(recipes, dataset, m, data_root))
    lines = []
    for method in methods:
        unit = run_unit(dataset, method, recipes=recipes, results=results, data_root=data_root, force=force)
        state = "finished before" if unit.get("skipped") else f"done in {unit['total_seconds']:.0f} s"
        phases = ", ".join(f"{name} {p['seconds']:.0f} s ({p['status']})" for name, p in unit["phases"].items())
        lines.append(f"- {dataset}/{method}: {state}; {phases}")
    units = [(m, _recipe(recipes, dataset, m, data_root)) for m in METHODS if (results / dataset / m / UNIT_FILE).is_file()]
    rows = collect_rows([results / dataset / m for m, _ in units])
    sections = [f"# robustattr repro — {dataset}", ""]
    for evaluation, title in (("faithful", "IN/CO under the faithful attack (the paper's)"),
                              ("strong", "IN/CO under the strong evaluation (worst case over a portfolio)")):
        chosen = [r for r in rows if r.evaluation == evaluation]
        if chosen:
            sections += [f"## {title}", "", format_rows(chosen, "md"), "### The paper's shape", "",
                         format_criteria(judge_shape(chosen)), ""]
    sections += ["## Aims of the reproduction's training", "", format_criteria(judge_aims(rows)), ""]
    notes = _dataset_figures(dataset, units, results)
    text = "\n".join([*sections, "Units:", *lines, "", *notes, ""])
    atomic_write_bytes(results / dataset / "report.md", text.encode())
    return text

