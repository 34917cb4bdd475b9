"""``robustattr benchmark DATASET``: every training method at one budget rule, one evaluation, cost recorded.

A unit is one recipe, ``configs/benchmark/<dataset>/<method>.json`` (``pipelines.units``: preset +
``train``, ``evaluate``, ``strong`` and ``certify`` sections; docs/benchmark.md). Running a unit
trains (or resumes) its run in the recipe's ``model_dir`` — first the run it fine-tunes from, when
``init_from`` names another recipe's run that is not trained — then evaluates NA/AA
(``eval_pgd.json``), the strong attribution evaluation (``eval_attribution_strong.json`` and its
per-example CSV) and the sparsified-SmoothGrad certificate (``eval_certify.json`` and its CSV), and
copies those files, the resolved config and ``metrics.jsonl`` to ``results/benchmark/<dataset>/<method>/``
(never a checkpoint) with ``unit.json``: the phases with their wall and core seconds (wall seconds ×
torch threads), the training cost (its own and that of the run it starts from), the measured seconds
per training step, the results and the machine. A unit whose ``unit.json`` names the current recipe's
digest is finished and skipped, and every phase whose files are current is reused.

At the end ``reports.benchmark`` writes ``results/benchmark/<dataset>/report.md`` and the
cost–robustness frontier from whatever units are finished; the figure with one test image attacked
under every method is drawn only when every finished unit's checkpoint is at hand.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, cast

from robustattr.config import Config
from robustattr.evaluation.results import ATTRIBUTION_RESULT, PGD_RESULT, read_result
from robustattr.files import atomic_write_bytes
from robustattr.pipelines.stages import (
    attribution_is_current, attribution_result_is_stale, certify_is_current, is_trained, pgd_is_current, train_or_resume,
)
from robustattr.pipelines.units import (
    METHODS, PhaseClock, Unit, attack_overrides, copy_run_files, figure_index, finished_unit, init_recipe, machine,
    read_recipe, select_methods,
)

__all__ = ["UNIT_FILE", "RUN_FILES", "PHASES_FILE", "read_benchmark_recipe", "run_benchmark", "run_unit", "torch_threads",
           "train_from_start_run", "train_timed", "unit_cost"]

log = logging.getLogger(__name__)

UNIT_FILE = "unit.json"
#: Written in the run directory: the phase times, so that a resumed unit (and a unit fine-tuned from
#: this run) knows what the training cost.
PHASES_FILE = "benchmark_phases.json"
#: One row of the figure with every method (the dataset's figure image attacked by the strong
#: evaluation), kept so that the figure can be drawn in a later session, when the checkpoints are gone.
FIGURE_PANEL_FILE = "figure_panel.npz"
RUN_FILES = ("config.json", "metrics.jsonl", "eval_pgd.json", "eval_attribution_strong.json",
             "eval_attribution_strong_examples.csv", "eval_certify.json", "eval_certify_examples.csv",
             FIGURE_PANEL_FILE)
EVAL_PHASES = ("eval_pgd", "eval_attribution_strong", "eval_certify")
#: Drawn in each finished unit's results folder from its strong result file, at every report.
CONVERGENCE_FIGURE = "convergence.png"


def read_benchmark_recipe(recipes: Path, dataset: str, method: str, data_root: str | None) -> Unit:
    return read_recipe(recipes, dataset, method, data_root, certify=True)


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _init_train_cost(cfg: Config, key: str = "core_seconds") -> float | None:
    """Training ``key`` ("core_seconds" or "cpu_seconds") of the run ``cfg.init_from`` names, from its
    phase file (0.0 without one; None: unknown)."""
    if not cfg.init_from:
        return 0.0
    times = Path(cfg.init_from) / PHASES_FILE
    if not times.is_file():
        return None
    train = json.loads(times.read_text()).get("train", {})
    return train.get(key)


def _add(a: float | None, b: float | None) -> float | None:
    return round(a + b, 1) if a is not None and b is not None else None


def unit_cost(cfg: Config, phases: dict[str, dict[str, Any]], threads: int) -> dict[str, Any]:
    """The unit's cost: training core-seconds (its own, and the run it fine-tunes from), evaluation
    core-seconds per phase, and the measured seconds per training step (the training phase's wall
    seconds over its steps: setup and checkpoints included, so it is what a step really cost here)."""
    train = phases.get("train", {})
    own = train.get("core_seconds")
    own_cpu = train.get("cpu_seconds")
    init = _init_train_cost(cfg)
    init_cpu = _init_train_cost(cfg, "cpu_seconds")
    steps = cfg.max_num_training_steps
    return {
        "torch_threads": threads,
        "train_steps": steps,
        "train_core_seconds": own,
        "train_cpu_seconds": own_cpu,
        "init_from_train_core_seconds": init,
        "init_from_train_cpu_seconds": init_cpu,
        # Fine-tuned units carry the cost of the run they start from: that is what they took.
        "total_train_core_seconds": _add(own, init),
        # The report's cost axis: the cores' time the training really used. Wall × threads also
        # counts the time another process held the core, so it moves with the machine's load.
        "total_train_cpu_seconds": _add(own_cpu, init_cpu),
        "seconds_per_step": round(train["seconds"] / steps, 4) if own is not None and steps else None,
        "loop_seconds_per_step": train.get("loop_seconds_per_step"),
        "eval_core_seconds": {name: phases.get(name, {}).get("core_seconds") for name in EVAL_PHASES},
        "eval_cpu_seconds": {name: phases.get(name, {}).get("cpu_seconds") for name in EVAL_PHASES},
    }


def train_timed(cfg: Config, label: str, threads: int, clock: PhaseClock | None = None) -> str:
    """Train or resume ``cfg`` as the "train" phase of ``clock`` (default: the run's own phase file),
    recording the training loop's seconds per step beside the phase's time; "reused" when trained
    (the time recorded when it was trained stays)."""
    clock = clock or PhaseClock(Path(cfg.model_dir) / PHASES_FILE, label, threads=threads)
    summary: dict[str, Any] = {}
    clock("train", lambda: train_or_resume(cfg, summary=summary),
          extra=lambda: {"loop_seconds_per_step": summary.get("seconds_per_step"),
                         "steps_this_run": summary.get("steps_this_run")})
    return clock.phases["train"]["status"]


def train_from_start_run(cfg: Config, recipes: Path, dataset: str, data_root: str | None, phase: PhaseClock,
                         threads: int) -> None:
    """Train or resume ``cfg`` as ``phase``'s "train" phase; first, as "train_init", the recipe's run
    that ``cfg.init_from`` names (trained when missing here, else "reused")."""
    found = init_recipe(cfg, recipes, dataset, data_root, certify=True)
    if found is not None:
        # Its own phase, so that the unit's training time is its own; the run it starts from gets its
        # training timed in its own phase file, where unit_cost reads it.
        phase("train_init", lambda: train_timed(found[1].train, f"benchmark: {dataset}/{found[0]}", threads))
    train_timed(cfg, phase.label, threads, phase)


def run_unit(dataset: str, method: str, *, recipes: str | Path = "configs/benchmark",
             results: str | Path = "results/benchmark", data_root: str | None = None,
             force: bool = False) -> dict[str, Any]:
    """Run or finish one unit; returns its ``unit.json`` content (``"skipped": True`` if it was finished)."""
    from robustattr.evaluation import (
        CERTIFY_RESULT_FILE, PGD_RESULT_FILE, STRONG_RESULT_FILE, evaluate_attribution, evaluate_certificate,
        evaluate_pgd,
    )

    recipes, results = Path(recipes), Path(results)
    unit_recipe = read_benchmark_recipe(recipes, dataset, method, data_root)
    cfg, eval_cfg, strong_cfg = unit_recipe.train, unit_recipe.evaluate, unit_recipe.strong
    certify_cfg = cast(Config, unit_recipe.certify)  # read_recipe(certify=True) always resolves it
    out = results / dataset / method
    unit_file = out / UNIT_FILE
    digest = unit_recipe.digest()  # now: an edit while the unit runs must not be credited to it
    done = None if force else finished_unit(unit_file, digest)
    if done is not None:
        log.info("benchmark: %s/%s finished before (recipe unchanged); skipped", dataset, method)
        if not (out / FIGURE_PANEL_FILE).is_file() and is_trained(cfg):  # a unit finished before panels were kept
            log.info("benchmark: %s/%s figure panel: %s", dataset, method,
                     _figure_panel(strong_cfg, dataset, out / FIGURE_PANEL_FILE))
        return {**done, "skipped": True}

    run_dir = Path(cfg.model_dir)
    threads = torch_threads()
    phase = PhaseClock(run_dir / PHASES_FILE, f"benchmark: {dataset}/{method}", threads=threads)
    train_from_start_run(cfg, recipes, dataset, data_root, phase, threads)
    phase("eval_pgd", lambda: "reused" if pgd_is_current(eval_cfg) else (evaluate_pgd(eval_cfg) and "evaluated"))
    phase("eval_attribution_strong", lambda: "reused" if attribution_is_current(strong_cfg)
          else (evaluate_attribution(strong_cfg) and "evaluated"))
    phase("eval_certify", lambda: "reused" if certify_is_current(certify_cfg)
          else (evaluate_certificate(certify_cfg) and "evaluated"))
    phase("figure_panel", lambda: "reused" if (run_dir / FIGURE_PANEL_FILE).is_file()
          else _figure_panel(strong_cfg, dataset, run_dir / FIGURE_PANEL_FILE))
    phases = phase.phases

    copy_run_files(run_dir, out, RUN_FILES)
    pgd = read_result(run_dir / PGD_RESULT_FILE, PGD_RESULT)
    strong = read_result(run_dir / STRONG_RESULT_FILE, ATTRIBUTION_RESULT)
    certified = read_result(run_dir / CERTIFY_RESULT_FILE)
    strong_keys = ("top_k_intersection", "kendall", "spearman", "top_k_intersection_dropped", "kendall_dropped",
                   "cosine", "lens_recall", "lens_top_k_intersection", "num_examples", "num_attacked",
                   "num_not_found", "num_no_label_keeping")
    unit = {
        "dataset": dataset, "method": method, "recipe": str(unit_recipe.path), "recipe_sha256": digest,
        "run_dir": str(run_dir), "train_steps": pgd.get("checkpoint_step"), "init_from": cfg.init_from,
        "phases": phases, "total_seconds": round(sum(p["seconds"] for p in phases.values()), 1),
        "cost": unit_cost(cfg, phases, threads),
        "results": {"natural_accuracy": pgd.get("natural_accuracy"), "adversarial_accuracy": pgd.get("adversarial_accuracy"),
                    "num_examples": pgd.get("num_examples"), "num_adversarial_examples": pgd.get("num_adversarial_examples"),
                    "strong": {k: strong.get(k) for k in strong_keys},
                    "certify": {k: certified.get(k) for k in ("certified_top_k_intersection",
                                                              "attacked_top_k_intersection", "num_examples",
                                                              "num_attacked", "certify_k", "certify_radius")}},
        "machine": machine(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # Written last: its presence marks the unit finished.
    atomic_write_bytes(unit_file, (json.dumps(unit, indent=2) + "\n").encode())
    return unit


def _figure_panel(strong_cfg: Config, dataset: str, out: Path) -> str:
    """Attack the dataset's figure image (``DatasetInfo.figure_index``) with the strong evaluation and
    keep its row at ``out``; the status in words (a misclassified image is not attacked, so no row)."""
    from robustattr.data.catalog import DATASETS
    from robustattr.errors import UserInputError
    from robustattr.pipelines.figure import compute_panel
    from robustattr.reports.figures import save_panel

    index = DATASETS[dataset].figure_index if dataset in DATASETS else 0
    try:
        panel = compute_panel(strong_cfg, index, "strong")
    except UserInputError as exc:  # misclassified: this model gets no row
        return f"no panel: {exc}"
    save_panel(panel, out, index=index)
    return f"drawn (test image {index})"


def _saved_panels_figure(dataset: str, methods: list[str], results: Path) -> str | None:
    """The figure with every method from the units' kept panels (no checkpoint needed); None when
    some finished unit has no panel."""
    from robustattr.reports.figures import draw_attack_panels, load_panel

    files = [results / dataset / m / FIGURE_PANEL_FILE for m in methods]
    if not methods or not all(f.is_file() for f in files):
        return None
    loaded = [load_panel(f) for f in files]
    indices = sorted({i for i, _ in loaded})
    if len(indices) != 1:
        return f"attack figure with every method not drawn: the kept panels show different test images {indices}"
    figure = draw_attack_panels([p for _, p in loaded], results / dataset / "figure-methods.png")
    return f"attack figure (test image {indices[0]}, one row per method, from the kept panels): {figure.name}"


def _convergence_figure(folder: Path) -> bool:
    """Draw ``folder/convergence.png`` from the unit's strong result file; False when it has none
    (or a file from before the convergence object)."""
    from robustattr.evaluation import STRONG_RESULT_FILE
    from robustattr.pipelines.figure import write_convergence

    strong = folder / STRONG_RESULT_FILE
    if not strong.is_file() or "convergence" not in read_result(strong, ATTRIBUTION_RESULT):
        return False
    write_convergence(folder, folder / CONVERGENCE_FIGURE)
    return True


def _methods_figure(dataset: str, units: list[tuple[str, Unit]], results: Path) -> str:
    """One test image attacked under every finished unit's model; a note when it cannot be drawn."""
    from robustattr.evaluation import STRONG_EXAMPLES_FILE
    from robustattr.pipelines.figure import write_figure

    if not units:
        return "attack figure not drawn: no unit is finished"
    saved = _saved_panels_figure(dataset, [m for m, _ in units], results)
    if saved is not None:
        return saved
    missing = [m for m, unit in units if not is_trained(unit.train)]
    if missing:
        return f"attack figure with every method not drawn: no checkpoint here for {', '.join(missing)}"
    index = figure_index(dataset, [results / dataset / m for m, _ in units], STRONG_EXAMPLES_FILE)
    if index is None:
        return "attack figure not drawn: no test image was attacked on every model"
    figure = write_figure([Path(unit.train.model_dir) for _, unit in units], index=index,
                          out=results / dataset / "figure-methods.png", overrides=attack_overrides(units[0][1].strong))
    return f"attack figure (test image {index}, one row per method): {figure.name}"


def _stale_strong_results(units: list[tuple[str, Unit]], folder: Path, cut: Path) -> list[str]:
    """The full and cost-matched units (``folder/<method>``, ``cut/<method>``) whose strong result
    file records other settings than their recipe's strong evaluation now."""
    from robustattr.evaluation import STRONG_RESULT_FILE

    stale = []
    for method, unit in units:
        for where, label in ((folder, method), (cut, f"{cut.name}/{method}")):
            if attribution_result_is_stale(where / method / STRONG_RESULT_FILE, unit.strong):
                stale.append(label)
    return stale


def run_benchmark(dataset: str, *, methods: list[str] | None = None, recipes: str | Path = "configs/benchmark",
                  results: str | Path = "results/benchmark", data_root: str | None = None,
                  force: bool = False, at_cost: bool = False) -> str:
    """Run or resume the dataset's units — with ``at_cost``, instead, the cost-matched units of the
    finished ones (``pipelines.at_cost``) — then write and return its report (Markdown)."""
    from robustattr.pipelines.at_cost import at_cost_folder, run_at_cost
    from robustattr.reports.benchmark import (
        COST_FRACTION, collect_at_cost_rows, collect_rows, draw_frontier, format_report,
    )

    recipes, results = Path(recipes), Path(results)
    if at_cost:
        lines = run_at_cost(dataset, methods=methods, recipes=recipes, results=results, data_root=data_root,
                            force=force)
    else:
        methods = select_methods(recipes, dataset, methods,
                                 lambda m: read_benchmark_recipe(recipes, dataset, m, data_root))
        lines = []
        for method in methods:
            unit = run_unit(dataset, method, recipes=recipes, results=results, data_root=data_root, force=force)
            state = "finished before" if unit.get("skipped") else f"done in {unit['total_seconds']:.0f} s"
            lines.append(f"- {dataset}/{method}: {state}")
    folder = results / dataset
    finished = [m for m in METHODS if (folder / m / UNIT_FILE).is_file()]
    rows = collect_rows([folder / m for m in finished])
    cut = folder / at_cost_folder(COST_FRACTION)
    cut_rows = collect_at_cost_rows([cut / m for m in METHODS])
    notes = [f"- frontier figure: {draw_frontier(rows, folder / 'frontier.png', title=dataset, at_cost=cut_rows).name}"
             if rows else "- frontier figure not drawn: no unit is finished"]
    drawn = [m for m in finished if _convergence_figure(folder / m)]
    if drawn:
        notes.append(f"- the strong evaluation's convergence (running worst case against steps and walks): "
                     f"<method>/{CONVERGENCE_FIGURE} for {', '.join(drawn)}")
    units = [(m, read_benchmark_recipe(recipes, dataset, m, data_root)) for m in finished if (recipes / dataset / f"{m}.json").is_file()]
    notes.append(f"- {_methods_figure(dataset, units, results)}")
    stale = _stale_strong_results(units, folder, cut)
    if stale:
        notes.insert(0, f"- **stale**: the strong results of {', '.join(stale)} were computed with other settings than "
                        f"the recipes' now (e.g. an older strong portfolio), so their rows are not comparable with "
                        f"the others; `robustattr benchmark {dataset} --methods METHOD --force` (with `--at-cost` "
                        f"for a cost-matched unit) evaluates them again and reuses the training")
    text = format_report(rows, dataset, notes=[*lines, *notes], at_cost=cut_rows)
    atomic_write_bytes(folder / "report.md", text.encode())
    return text
