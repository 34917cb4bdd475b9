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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any, NamedTuple

from robustattr.config import Config, load_config
from robustattr.config import read_json_file
from robustattr.files import atomic_write_bytes
from robustattr.errors import UserInputError
from robustattr.evaluation import attribution_robustness
from robustattr.evaluation.results import ATTRIBUTION_RESULT, PGD_RESULT, ExampleLog, read_result
from robustattr.json_files import NUMBER, dict_of, read_json, record
from robustattr.pipelines.stages import attribution_is_current, is_trained, pgd_is_current, train_or_resume
from robustattr.training.objectives import REGISTRY

__all__ = ["METHODS", "UNIT_FILE", "run_repro", "run_unit"]

log = logging.getLogger(__name__)

#: Units in the order they run (the objectives registry's slugs; the fine-tuned methods start from NATURAL's run).
METHODS = tuple(info.slug for info in REGISTRY.values())
UNIT_FILE = "unit.json"
RUN_FILES = ("config.json", "metrics.jsonl", "eval_pgd.json", "eval_attribution.json",
             "eval_attribution_examples.csv", "eval_attribution_strong.json",
             "eval_attribution_strong_examples.csv")

class Unit(NamedTuple):
    """One recipe, resolved: the file, the training config and the two evaluation configs."""

    path: Path
    preset: Path
    train: Config
    evaluate: Config
    strong: Config

    def digest(self) -> str:
        """sha256 of the recipe and its preset: a unit is redone when either changes."""
        return hashlib.sha256(self.path.read_bytes() + self.preset.read_bytes()).hexdigest()


SECTIONS = ("train", "evaluate", "strong")


def _recipe(recipes: Path, dataset: str, method: str, data_root: str | None) -> Unit:
    """Read ``recipes/<dataset>/<method>.json``: ``{"preset": config file, "train": {...},
    "evaluate": {...}, "strong": {...}}``; training = preset + train, evaluation = preset + train +
    evaluate, strong evaluation = that + strong + ``attribution_attack_method`` "strong" (paths,
    like ``model_dir``, are relative to the current directory)."""
    path = recipes / dataset / f"{method}.json"
    if not path.is_file():
        available = sorted(p.name for p in recipes.iterdir() if p.is_dir()) if recipes.is_dir() else []
        raise UserInputError(f"no recipe {path}; datasets with recipes in {recipes}: {', '.join(available) or 'none'}")
    recipe = read_json_file(path)
    unknown = sorted(set(recipe) - {"preset", *SECTIONS} - {k for k in recipe if k.startswith("_comment")})
    if unknown or not isinstance(recipe.get("preset"), str):
        raise UserInputError(f"{path}: a recipe has the keys preset (a config file), train, evaluate and strong "
                             f"(config values){'; unknown: ' + ', '.join(unknown) if unknown else ''}")
    sections = {}
    for name in SECTIONS:
        sections[name] = recipe.get(name) or {}
        if not isinstance(sections[name], dict):
            raise UserInputError(f"{path}: '{name}' must be an object of config values")
    overrides = [f"data_root={json.dumps(data_root)}"] if data_root else []
    train_layer = (sections["train"], f"{path} (train)")
    train_cfg = load_config(recipe["preset"], overrides, layers=[train_layer])
    eval_layer = (sections["evaluate"], f"{path} (evaluate)")
    eval_cfg = load_config(recipe["preset"], overrides, layers=[train_layer, eval_layer])
    method_given = sections["strong"].get("attribution_attack_method", "strong")
    if method_given != "strong":
        raise UserInputError(f"{path}: strong.attribution_attack_method is {method_given!r}; the strong section "
                             "configures the strong evaluation, so leave it out or give \"strong\"")
    strong_layer = ({**sections["strong"], "attribution_attack_method": "strong"}, f"{path} (strong)")
    strong_cfg = load_config(recipe["preset"], overrides, layers=[train_layer, eval_layer, strong_layer])
    if train_cfg.dataset != dataset:
        raise UserInputError(f"{path}: dataset is '{train_cfg.dataset}', expected '{dataset}' from its folder")
    return Unit(path, Path(recipe["preset"]), train_cfg, eval_cfg, strong_cfg)


def _machine() -> dict[str, Any]:
    import torch

    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "device": str(torch.device("cuda" if torch.cuda.is_available() else "cpu")),
            "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


def _ensure_init_run(cfg: Config, recipes: Path, dataset: str, data_root: str | None) -> None:
    """Train the recipe whose run ``cfg.init_from`` names, when that run is not trained yet."""
    if not cfg.init_from:
        return
    target = Path(cfg.init_from).resolve()
    for method in METHODS:
        path = recipes / dataset / f"{method}.json"
        if not path.is_file():
            continue
        other = _recipe(recipes, dataset, method, data_root).train
        if Path(other.model_dir).resolve() == target:
            if not is_trained(other):
                log.info("repro: %s starts from %s's run, which is not trained here: training it first", cfg.model_dir, method)
                train_or_resume(other)
            return
    # Not another recipe's run: training reports a missing init_from itself.


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
    if not force and unit_file.is_file():
        done = read_json(unit_file, record({}), kind="unit record", fix="delete it to run the unit again")
        if done.get("recipe_sha256") == digest:
            log.info("repro: %s/%s finished before (recipe unchanged); skipped", dataset, method)
            return {**done, "skipped": True}

    run_dir = Path(cfg.model_dir)
    phases: dict[str, dict[str, Any]] = {}
    times_file = run_dir / "repro_phases.json"  # survives an interruption, so resumed phases keep their time

    def phase(name: str, fn: Any) -> None:
        earlier = read_json(times_file, dict_of(record({"seconds": NUMBER})), kind="phase timings",
                            fix="delete it (only the reported times depend on it)") if times_file.exists() else {}
        began = time.perf_counter()
        status = fn()
        seconds = time.perf_counter() - began
        if status == "reused" and name in earlier:
            phases[name] = {**earlier[name], "status": "reused"}
        else:
            previous = earlier.get(name, {}).get("seconds", 0.0) if status == "resumed" else 0.0
            phases[name] = {"seconds": round(previous + seconds, 1), "status": status}
        earlier[name] = phases[name]
        atomic_write_bytes(times_file, json.dumps(earlier, indent=2).encode())
        log.info("repro: %s/%s %s: %s in %.0f s", dataset, method, name, status, seconds)

    def train() -> str:
        _ensure_init_run(cfg, recipes, dataset, data_root)
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

    for name in RUN_FILES:
        if (run_dir / name).is_file():
            atomic_write_bytes(out / name, (run_dir / name).read_bytes())
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
        "machine": _machine(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # Written last: its presence marks the unit finished.
    atomic_write_bytes(unit_file, (json.dumps(unit, indent=2) + "\n").encode())
    return unit


def _figure_index(dataset: str, run_dirs: list[Path]) -> int | None:
    """A test image every run classified correctly and attacked (per the per-example CSV in each
    folder): the original notebook's image when it qualifies, else the first; None if none."""
    from robustattr.data.catalog import DATASETS
    from robustattr.evaluation import ATTRIBUTION_EXAMPLES_FILE

    common: set[int] | None = None
    for run_dir in run_dirs:
        attacked = {row["index"] for row in ExampleLog.read_rows(run_dir / ATTRIBUTION_EXAMPLES_FILE).values()
                    if row["correct"]}
        common = attacked if common is None else common & attacked
    if not common:
        return None
    preferred = DATASETS[dataset].figure_index if dataset in DATASETS else None
    return preferred if preferred in common else min(common)


def _attack_overrides(cfg: Config) -> list[str]:
    """The strong evaluation's attack settings as ``K=V`` strings, so a figure shows the attack it
    measured (the figure draws the strong evaluation's lowest-τ perturbation)."""
    values = cfg.to_dict()
    settings = attribution_robustness.result_settings(cfg)
    return [f"{k}={json.dumps(values[k])}" for k in settings if k in values and k != "num_attribution_examples"]


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
    # Default: every method with a recipe for the dataset, in the order fine-tuning needs.
    methods = list(methods or [m for m in METHODS if (recipes / dataset / f"{m}.json").is_file()] or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserInputError(f"unknown method {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    for method in methods:
        _recipe(recipes, dataset, method, data_root)  # every recipe checked before hours of work start
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

