"""The paper's Table 1 layout (method, NA, AA, IN, CO) from the result files of any set of runs.

Each run directory contributes ``config.json`` (dataset, objective, training budget),
``eval_pgd.json`` (NA, AA) and ``eval_attribution.json`` (IN, CO). Beside our numbers stand the
paper's for the same dataset and method, and each row carries the budgets it used, flagged
"reduced" wherever they fall short of the paper's setting, so a CPU-scale run is never mistaken
for the full one.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from robustattr.errors import UserInputError
from robustattr.evaluation.results import ATTRIBUTION_RESULT, PGD_RESULT, read_result
from robustattr.json_files import Shape
from robustattr.reports.paper import METHOD_NAMES, paper_result
from robustattr.run_files import read_run_config

__all__ = ["RunRow", "collect_rows", "format_rows", "report"]

FORMATS = ("md", "csv", "json")


@dataclass
class RunRow:
    """One line of the table: our numbers, the paper's, and the budgets behind ours."""

    run: str
    dataset: str
    method: str
    natural_accuracy: float | None
    adversarial_accuracy: float | None
    top_k_intersection: float | None
    kendall: float | None
    paper: dict[str, float] | None
    budget: dict[str, Any] = field(default_factory=dict)
    reduced: list[str] = field(default_factory=list)


def _read_result(path: Path, shape: Shape) -> dict[str, Any] | None:
    return read_result(path, shape) if path.exists() or path.is_symlink() else None


def _setting(result: dict[str, Any], key: str, default: Any = None) -> Any:
    settings = result.get("settings")
    if isinstance(settings, dict) and key in settings:
        return settings[key]
    return result.get(key, default)


def _paper_budget(dataset: str, objective: str) -> dict[str, Any]:
    from robustattr.config import load_config

    cfg = load_config(None, base={"dataset": dataset, "training_objective": objective}).to_dict()
    return cfg


def collect_rows(run_dirs: list[str | Path]) -> list[RunRow]:
    """Read each run directory's config and evaluation files into a ``RunRow``."""
    from robustattr.checkpoints import list_checkpoints

    rows = []
    for run_dir in map(Path, run_dirs):
        config = read_run_config(run_dir) if (run_dir / "config.json").exists() else None
        if config is None:
            raise UserInputError(f"{run_dir}: not a run directory (no config.json); give the model_dir of a trained run")
        dataset, objective = config.get("dataset", "?"), config.get("training_objective", "nat")
        method = METHOD_NAMES.get(objective, objective)
        pgd = _read_result(run_dir / "eval_pgd.json", PGD_RESULT) or {}
        attr = _read_result(run_dir / "eval_attribution.json", ATTRIBUTION_RESULT) or {}
        try:
            paper_cfg = _paper_budget(dataset, objective)
        except UserInputError as exc:
            raise UserInputError(f"run config {run_dir / 'config.json'}: {exc}") from None
        # A results folder has no checkpoints: the evaluations name the step they evaluated.
        steps_done = max(list_checkpoints(run_dir), default=None)
        if steps_done is None:
            steps_done = pgd.get("checkpoint_step") or attr.get("checkpoint_step") or 0
        budget: dict[str, Any] = {"train_steps": steps_done, "init_from": config.get("init_from")}
        reduced = []
        if steps_done < paper_cfg["max_num_training_steps"]:
            reduced.append(f"training {steps_done} of {paper_cfg['max_num_training_steps']} steps")
        if objective in ("adv", "ar", "adv_ar"):
            for key in ("m", "num_steps") if objective != "adv" else ("num_steps",):
                if config.get(key, paper_cfg[key]) < paper_cfg[key]:
                    reduced.append(f"training {key} {config.get(key)} (paper {paper_cfg[key]})")
        if pgd:
            aa_examples = pgd.get("num_adversarial_examples") or pgd.get("num_examples")
            budget["pgd"] = {
                "examples": aa_examples,
                "epsilon": _setting(pgd, "epsilon"),
                "steps": _setting(pgd, "num_steps"),
                "step_size": _setting(pgd, "step_size"),
            }
            if (pgd.get("num_examples") or 0) < paper_cfg["num_eval_examples"]:
                reduced.append(f"NA on {pgd.get('num_examples')} of {paper_cfg['num_eval_examples']} test images")
            if (aa_examples or 0) < paper_cfg["num_eval_examples"]:
                reduced.append(f"AA on {aa_examples} of {paper_cfg['num_eval_examples']} test images")
            if (_setting(pgd, "num_steps") or 0) < paper_cfg["num_steps"]:
                reduced.append(f"AA PGD {_setting(pgd, 'num_steps')} steps (paper {paper_cfg['num_steps']})")
        if attr:
            attack = {
                "examples": attr.get("num_examples"),
                "attacked": attr.get("num_attacked"),
                "method": _setting(attr, "attribution_attack_method"),
                "steps": _setting(attr, "attribution_attack_steps"),
                "times": _setting(attr, "attribution_attack_times"),
                "ig_steps": _setting(attr, "num_IG_steps"),
                "epsilon": _setting(attr, "epsilon"),
            }
            budget["attribution_attack"] = attack
            for key, label in (
                ("num_eval_examples", "examples"),
                ("attribution_attack_steps", "steps"),
                ("attribution_attack_times", "times"),
                ("num_IG_steps", "ig_steps"),
            ):
                ours = attack["examples"] if key == "num_eval_examples" else attack[label]
                if ours is not None and ours < paper_cfg[key]:
                    reduced.append(f"attribution attack {label} {ours} (paper {paper_cfg[key]})")
        paper = paper_result(dataset, method)
        rows.append(RunRow(
            run=str(run_dir),
            dataset=dataset,
            method=method,
            natural_accuracy=pgd.get("natural_accuracy"),
            adversarial_accuracy=pgd.get("adversarial_accuracy"),
            top_k_intersection=attr.get("top_k_intersection"),
            kendall=attr.get("kendall"),
            paper=dict(zip(("NA", "AA", "IN", "CO"), paper)) if paper else None,
            budget=budget,
            reduced=reduced,
        ))
    return rows


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f}%"


def _tau(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def format_rows(rows: list[RunRow], fmt: str = "md") -> str:
    """Render rows as Markdown (default), CSV or JSON."""
    if fmt not in FORMATS:
        raise UserInputError(f"unknown report format '{fmt}'; choose from {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps([asdict(r) for r in rows], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["run", "dataset", "method", "NA", "AA", "IN", "CO",
                         "paper_NA", "paper_AA", "paper_IN", "paper_CO", "reduced"])
        for r in rows:
            p = r.paper or {}
            writer.writerow([r.run, r.dataset, r.method, r.natural_accuracy, r.adversarial_accuracy,
                             r.top_k_intersection, r.kendall, p.get("NA"), p.get("AA"), p.get("IN"),
                             p.get("CO"), "; ".join(r.reduced)])
        return out.getvalue()
    lines = [
        "| dataset | method | NA | AA | IN | CO | paper NA | paper AA | paper IN | paper CO | run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r.paper or {}
        lines.append(
            f"| {r.dataset} | {r.method} | {_pct(r.natural_accuracy)} | {_pct(r.adversarial_accuracy)} | "
            f"{_pct(r.top_k_intersection)} | {_tau(r.kendall)} | {_pct(p.get('NA'))} | {_pct(p.get('AA'))} | "
            f"{_pct(p.get('IN'))} | {_tau(p.get('CO'))} | `{r.run}` |"
        )
    lines.append("")
    lines.append("Budgets (paper values in parentheses):")
    for r in rows:
        note = "; ".join(r.reduced) if r.reduced else "the paper's full setting"
        lines.append(f"- `{r.run}` ({r.method}): {'REDUCED — ' if r.reduced else ''}{note}")
    return "\n".join(lines) + "\n"


def report(run_dirs: list[str | Path], fmt: str = "md") -> str:
    """``robustattr report``: the table for ``run_dirs`` in the requested format."""
    return format_rows(collect_rows(run_dirs), fmt)
