"""Attribution robustness (IN: top-k intersection, CO: Kendall's τ, and Spearman), spec §4.2/§4.3.

Writes ``RUN_DIR/eval_attribution_examples.csv`` batch by batch (resumable, see
``evaluation.results``) and then ``RUN_DIR/eval_attribution.json``. With
``attribution_attack_method: "strong"`` (``attacks.strong_attribution``: each metric's worst case
over a portfolio of attacks) the files are ``eval_attribution_strong.json`` and
``eval_attribution_strong_examples.csv``, so one run directory holds both evaluations; the strong
files also carry the label-keeping flag with both scoring conventions, the running worst case
against the budget (``convergence``, ``evaluation.convergence``) and, renamed so the name says it
is ours, ``neighbourhood_kendall`` where the faithful files keep ``lens_kendall``. Every
example's result depends only on its image and the settings (random draws come from generators
seeded by ``random_seed`` and the example's index), so batch sizes and interruptions change nothing.

Under ``torchrun`` the batches still to do are dealt round-robin to the ranks, a round of one
batch per rank at a time; after each round rank 0 gathers the rows and appends them in batch
order, so the CSV (and the JSON, written by rank 0 at the end) is byte for byte the one a single
process writes, and an interrupted launch resumes from the rounds already written.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from robustattr import distributed as dist
from robustattr.attacks._common import example_generator
from robustattr.attacks.attribution_attack import attribution_attack
from robustattr.attacks.members.target import target_map_from_box
from robustattr.attacks.settings import STRONG, AttackSettings
from robustattr.attacks.strong_attribution import METRICS, portfolio
from robustattr.attribution import activation_bytes_per_image, default_chunk_size
from robustattr.metrics import cosine_similarity, lens_recall, lens_top_k_intersection, neighbourhood_kendall_tau
from robustattr.evaluation._common import (
    batches, checkpoint_settings, load_model_and_data, progress, saliency_method, split_setting,
)
from robustattr.evaluation.convergence import convergence, step_columns, step_grid
from robustattr.evaluation.results import EXAMPLE_FIELDS, ExampleLog, write_json_atomic
from robustattr.run_lock import locks_model_dir

__all__ = ["evaluate_attribution", "ATTRIBUTION_RESULT_FILE", "ATTRIBUTION_EXAMPLES_FILE",
           "STRONG_RESULT_FILE", "STRONG_EXAMPLES_FILE", "result_files", "strong_direction_steps",
           "result_settings", "attack_settings", "target_map_from_box", "example_generator"]

logger = logging.getLogger(__name__)

ATTRIBUTION_RESULT_FILE = "eval_attribution.json"
ATTRIBUTION_EXAMPLES_FILE = "eval_attribution_examples.csv"
STRONG_RESULT_FILE = "eval_attribution_strong.json"
STRONG_EXAMPLES_FILE = "eval_attribution_strong_examples.csv"


def result_files(method: str) -> tuple[str, str]:
    """(summary JSON, per-example CSV) file names of an evaluation with ``method``."""
    if method == "strong":
        return STRONG_RESULT_FILE, STRONG_EXAMPLES_FILE
    return ATTRIBUTION_RESULT_FILE, ATTRIBUTION_EXAMPLES_FILE


def attack_settings(cfg: Any, info: Any, meta: dict) -> dict[str, Any]:
    """Everything that changes a per-example result: which weights (``checkpoint_settings``) and
    :func:`result_settings`. Its digest guards the resumable CSV; the result JSON records it."""
    return {**checkpoint_settings(cfg, meta), **result_settings(cfg, info)}


def result_settings(cfg: Any, info: Any = None) -> dict[str, Any]:
    """The settings that define an attribution evaluation's result, from the config alone: every
    key ``eval_attribution*.json`` records but the checkpoint's step and digest (``dataset`` and
    ``model`` included), in the files' order. Two configs with equal result settings give the same
    result on the same checkpoint, so a result whose settings differ from these is stale.
    ``info``: the dataset's (default ``cfg.dataset_info()``)."""
    attack = AttackSettings.from_config(cfg, info)
    return {
        "dataset": cfg.dataset,
        "model": cfg.model,
        "attribution_attack_method": cfg.attribution_attack_method,
        "attribution_attack_measure": cfg.attribution_attack_measure,
        "saliency_type": cfg.saliency_type,
        "num_IG_steps": cfg.num_IG_steps,
        **_settings_beyond_the_paper(cfg),
        "epsilon": cfg.epsilon,
        "attribution_attack_step_size": cfg.attribution_attack_step_size,
        "attribution_attack_steps": cfg.attribution_attack_steps,
        "attribution_attack_times": cfg.attribution_attack_times,
        "attribution_attack_flat_rule": cfg.attribution_attack_flat_rule,
        "k_top": cfg.k_top,
        "eval_k_top": cfg.eval_k_top,
        "attribution_attack_target": cfg.attribution_attack_target,
        "random_seed": cfg.random_seed,
        "integer_pixels": attack.integer_pixels,
        "bounds": list(attack.bounds),
        "lens_window": cfg.lens_window,
        **(_strong_settings(attack) if attack.method == STRONG else {}),
    }


def _settings_beyond_the_paper(cfg: Any) -> dict[str, Any]:
    """Split, saliency and surrogate settings in use that the paper does not have; none for its setups,
    so their result files (and resumable CSVs) stay as they were."""
    out: dict[str, Any] = dict(split_setting(cfg))
    if cfg.saliency_type == "smoothgrad":
        out.update(smoothgrad_samples=cfg.smoothgrad_samples, smoothgrad_noise=cfg.smoothgrad_noise)
    if cfg.saliency_type == "ig" and cfg.ig_baseline != 0.0:
        out["ig_baseline"] = cfg.ig_baseline
    if cfg.attribution_attack_surrogate != "softplus":
        out["attribution_attack_surrogate"] = cfg.attribution_attack_surrogate
    return out


def strong_direction_steps(cfg: Any) -> int:
    """IG points of the strong evaluation's directions: the key, else num_IG_steps (all of them)."""
    return cfg.strong_direction_ig_steps or cfg.num_IG_steps


def _strong_settings(attack: AttackSettings) -> dict[str, Any]:
    # The budget level and the member list: a strong result written before them lacks these keys,
    # so its settings differ and it is redone (the pipelines compare result_settings).
    walks = portfolio(attack.starts, attack.direction_points, attack.share)
    return {
        "attribution_attack_budget": attack.budget,
        "strong_random_starts": attack.starts,
        "strong_steps": attack.strong_steps,
        "strong_direction_ig_steps": attack.direction_points,
        "members": [m.name for m in walks],
        # Every member but the faithful walk moves every stride-th iteration (the shared budget): a
        # result written when every member moved at every iteration lacks the key, so it is redone.
        "strong_member_strides": [w.stride for w in walks],
    }


#: Later work's similarities of the clean and the reported perturbed map (:func:`map_similarities`).
SIMILARITY_FIELDS = ("cosine", "lens_intersection", "lens_kendall")
#: The same in the strong files: the neighbourhood Kendall τ is our own construction, not a LENS metric;
#: and the LENS recall (the share of the worst-case map's top k near the clean map's top k).
STRONG_SIMILARITY_FIELDS = ("cosine", "lens_intersection", "neighbourhood_kendall", "lens_recall")


def _example_fields(settings: dict[str, Any]) -> tuple[str, ...]:
    """The CSV columns: EXAMPLE_FIELDS, the map similarities, and for the strong evaluation the
    label-keeping flag, the member breakdown and the running worst case at the step grid."""
    if "members" not in settings:
        return EXAMPLE_FIELDS + SIMILARITY_FIELDS
    return (EXAMPLE_FIELDS + STRONG_SIMILARITY_FIELDS + ("label_kept",)
            + tuple(f"worst_{m}_member" for m in METRICS)
            + tuple(f"{name}.{m}" for name in settings["members"] for m in METRICS)
            + step_columns(settings["strong_steps"], METRICS))


@locks_model_dir("eval attribution")
def evaluate_attribution(cfg: Any) -> dict[str, Any]:
    """IN/CO of the run's latest checkpoint on the first ``num_attribution_examples`` test images
    (default ``num_eval_examples``).

    Only correctly classified images are attacked; the means run over them. Images go through
    the attack ``attribution_batch_size`` (else ``eval_batch_size``) at a time, chunked to
    ``memory_budget_mb``. Resumes from the per-example CSV when its settings match. Under torchrun
    the batches are shared among the ranks and rank 0 writes the files. Returns (and
    writes atomically) ``top_k_intersection``, ``kendall``, ``spearman``, ``cosine``,
    ``lens_top_k_intersection``, ``lens_kendall`` (``lens_window``), ``num_examples``,
    ``num_attacked``, ``accuracy`` and the settings. Raises UserInputError for bad settings
    (checked before anything is loaded) or a run without a checkpoint.
    """
    info = cfg.dataset_info()
    _, h, w = info.image_shape
    method = cfg.attribution_attack_method
    attack = AttackSettings.from_config(cfg, info)
    attack.check_image((h, w))
    model, meta, split, n, device = load_model_and_data(cfg)
    n = min(cfg.num_attribution_examples or n, len(split))
    settings = attack_settings(cfg, info, meta)
    run_dir = Path(cfg.model_dir)
    result_file, examples_file = result_files(method)
    log = ExampleLog(run_dir / examples_file, settings, _example_fields(settings))
    done = dist.run_on_main(lambda: set(log.open()))  # rank 0 owns the files
    todo = [i for i in range(n) if i not in done]
    attack = AttackSettings.of(attack, chunk_size=_chunk_size(cfg, model, split, device))
    world, rank = dist.world_size(), dist.rank()
    todo_batches = list(batches(todo, cfg.attribution_batch_size or cfg.eval_batch_size))
    desc = "strong attribution attack" if method == "strong" else "attribution attack"
    with progress(n, n - len(todo), desc, enabled=dist.is_main()) as bar:
        for first in range(0, len(todo_batches), world):
            # One round: batch first + r goes to rank r; a rank past the end computes nothing.
            rows: list[tuple] = []
            if first + rank < len(todo_batches):
                rows = _attack_rows(cfg, model, split, todo_batches[first + rank], device, attack)
            for batch_rows in dist.all_gather_object(rows) if world > 1 else [rows]:
                if dist.is_main():
                    log.append(batch_rows)
                bar.update(len(batch_rows))
    result = dist.run_on_main(lambda: _write_result(log, n, settings, run_dir / result_file))
    logger.info("IN %.4f, Kendall %.4f, Spearman %.4f over %d attacked of %d", result["top_k_intersection"],
                result["kendall"], result["spearman"], result["num_attacked"], n)
    return result


def _attack_rows(cfg: Any, model: torch.nn.Module, split: Any, idx: torch.Tensor, device: torch.device,
                 attack: AttackSettings) -> list[tuple]:
    """Attack the test images ``idx`` (LongTensor (B,)); one row per image in ``_example_fields`` order
    (for the strong evaluation also the member breakdown). Random draws come from generators seeded
    by (``random_seed``, test index), so a row does not depend on the batch."""
    x, y = split.batch(idx)
    x, y = x.to(device), y.to(device)
    r = attribution_attack(model, x, y, attack, example_ids=idx.tolist())
    similar = map_similarities(r.saliency, r.saliency_adv, r.attacked, attack.eval_k, cfg.lens_window,
                               recall=attack.method == STRONG)
    columns = [idx, y, r.attacked, r.intersection, r.spearman, r.kendall, r.found, r.flat_rule_steps, *similar]
    # One host transfer per batch, after the attack.
    columns = [c.cpu().tolist() for c in columns]
    if attack.method != STRONG:
        return list(zip(*columns))
    names = ("",) + r.members  # worst_member −1 (nothing went below 1) reads as ""
    worst = [[names[i + 1] for i in r.worst_member[m].cpu().tolist()] for m in METRICS]
    per_member = [r.member_values[m][j].cpu().tolist() for j in range(len(r.members)) for m in METRICS]
    # The running worst case after t steps (row t − 1 of the history) at the step grid.
    at_steps = [r.history[m][t - 1].cpu().tolist() for t in step_grid(r.history["kendall"].shape[0]) for m in METRICS]
    return list(zip(*columns, r.label_kept.cpu().tolist(), *worst, *per_member, *at_steps))


def map_similarities(s0: torch.Tensor, s_adv: torch.Tensor, attacked: torch.Tensor, k: int,
                     window: int, *, recall: bool = False) -> tuple[torch.Tensor, ...]:
    """(B,) cosine similarity, LENS top-k intersection and our neighbourhood Kendall τ (the faithful
    files' ``lens_kendall``, the strong files' ``neighbourhood_kendall``) of the clean maps ``s0`` and
    the reported perturbed maps ``s_adv`` (B, H, W); NaN where not ``attacked``. ``recall``: a
    fourth value, the w-LENS-recall@k of ``s_adv`` against ``s0`` (``metrics.lens_recall``).

    Later work's metrics (``robustattr.metrics``), taken at the iterate the attack reports (for the
    strong evaluation: the lowest-Kendall one), not minimised separately.
    """
    nan = torch.full_like(s0[:, 0, 0], float("nan"))
    values = (cosine_similarity(s0, s_adv), lens_top_k_intersection(s0, s_adv, k, window).to(s0.dtype),
              neighbourhood_kendall_tau(s0, s_adv, window))
    if recall:
        values += (lens_recall(s0, s_adv, k, window).to(s0.dtype),)
    return tuple(torch.where(attacked, v, nan) for v in values)


def _write_result(log: ExampleLog, n: int, settings: dict[str, Any], path: Path) -> dict[str, Any]:
    """The summary of the first ``n`` rows of ``log``, written atomically (rank 0, after all rows)."""
    rows = [log.rows[i] for i in range(n)]
    result = {**_summary(rows), **settings}
    if "members" in settings:
        result["member_breakdown"] = _member_breakdown(rows, settings["members"])
        result["convergence"] = convergence(rows, settings["members"], settings["strong_steps"], METRICS)
    write_json_atomic(path, result)
    return result


def _mean(rows: list[dict], key: str) -> float:
    return math.fsum(r[key] for r in rows) / len(rows) if rows else float("nan")


def _summary(rows: list[dict]) -> dict[str, Any]:
    attacked = [r for r in rows if r["correct"]]
    ours = "neighbourhood_kendall" if rows and "neighbourhood_kendall" in rows[0] else "lens_kendall"
    out = {
        "top_k_intersection": _mean(attacked, "intersection"),
        "kendall": _mean(attacked, "kendall"),
        "spearman": _mean(attacked, "spearman"),
        "cosine": _mean(attacked, "cosine"),
        "lens_top_k_intersection": _mean(attacked, "lens_intersection"),
        ours: _mean(attacked, ours),
        **({"lens_recall": _mean(attacked, "lens_recall")} if rows and "lens_recall" in rows[0] else {}),
        "num_examples": len(rows),
        "num_attacked": len(attacked),
        # Attacked examples left at (1, 1, 1): no label-keeping iterate lowered the criterion.
        "num_not_found": sum(1 for r in attacked if not r["found"]),
        # Attacked examples whose walk met a flat objective and took the rule's random step.
        "num_flat_rule": sum(1 for r in attacked if r["flat_rule_steps"] > 0),
        "accuracy": len(attacked) / len(rows) if rows else float("nan"),
    }
    if rows and "label_kept" in rows[0]:
        # Two conventions for an image no member found a label-keeping iterate for: scored (1, 1, 1)
        # as the paper does (the means above), or dropped from the means as ART/SSR do.
        kept = [r for r in attacked if r["label_kept"]]
        out.update(num_no_label_keeping=len(attacked) - len(kept),
                   top_k_intersection_dropped=_mean(kept, "intersection"), kendall_dropped=_mean(kept, "kendall"),
                   spearman_dropped=_mean(kept, "spearman"))
    return out


def _member_breakdown(rows: list[dict], members: list[str]) -> dict[str, Any]:
    """Per member: its own means over the attacked examples, and for how many it gave the worst case."""
    attacked = [r for r in rows if r["correct"]]
    out: dict[str, Any] = {}
    for name in members:
        out[name] = {
            "top_k_intersection": _mean(attacked, f"{name}.intersection"),
            "kendall": _mean(attacked, f"{name}.kendall"),
            "spearman": _mean(attacked, f"{name}.spearman"),
            "worst_case_count": {m: sum(1 for r in attacked if r[f"worst_{m}_member"] == name) for m in METRICS},
        }
    out["none"] = {"worst_case_count": {m: sum(1 for r in attacked if r[f"worst_{m}_member"] == "")
                                        for m in METRICS}}
    return out


def _chunk_size(cfg: Any, model: torch.nn.Module, split: Any, device: torch.device) -> int | None:
    """Examples per double-backprop pass: ``memory_budget_mb``'s bound and, on a CPU, ~128 points."""
    points = saliency_method(cfg, (0.0, 1.0)).points_per_example
    per_point = 0
    if cfg.memory_budget_mb is not None:
        x, _ = split.batch(torch.tensor([0]))
        # ×3: the surrogate's double backprop keeps forward, gradient and grad-of-grad graphs.
        per_point = 3 * activation_bytes_per_image(model, x.to(device))
    return default_chunk_size(points, device, cfg.memory_budget_mb, per_point)
