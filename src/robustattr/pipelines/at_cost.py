"""``robustattr benchmark DATASET --at-cost``: every method trained for a share of the reference's
training cost, to answer the benchmark's question directly — does any method reach IG-SUM-NORM's
strong IN and CO at ≤ 25 % of its training cost?

Under the benchmark's budget rule every unit but NATURAL spends about the same hour, so the full
units alone cannot answer it. A cost-matched unit takes a finished unit's recipe unchanged and cuts
only its step count to what fits ``COST_FRACTION`` of the reference unit's training cost (CPU time,
``reports.benchmark.train_cost_seconds``), less the NATURAL run it fine-tunes from, less a 5 %
margin, at the step cost the full unit measured. It trains in its own run directory
(``runs/benchmark/<dataset>-at-cost-25/<method>``) and gets the strong evaluation the full unit got
(same images, same settings); NA/AA and the certificate are left out: the question is about strong
IN and CO, and the strong evaluation's per-image ``correct`` column gives the accuracy on its images.
Its files go to ``results/benchmark/<dataset>/at-cost-25/<method>/`` with a ``unit.json`` like a full
unit's; the report (``reports.benchmark``) lists them and counts them in the verdict. A method whose
full unit already costs less (NATURAL) needs none; one whose NATURAL start alone uses the budget gets
none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from robustattr.errors import UserInputError
from robustattr.evaluation.results import ATTRIBUTION_RESULT, read_result
from robustattr.files import atomic_write_bytes
from robustattr.json_files import read_json, record
from robustattr.pipelines.benchmark import (
    PHASES_FILE, UNIT_FILE, read_benchmark_recipe, torch_threads, train_from_start_run, unit_cost,
)
from robustattr.pipelines.stages import attribution_is_current
from robustattr.pipelines.units import METHODS, PhaseClock, copy_run_files, finished_unit, machine

__all__ = ["AT_COST_MARGIN", "at_cost_folder", "at_cost_steps", "run_at_cost"]

log = logging.getLogger(__name__)

#: The share of the budget left unused: the step cost a full unit measured moves with the load.
AT_COST_MARGIN = 0.05
_COPIED = ("config.json", "metrics.jsonl", "eval_attribution_strong.json", "eval_attribution_strong_examples.csv",
           "eval_attribution_strong_examples.settings.json")


def at_cost_folder(fraction: float) -> str:
    """The folder name of the cost-matched units at ``fraction`` of the reference's cost: ``at-cost-25``."""
    return f"at-cost-{round(fraction * 100):d}"


def at_cost_steps(cost: dict[str, Any], budget_seconds: float, margin: float = AT_COST_MARGIN) -> int:
    """Training steps of a cost-matched unit: as many as fit ``(1 − margin) × budget_seconds`` of CPU
    time once the run it starts from is paid for, at the full unit's measured CPU seconds per step
    (its training phase's CPU time over its steps: setup included, so a slight overestimate).

    Args:
        cost: the full unit's ``unit.json`` ``cost`` object (``train_cpu_seconds``, ``train_steps``,
            ``init_from_train_cpu_seconds`` or, in units written before it, ``init_from_train_core_seconds``).
        budget_seconds: the reference's training cost × the fraction, CPU seconds.

    Returns:
        The step count, ≥ 0 (0: the budget does not cover a step).

    Raises:
        UserInputError: the unit records no CPU time or steps to measure a step's cost by.
    """
    cpu, steps = cost.get("train_cpu_seconds"), cost.get("train_steps")
    if not cpu or not steps:
        raise UserInputError("the unit's unit.json records no train_cpu_seconds or train_steps; run it again "
                             "with this version (robustattr benchmark DATASET --methods METHOD --force)")
    init = cost.get("init_from_train_cpu_seconds")
    if init is None:
        init = cost.get("init_from_train_core_seconds") or 0.0
    return max(0, math.floor(((1.0 - margin) * budget_seconds - init) / (cpu / steps)))


def _finished(results: Path, dataset: str, method: str) -> dict[str, Any] | None:
    unit_file = results / dataset / method / UNIT_FILE
    if not unit_file.is_file():
        return None
    return read_json(unit_file, record({}), kind="unit record", fix="delete it to run the unit again")


def run_at_cost(dataset: str, *, methods: list[str] | None = None, recipes: str | Path = "configs/benchmark",
                results: str | Path = "results/benchmark", data_root: str | None = None,
                force: bool = False) -> list[str]:
    """Train and evaluate the cost-matched unit of each finished full unit in ``methods`` (default:
    all but the reference); returns one line per method saying what was done.

    Raises:
        UserInputError: the reference unit is not finished, a named method's full unit is not, or
            a unit records no step cost.
    """
    from robustattr.reports.benchmark import COST_FRACTION, REFERENCE, train_cost_seconds

    recipes, results = Path(recipes), Path(results)
    reference = _finished(results, dataset, REFERENCE)
    ref_cost = train_cost_seconds(reference.get("cost", {})) if reference else None
    if ref_cost is None:
        raise UserInputError(f"--at-cost needs the {REFERENCE} unit finished with its cost recorded "
                             f"({results / dataset / REFERENCE / UNIT_FILE}); run robustattr benchmark {dataset} "
                             f"--methods {REFERENCE} first")
    budget = COST_FRACTION * ref_cost
    folder = at_cost_folder(COST_FRACTION)
    named = methods is not None
    chosen = list(methods) if named else [m for m in METHODS if m != REFERENCE]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise UserInputError(f"unknown method {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    lines = []
    for method in chosen:
        full = _finished(results, dataset, method)
        if full is None:
            if named:
                raise UserInputError(f"--at-cost {method}: its full unit is not finished "
                                     f"({results / dataset / method / UNIT_FILE}); run it first")
            continue
        if method == REFERENCE:
            lines.append(f"- {dataset}/{folder}/{method}: the reference itself; not cut")
            continue
        full_cost = train_cost_seconds(full.get("cost", {}))
        if full_cost is not None and full_cost <= budget:
            lines.append(f"- {dataset}/{folder}/{method}: its full unit already costs ≤ {COST_FRACTION:.0%} of "
                         f"{REFERENCE}'s ({full_cost:.0f} of {budget:.0f} CPU s); not cut")
            continue
        steps = at_cost_steps(full.get("cost", {}), budget)
        if steps < 1:
            lines.append(f"- {dataset}/{folder}/{method}: the run it starts from uses the whole budget; no unit")
            continue
        lines.append(_run_one(dataset, method, steps, budget, ref_cost, recipes=recipes, results=results,
                              data_root=data_root, force=force))
    return lines


def _run_one(dataset: str, method: str, steps: int, budget: float, ref_cost: float, *, recipes: Path,
             results: Path, data_root: str | None, force: bool) -> str:
    from robustattr.evaluation import STRONG_RESULT_FILE, evaluate_attribution
    from robustattr.reports.benchmark import COST_FRACTION, REFERENCE

    folder = at_cost_folder(COST_FRACTION)
    unit_recipe = read_benchmark_recipe(recipes, dataset, method, data_root)
    runs = Path(unit_recipe.train.model_dir).parent  # runs/benchmark/<dataset>
    run_dir = runs.with_name(f"{runs.name}-{folder}") / method
    cfg = unit_recipe.train.replace(model_dir=str(run_dir), max_num_training_steps=steps)
    strong_cfg = unit_recipe.strong.replace(model_dir=str(run_dir), max_num_training_steps=steps)
    # The recipe, and the step count derived from the reference's cost: a change of either redoes it.
    digest = hashlib.sha256(f"{unit_recipe.digest()} {steps} {COST_FRACTION}".encode()).hexdigest()
    out = results / dataset / folder / method
    done = None if force else finished_unit(out / UNIT_FILE, digest)
    if done is not None:
        return f"- {dataset}/{folder}/{method}: finished before ({steps} steps); skipped"

    log.info("benchmark at cost: %s/%s, %d steps (%.0f CPU s of %s's %.0f)", dataset, method, steps, budget,
             REFERENCE, ref_cost)
    threads = torch_threads()
    phase = PhaseClock(run_dir / PHASES_FILE, f"benchmark at cost: {dataset}/{method}", threads=threads)
    train_from_start_run(cfg, recipes, dataset, data_root, phase, threads)
    phase("eval_attribution_strong", lambda: "reused" if attribution_is_current(strong_cfg)
          else (evaluate_attribution(strong_cfg) and "evaluated"))
    phases = phase.phases
    copy_run_files(run_dir, out, _COPIED)
    strong = read_result(run_dir / STRONG_RESULT_FILE, ATTRIBUTION_RESULT)
    unit = {
        "dataset": dataset, "method": method, "recipe": str(unit_recipe.path), "recipe_sha256": digest,
        "at_cost": {"fraction": COST_FRACTION, "reference": REFERENCE, "reference_train_cpu_seconds": ref_cost,
                    "budget_cpu_seconds": round(budget, 1), "margin": AT_COST_MARGIN},
        "run_dir": str(run_dir), "train_steps": steps, "init_from": cfg.init_from,
        "phases": phases, "total_seconds": round(sum(p["seconds"] for p in phases.values()), 1),
        "cost": unit_cost(cfg, phases, threads),
        "results": {"strong": {k: strong.get(k) for k in ("top_k_intersection", "kendall", "num_examples",
                                                          "num_attacked", "num_no_label_keeping")}},
        "machine": machine(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_bytes(out / UNIT_FILE, (json.dumps(unit, indent=2) + "\n").encode())
    return f"- {dataset}/{folder}/{method}: done in {unit['total_seconds']:.0f} s ({steps} steps)"
