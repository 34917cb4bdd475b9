"""Units: the resumable (dataset, method) recipes ``robustattr repro`` and ``robustattr benchmark`` run.

A *unit* is one recipe, ``<recipes>/<dataset>/<method>.json``: ``{"preset": config file, "train":
{...}, "evaluate": {...}, "strong": {...}}`` (and, where a pipeline asks for it, ``"certify": {...}``),
config values laid over the preset — training = preset + train, evaluation = that + evaluate, the
strong evaluation = that + strong with ``attribution_attack_method`` "strong", the certificate =
preset + train + evaluate + certify. A unit is finished when its ``unit.json`` names the digest of
the current recipe and preset. This module reads recipes, times phases (resumably, in a file in the
run directory, so a resumed phase keeps the time it had spent) and finds the figure's test image;
the pipelines own what a unit does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from robustattr.config import Config, load_config, read_json_file
from robustattr.errors import UserInputError
from robustattr.evaluation import attribution_robustness
from robustattr.evaluation.results import ExampleLog
from robustattr.files import atomic_write_bytes
from robustattr.json_files import NUMBER, dict_of, read_json, record
from robustattr.pipelines.stages import is_trained, train_or_resume
from robustattr.training.objectives import REGISTRY

__all__ = ["METHODS", "SECTIONS", "Unit", "PhaseClock", "read_recipe", "machine", "ensure_init_run",
           "init_recipe", "figure_index", "attack_overrides", "copy_run_files"]

log = logging.getLogger(__name__)

#: Units in the order they run (the objectives registry's slugs; the fine-tuned methods start from NATURAL's run).
METHODS = tuple(info.slug for info in REGISTRY.values())
SECTIONS = ("train", "evaluate", "strong")


class Unit(NamedTuple):
    """One recipe, resolved: the file, the training config and the evaluation configs
    (``certify`` only where the pipeline reads a certify section)."""

    path: Path
    preset: Path
    train: Config
    evaluate: Config
    strong: Config
    certify: Config | None = None

    def digest(self) -> str:
        """sha256 of the recipe and its preset: a unit is redone when either changes."""
        return hashlib.sha256(self.path.read_bytes() + self.preset.read_bytes()).hexdigest()


def read_recipe(recipes: Path, dataset: str, method: str, data_root: str | None, *,
                certify: bool = False) -> Unit:
    """Read and resolve ``recipes/<dataset>/<method>.json`` (paths, like ``model_dir``, relative to
    the current directory). ``certify``: the recipe may (and should) hold a ``certify`` section.

    Raises:
        UserInputError: a missing recipe (naming the datasets that have recipes), an unknown
            section, a bad config value (naming the section), or a dataset other than its folder's.
    """
    sections_allowed = (*SECTIONS, "certify") if certify else SECTIONS
    path = recipes / dataset / f"{method}.json"
    if not path.is_file():
        available = sorted(p.name for p in recipes.iterdir() if p.is_dir()) if recipes.is_dir() else []
        raise UserInputError(f"no recipe {path}; datasets with recipes in {recipes}: {', '.join(available) or 'none'}")
    recipe = read_json_file(path)
    unknown = sorted(set(recipe) - {"preset", *sections_allowed} - {k for k in recipe if k.startswith("_comment")})
    if unknown or not isinstance(recipe.get("preset"), str):
        raise UserInputError(f"{path}: a recipe has the keys preset (a config file), {', '.join(sections_allowed)} "
                             f"(config values){'; unknown: ' + ', '.join(unknown) if unknown else ''}")
    sections = {}
    for name in sections_allowed:
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
    certify_cfg = None
    if certify:
        certify_layer = (sections["certify"], f"{path} (certify)")
        certify_cfg = load_config(recipe["preset"], overrides, layers=[train_layer, eval_layer, certify_layer])
    if train_cfg.dataset != dataset:
        raise UserInputError(f"{path}: dataset is '{train_cfg.dataset}', expected '{dataset}' from its folder")
    return Unit(path, Path(recipe["preset"]), train_cfg, eval_cfg, strong_cfg, certify_cfg)


def select_methods(recipes: Path, dataset: str, methods: Sequence[str] | None,
                   check: Callable[[str], Any]) -> list[str]:
    """The units to run: ``methods``, or every method with a recipe for the dataset, in the
    registry's order (NATURAL first, so the units fine-tuned from it find it trained). ``check``
    reads each recipe, so that a bad one is refused before hours of work start.

    Raises:
        UserInputError: an unknown method (naming the registry's), or what ``check`` raises.
    """
    chosen = list(methods or [m for m in METHODS if (recipes / dataset / f"{m}.json").is_file()] or METHODS)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise UserInputError(f"unknown method {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    for method in chosen:
        check(method)
    return chosen


def finished_unit(unit_file: Path, digest: str) -> dict[str, Any] | None:
    """The content of ``unit_file`` (a unit's ``unit.json``) when it records ``digest``, the current
    recipe's: the unit is finished. None when it is absent or from another recipe."""
    if not unit_file.is_file():
        return None
    done = read_json(unit_file, record({}), kind="unit record", fix="delete it to run the unit again")
    return done if done.get("recipe_sha256") == digest else None


def copy_run_files(run_dir: Path, out: Path, names: Sequence[str]) -> None:
    """Copy each of ``names`` that ``run_dir`` holds to ``out`` (created when missing), each file
    atomically; the lists name results and configs, never a checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (run_dir / name).is_file():
            atomic_write_bytes(out / name, (run_dir / name).read_bytes())


def machine() -> dict[str, Any]:
    """Where a unit ran: torch version and threads, CPU, cores, device, the 1-minute load average."""
    import torch

    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "device": str(torch.device("cuda" if torch.cuda.is_available() else "cpu")),
            "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


def init_recipe(cfg: Config, recipes: Path, dataset: str, data_root: str | None, *,
                certify: bool = False) -> tuple[str, Unit] | None:
    """The (method, unit) of the recipe whose run ``cfg.init_from`` names; None when ``cfg`` starts
    from scratch or from a run no recipe of the dataset makes (training reports a missing one)."""
    if not cfg.init_from:
        return None
    target = Path(cfg.init_from).resolve()
    for method in METHODS:
        if not (recipes / dataset / f"{method}.json").is_file():
            continue
        other = read_recipe(recipes, dataset, method, data_root, certify=certify)
        if Path(other.train.model_dir).resolve() == target:
            return method, other
    return None


def ensure_init_run(cfg: Config, recipes: Path, dataset: str, data_root: str | None) -> None:
    """Train the recipe whose run ``cfg.init_from`` names, when that run is not trained yet."""
    found = init_recipe(cfg, recipes, dataset, data_root)
    if found is not None and not is_trained(found[1].train):
        log.info("repro: %s starts from %s's run, which is not trained here: training it first", cfg.model_dir, found[0])
        train_or_resume(found[1].train)


class PhaseClock:
    """Times a unit's phases; the times survive an interruption in ``times_file`` (JSON).

    Each phase is recorded as ``{"seconds": wall seconds, "status": ...}`` and, when ``threads`` is
    given, ``"core_seconds"`` (wall seconds × threads: the cost on the machine's cores) and
    ``"cpu_seconds"`` (the process's CPU time, ``time.process_time``). A phase
    whose function returns "reused" keeps the time recorded when it was done; "resumed" adds to it.
    """

    def __init__(self, times_file: Path, label: str, *, threads: int | None = None) -> None:
        self.times_file, self.label, self.threads = times_file, label, threads
        self.phases: dict[str, dict[str, Any]] = {}

    def earlier(self) -> dict[str, dict[str, Any]]:
        """The phase records in ``times_file`` ({} when there is none)."""
        if not self.times_file.exists():
            return {}
        return read_json(self.times_file, dict_of(record({"seconds": NUMBER})), kind="phase timings",
                         fix="delete it (only the reported times depend on it)")

    def __call__(self, name: str, fn: Callable[[], Any], extra: Callable[[], dict[str, Any]] | None = None) -> None:
        earlier = self.earlier()
        began, cpu_began = time.perf_counter(), time.process_time()
        status = fn()
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu_began
        if status == "reused" and name in earlier:
            entry = {**earlier[name], "status": "reused"}
        else:
            resumed = earlier.get(name, {}) if status == "resumed" else {}
            previous = resumed.get("seconds", 0.0)
            entry = {"seconds": round(previous + seconds, 1), "status": status}
            if self.threads is not None and status == "reused":
                # Done before, by something that did not time it: the cost is unknown, not zero.
                entry.update(threads=self.threads, core_seconds=None, cpu_seconds=None)
            elif self.threads is not None:
                entry["threads"] = self.threads
                entry["core_seconds"] = round((previous + seconds) * self.threads, 1)
                # The CPU time the process used (all its threads): below core_seconds when other
                # work shared the cores, so a busy machine's slowdown shows.
                entry["cpu_seconds"] = round(resumed.get("cpu_seconds", 0.0) + cpu, 1)
            if extra is not None:
                entry.update(extra())
        self.phases[name] = entry
        earlier[name] = entry
        atomic_write_bytes(self.times_file, json.dumps(earlier, indent=2).encode())
        log.info("%s %s: %s in %.0f s", self.label, name, status, seconds)


def figure_index(dataset: str, folders: Sequence[Path], examples_file: str | None = None) -> int | None:
    """A test image every run classified correctly and attacked (per the per-example CSV
    ``examples_file``, default the faithful one, in each folder): the original notebook's image
    when it qualifies, else the first; None if none."""
    from robustattr.data.catalog import DATASETS
    from robustattr.evaluation import ATTRIBUTION_EXAMPLES_FILE

    common: set[int] | None = None
    for folder in folders:
        attacked = {row["index"] for row in ExampleLog.read_rows(Path(folder) / (examples_file or ATTRIBUTION_EXAMPLES_FILE)).values()
                    if row["correct"]}
        common = attacked if common is None else common & attacked
    if not common:
        return None
    preferred = DATASETS[dataset].figure_index if dataset in DATASETS else None
    return preferred if preferred in common else min(common)


def attack_overrides(cfg: Config) -> list[str]:
    """The strong evaluation's attack settings as ``K=V`` strings, so a figure shows the attack it
    measured (the figure draws the strong evaluation's lowest-τ perturbation)."""
    values = cfg.to_dict()
    settings = attribution_robustness.result_settings(cfg)
    return [f"{k}={json.dumps(values[k])}" for k in settings if k in values and k != "num_attribution_examples"]
