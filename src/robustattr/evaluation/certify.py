"""``robustattr eval certify``: the sparsified-SmoothGrad top-k certificate beside an attack on the same map.

For each correctly classified image among the first ``num_attribution_examples`` test images (as
the attribution evaluation counts them) of the run's latest checkpoint:

- the certified top-k intersection at ℓ2 radius ``certify_radius``
  (:func:`robustattr.attribution.smoothgrad_certificate.smoothgrad_certificate`): a lower bound,
  holding with probability ``certify_confidence``;
- the attacked top-k intersection (:func:`robustattr.attacks.smoothed_map_attack.smoothed_map_attack`):
  the lowest an ℓ2 attack in the same ball found, keeping the label: an upper bound.

Both use the same noise samples, drawn per example from (``random_seed``, test index), so a
result depends only on the image and the settings, never on the batch. Writes
``RUN_DIR/eval_certify_examples.csv`` batch by batch (resumable: ``evaluation.results.ExampleLog``)
and then ``RUN_DIR/eval_certify.json``. A single process: it does not join a torchrun launch.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from robustattr.attacks.smoothed_map_attack import smoothed_map_attack
from robustattr.attribution import activation_bytes_per_image, default_chunk_size
from robustattr.attribution.smoothgrad_certificate import NOISE_BLOCK, hoeffding_margin, keep_count, \
    smoothgrad_certificate
from robustattr.evaluation._common import (
    batches, checkpoint_settings, load_model_and_data, progress, split_setting,
)
from robustattr.evaluation.results import ExampleLog, write_json_atomic
from robustattr.run_lock import locks_model_dir

__all__ = ["evaluate_certificate", "CERTIFY_RESULT_FILE", "CERTIFY_EXAMPLES_FILE", "CERTIFY_FIELDS",
           "certificate_seed", "result_settings"]

logger = logging.getLogger(__name__)

CERTIFY_RESULT_FILE = "eval_certify.json"
CERTIFY_EXAMPLES_FILE = "eval_certify_examples.csv"
#: Per-image columns; the values are NaN for a misclassified image (neither certified nor attacked).
CERTIFY_FIELDS = ("index", "label", "correct", "certified_top_k_intersection", "attacked_top_k_intersection",
                  "certified_count", "attack_moved", "attack_label_kept_steps")


def certificate_seed(random_seed: int, index: int) -> int:
    """The noise seed of test image ``index``: (random_seed, index) packed in one integer."""
    return int(random_seed) * 2**32 + int(index)


def _settings(cfg: Any, info: Any, meta: dict) -> dict[str, Any]:
    num_pixels = info.image_shape[1] * info.image_shape[2]
    steps = cfg.certify_attack_steps
    return {
        **checkpoint_settings(cfg, meta),
        **split_setting(cfg),
        "certify_sigma": cfg.certify_sigma,
        "certify_samples": cfg.certify_samples,
        "certify_confidence": cfg.certify_confidence,
        "certify_k": cfg.certify_k,
        "certify_radius": cfg.certify_radius,
        "certify_sparsity": cfg.certify_sparsity,
        "certify_keep_pixels": keep_count(cfg.certify_sparsity, num_pixels),
        "certify_margin": hoeffding_margin(num_pixels, cfg.certify_samples, cfg.certify_confidence),
        "certify_attack_steps": steps,
        "certify_attack_samples": cfg.certify_attack_samples,
        "certify_attack_step_size": 2.5 * cfg.certify_radius / steps if steps else 0.0,
        "attribution_attack_surrogate": cfg.attribution_attack_surrogate,
        "random_seed": cfg.random_seed,
    }


def result_settings(cfg: Any, info: Any = None) -> dict[str, Any]:
    """The settings a certificate result records, less the checkpoint's (step and digest): what the
    pipelines compare to tell whether ``eval_certify.json`` is current."""
    settings = _settings(cfg, info or cfg.dataset_info(), {})
    return {k: v for k, v in settings.items() if k not in ("checkpoint_step", "checkpoint_sha256")}


@locks_model_dir("eval certify")
def evaluate_certificate(cfg: Any) -> dict[str, Any]:
    """Certified and attacked top-k intersections of the run's sparsified SmoothGrad maps.

    Images go ``attribution_batch_size`` (else ``eval_batch_size``) at a time, chunked to
    ``memory_budget_mb`` (on a CPU ~128 points a pass). Returns (and writes atomically)
    ``certified_top_k_intersection`` and ``attacked_top_k_intersection`` (means over the correctly
    classified images), ``num_examples``, ``num_attacked``, ``num_certified_above_attacked`` (images
    where the lower bound exceeds the upper one: 0 unless the certificate's 1 − η failure occurred),
    ``accuracy`` and the settings. Raises UserInputError for a run without a checkpoint.
    """
    info = cfg.dataset_info()
    model, meta, split, n, device = load_model_and_data(cfg)
    n = min(cfg.num_attribution_examples or n, len(split))
    settings = _settings(cfg, info, meta)
    run_dir = Path(cfg.model_dir)
    log = ExampleLog(run_dir / CERTIFY_EXAMPLES_FILE, settings, CERTIFY_FIELDS)
    done = set(log.open())
    todo = [i for i in range(n) if i not in done]
    chunk = _chunk_size(cfg, model, split, device)
    with progress(n, n - len(todo), "certificate") as bar:
        for idx in batches(todo, cfg.attribution_batch_size or cfg.eval_batch_size):
            rows = _certify_rows(cfg, model, split, idx, device, info, chunk)
            log.append(rows)
            bar.update(len(rows))
    rows = [log.rows[i] for i in range(n)]
    result = {**_summary(rows), **settings}
    write_json_atomic(run_dir / CERTIFY_RESULT_FILE, result)
    logger.info("certified %.4f, attacked %.4f top-%d intersection over %d attacked of %d",
                result["certified_top_k_intersection"], result["attacked_top_k_intersection"], cfg.certify_k,
                result["num_attacked"], n)
    return result


def _certify_rows(cfg: Any, model: torch.nn.Module, split: Any, idx: torch.Tensor, device: torch.device,
                  info: Any, chunk: int | None) -> list[tuple]:
    """Certify and attack the correctly classified images of ``idx``; one row per image (CERTIFY_FIELDS)."""
    x, y = split.batch(idx)
    x, y = x.to(device), y.to(device)
    with torch.no_grad():
        correct = model(x).argmax(dim=1) == y
    ids = idx.tolist()
    nan = float("nan")
    values = {i: (nan, nan, nan, nan, nan) for i in ids}
    if bool(correct.any()):
        sel = correct.nonzero().squeeze(1)
        xs, ys = x[sel], y[sel]
        seeds = [certificate_seed(cfg.random_seed, ids[j]) for j in sel.tolist()]
        common = dict(k=cfg.certify_k, samples=cfg.certify_samples, sigma=cfg.certify_sigma, radius=cfg.certify_radius)
        cert = smoothgrad_certificate(model, xs, confidence=cfg.certify_confidence, sparsity=cfg.certify_sparsity,
                                      seeds=seeds, target=ys, chunk_size=chunk, **common)
        attack = smoothed_map_attack(
            model, xs, ys, cert.smoothed, steps=cfg.certify_attack_steps, direction_samples=cfg.certify_attack_samples,
            keep=keep_count(cfg.certify_sparsity, xs.shape[-2] * xs.shape[-1]), seeds=seeds, bounds=info.value_range,
            surrogate=cfg.attribution_attack_surrogate, chunk_size=chunk, **common)
        columns = [cert.certified_intersection, attack.intersection, cert.certified_count, attack.moved,
                   attack.label_kept_steps]
        columns = [c.cpu().tolist() for c in columns]  # one host transfer per batch
        for j, row in zip(sel.tolist(), zip(*columns)):
            values[ids[j]] = (float(row[0]), float(row[1]), int(row[2]), int(row[3]), int(row[4]))
    return [(i, label, bool(ok), *values[i]) for i, label, ok in zip(ids, y.tolist(), correct.tolist())]


def _mean(rows: list[dict], key: str) -> float:
    return math.fsum(r[key] for r in rows) / len(rows) if rows else float("nan")


def _summary(rows: list[dict]) -> dict[str, Any]:
    attacked = [r for r in rows if r["correct"]]
    return {
        "certified_top_k_intersection": _mean(attacked, "certified_top_k_intersection"),
        "attacked_top_k_intersection": _mean(attacked, "attacked_top_k_intersection"),
        "num_examples": len(rows),
        "num_attacked": len(attacked),
        "num_certified_above_attacked": sum(1 for r in attacked if r["certified_top_k_intersection"]
                                            > r["attacked_top_k_intersection"]),
        "num_attack_moved": sum(1 for r in attacked if r["attack_moved"]),
        "accuracy": len(attacked) / len(rows) if rows else float("nan"),
    }


def _chunk_size(cfg: Any, model: torch.nn.Module, split: Any, device: torch.device) -> int | None:
    """Examples per pass: each brings max(NOISE_BLOCK, certify_attack_samples) points (×3 for the attack's
    double backprop under ``memory_budget_mb``)."""
    points = max(NOISE_BLOCK, cfg.certify_attack_samples)
    per_point = 0
    if cfg.memory_budget_mb is not None:
        x, _ = split.batch(torch.tensor([0]))
        per_point = 3 * activation_bytes_per_image(model, x.to(device))
    return default_chunk_size(points, device, cfg.memory_budget_mb, per_point)
