"""The paper's Table 1 layout (method, NA, AA, IN, CO) from the result files of any set of runs.

Each run directory contributes ``config.json`` (dataset, objective, training budget),
``eval_pgd.json`` (NA, AA) and ``eval_attribution.json`` (IN, CO under the faithful attack) and/or
``eval_attribution_strong.json`` (IN, CO under the strong evaluation's worst case): a run with
both gives two rows, and each says how many attacked images its attack left unmoved (reported as
IN = CO = 1, so a row with many of them overstates robustness). Beside our numbers stand the
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
from robustattr.json_files import NUMBER, Shape, record
from robustattr.reports.paper import METHOD_NAMES, paper_result
from robustattr.run_files import read_run_config

__all__ = ["RunRow", "collect_rows", "format_rows", "report"]

#: What the report reads of ``eval_certify.json`` (``robustattr.evaluation.certify``).
CERTIFY_RESULT = record({"certified_top_k_intersection": NUMBER, "attacked_top_k_intersection": NUMBER})

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
    evaluation: str = "faithful"  # which attribution evaluation IN/CO come from: faithful | strong
    num_attacked: int | None = None
    num_unmoved: int | None = None  # attacked images no attack moved below (1, 1, 1)
    # The strong evaluation's second convention: images without a label-keeping iterate dropped
    # from the means (ART/SSR) rather than scored 1 (the paper's, IN/CO above); their count.
    top_k_intersection_dropped: float | None = None
    kendall_dropped: float | None = None
    num_no_label_keeping: int | None = None
    # The strong evaluation's last doubling of steps or walks still lowered mean IN or CO by > 0.01.
    still_falling: bool | None = None
    # eval certify: the sparsified-SmoothGrad top-k certificate (a lower bound on the smoothed map's
    # top-k intersection at radius rho) beside an l2 attack on the same map (an upper bound).
    certified_top_k_intersection: float | None = None
    attacked_smoothed_top_k_intersection: float | None = None


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
        strong = _read_result(run_dir / "eval_attribution_strong.json", ATTRIBUTION_RESULT) or {}
        certify = _read_result(run_dir / "eval_certify.json", CERTIFY_RESULT) or {}
        try:
            paper_cfg = _paper_budget(dataset, objective)
        except UserInputError as exc:
            raise UserInputError(f"run config {run_dir / 'config.json'}: {exc}") from None
        # A results folder has no checkpoints: the evaluations name the step they evaluated.
        steps_done = max(list_checkpoints(run_dir), default=None)
        if steps_done is None:
            steps_done = (pgd.get("checkpoint_step") or attr.get("checkpoint_step")
                          or strong.get("checkpoint_step") or 0)
        budget: dict[str, Any] = {"train_steps": steps_done, "init_from": config.get("init_from")}
        reduced = []
        if steps_done < paper_cfg["max_num_training_steps"]:
            reduced.append(f"training {steps_done} of {paper_cfg['max_num_training_steps']} steps")
        if objective in ("adv", "ar", "adv_ar"):
            for key in ("m", "num_steps") if objective != "adv" else ("num_steps",):
                if config.get(key, paper_cfg[key]) < paper_cfg[key]:
                    reduced.append(f"training {key} {config.get(key)} (paper {paper_cfg[key]})")
        reduced += _optimisation_departures(config, paper_cfg)
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
        paper = paper_result(dataset, method)
        evaluations = [(name, result) for name, result in (("faithful", attr), ("strong", strong)) if result]
        for evaluation, result in evaluations or [("faithful", {})]:
            rows.append(RunRow(
                run=str(run_dir),
                dataset=dataset,
                method=method,
                natural_accuracy=pgd.get("natural_accuracy"),
                adversarial_accuracy=pgd.get("adversarial_accuracy"),
                top_k_intersection=result.get("top_k_intersection"),
                kendall=result.get("kendall"),
                paper=dict(zip(("NA", "AA", "IN", "CO"), paper)) if paper else None,
                budget={**budget, **({"attribution_attack": _attack_budget(result)} if result else {})},
                reduced=reduced + (_attack_reductions(result, paper_cfg) if result else []),
                evaluation=evaluation,
                num_attacked=result.get("num_attacked"),
                num_unmoved=result.get("num_not_found"),
                top_k_intersection_dropped=result.get("top_k_intersection_dropped"),
                kendall_dropped=result.get("kendall_dropped"),
                num_no_label_keeping=result.get("num_no_label_keeping"),
                still_falling=_still_falling(result),
                certified_top_k_intersection=certify.get("certified_top_k_intersection"),
                attacked_smoothed_top_k_intersection=certify.get("attacked_top_k_intersection"),
            ))
    return rows


def _still_falling(result: dict[str, Any]) -> bool | None:
    """The ``convergence`` object's flag (None: an older file, or a faithful one, has none)."""
    conv = result.get("convergence")
    flag = conv.get("still_falling") if isinstance(conv, dict) else None
    return flag if isinstance(flag, bool) else None


def _optimisation_departures(config: dict[str, Any], paper_cfg: dict[str, Any]) -> list[str]:
    """How a run's optimisation departs from the paper's, as short budgets do (docs/results.md)."""
    out = []
    if config.get("init_from"):
        out.append(f"fine-tuned from {config['init_from']} (paper: from scratch)")
    if config.get("optimizer", paper_cfg["optimizer"]) == "adam":
        if config.get("learning_rate_schedule"):
            pieces = ", ".join(f"{lr:g} from step {step}" for step, lr in config["learning_rate_schedule"])
            out.append(f"Adam learning rate {pieces} (paper {paper_cfg['learning_rate']:g} throughout)")
        elif config.get("learning_rate", paper_cfg["learning_rate"]) != paper_cfg["learning_rate"]:
            out.append(f"Adam learning rate {config['learning_rate']:g} (paper {paper_cfg['learning_rate']:g})")
    if config.get("epsilon_ramp_steps"):
        out.append(f"training PGD radius ramped up over the first {config['epsilon_ramp_steps']} steps (paper: constant)")
    return out


def _attack_budget(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "examples": result.get("num_examples"),
        "attacked": result.get("num_attacked"),
        "method": _setting(result, "attribution_attack_method"),
        "steps": _setting(result, "attribution_attack_steps"),
        "times": _setting(result, "attribution_attack_times"),
        "ig_steps": _setting(result, "num_IG_steps"),
        "epsilon": _setting(result, "epsilon"),
        "flat_rule": _setting(result, "attribution_attack_flat_rule", "none"),
        "budget_level": _setting(result, "attribution_attack_budget"),
    }


def _attack_reductions(result: dict[str, Any], paper_cfg: dict[str, Any]) -> list[str]:
    attack = _attack_budget(result)
    reduced = []
    for key, label in (("num_eval_examples", "examples"), ("attribution_attack_steps", "steps"),
                       ("num_IG_steps", "ig_steps")) + ((("attribution_attack_times", "times"),)
                                                        if attack["method"] == "random" else ()):
        ours = attack[label]
        if ours is not None and ours < paper_cfg[key]:
            reduced.append(f"attribution attack {label} {ours} (paper {paper_cfg[key]})")
    if attack["budget_level"] == "fast":
        reduced.append("strong evaluation at the fast budget level (half the steps per walk, one random start)")
    return reduced


def _unmoved(r: RunRow) -> str:
    return "—" if r.num_unmoved is None or r.num_attacked is None else f"{r.num_unmoved}/{r.num_attacked}"


def _no_label(r: RunRow) -> str:
    return "—" if r.num_no_label_keeping is None or r.num_attacked is None else f"{r.num_no_label_keeping}/{r.num_attacked}"


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
        writer.writerow(["run", "dataset", "method", "evaluation", "NA", "AA", "IN", "CO", "attacked",
                         "unmoved", "paper_NA", "paper_AA", "paper_IN", "paper_CO", "reduced",
                         "IN_dropped", "CO_dropped", "no_label_keeping", "still_falling", "certified_IN",
                         "attacked_smoothed_IN"])
        for r in rows:
            p = r.paper or {}
            writer.writerow([r.run, r.dataset, r.method, r.evaluation, r.natural_accuracy, r.adversarial_accuracy,
                             r.top_k_intersection, r.kendall, r.num_attacked, r.num_unmoved, p.get("NA"),
                             p.get("AA"), p.get("IN"), p.get("CO"), "; ".join(r.reduced),
                             r.top_k_intersection_dropped, r.kendall_dropped, r.num_no_label_keeping,
                             r.still_falling, r.certified_top_k_intersection, r.attacked_smoothed_top_k_intersection])
        return out.getvalue()
    lines = [
        "| dataset | method | IN/CO attack | NA | AA | IN | CO | unmoved | IN dropped | CO dropped | no label kept "
        "| paper NA | paper AA | paper IN | paper CO | run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r.paper or {}
        lines.append(
            f"| {r.dataset} | {r.method} | {r.evaluation}{' (still falling)' if r.still_falling else ''} | "
            f"{_pct(r.natural_accuracy)} | {_pct(r.adversarial_accuracy)} | "
            f"{_pct(r.top_k_intersection)} | {_tau(r.kendall)} | {_unmoved(r)} | {_pct(r.top_k_intersection_dropped)} | "
            f"{_tau(r.kendall_dropped)} | {_no_label(r)} | {_pct(p.get('NA'))} | "
            f"{_pct(p.get('AA'))} | {_pct(p.get('IN'))} | {_tau(p.get('CO'))} | `{r.run}` |"
        )
    lines.append("")
    lines.append("unmoved: attacked images the attack left at IN = CO = 1 (no label-keeping iterate lowered "
                 "its criterion); strong: each metric's worst case over a portfolio of attacks. IN/CO score "
                 "an image with no label-keeping iterate as 1 (the paper's convention); IN/CO dropped leave "
                 "such images out (ART/SSR's), no label kept counts them (strong evaluation only).")
    certified = list({r.run: r for r in reversed(rows) if r.certified_top_k_intersection is not None}.values())[::-1]
    if certified:
        lines += ["", "Certified top-k intersection (eval certify: sparsified SmoothGrad, Levine et al. 2019; a "
                  "lower bound) beside an l2 attack on the same smoothed map (an upper bound):", "",
                  "| method | certified IN | attacked IN | run |", "|---|---|---|---|"]
        lines += [f"| {r.method} | {_pct(r.certified_top_k_intersection)} | "
                  f"{_pct(r.attacked_smoothed_top_k_intersection)} | `{r.run}` |" for r in certified]
    if any(r.still_falling for r in rows):
        lines.append("")
        lines.append("still falling: the last doubling of the strong evaluation's steps or walks lowered the "
                     "mean IN or CO by more than 0.01; a larger attribution_attack_budget would likely lower it "
                     "further (see the result file's convergence).")
    lines.append("")
    lines.append("Budgets (paper values in parentheses):")
    for r in rows:
        note = "; ".join(r.reduced) if r.reduced else "the paper's full setting"
        lines.append(f"- `{r.run}` ({r.method}, {r.evaluation}): {'REDUCED — ' if r.reduced else ''}{note}")
    return "\n".join(lines) + "\n"


def report(run_dirs: list[str | Path], fmt: str = "md") -> str:
    """``robustattr report``: the table for ``run_dirs`` in the requested format."""
    return format_rows(collect_rows(run_dirs), fmt)
