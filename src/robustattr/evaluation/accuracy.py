"""Natural accuracy (NA) and PGD accuracy (AA), spec §4.1 → ``RUN_DIR/eval_pgd.json``.

Under ``torchrun`` the batches are dealt round-robin to the ranks and rank 0 adds up their
per-batch sums in batch order, so the file is the one a single process writes. PGD's random starts
come from one generator that a single process draws from batch after batch; a rank skipping a batch
draws (and drops) that batch's start, so every batch starts from the same noise as in one process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from robustattr import distributed as dist
from robustattr.attacks.threat_model import uniform_noise
from robustattr.attacks import pgd
from robustattr.evaluation._common import (
    batches, checkpoint_settings, load_model_and_data, progress, round_robin, split_setting,
)
from robustattr.evaluation.results import write_json_atomic
from robustattr.run_lock import locks_model_dir

__all__ = ["evaluate_pgd", "PGD_RESULT_FILE", "result_settings"]

logger = logging.getLogger(__name__)

PGD_RESULT_FILE = "eval_pgd.json"

# Losses PGD can ascend on an evaluation model; the IG losses are training objectives, which the
# original's eval script cannot build (it crashes, spec §10.4), so AA always uses xent for them.
_EVAL_LOSSES = ("xent", "cw")


def _attack_loss(cfg: Any) -> str:
    """The loss PGD ascends here: the config's when it is an evaluation loss, else xent (spec §10.4)."""
    return cfg.loss_func if cfg.loss_func in _EVAL_LOSSES else "xent"


def result_settings(cfg: Any) -> dict[str, Any]:
    """What defines ``eval_pgd.json``'s numbers besides the checkpoint, from the config alone, as the
    file records it: a file that agrees on all of these and on the checkpoint is current."""
    info = cfg.dataset_info()
    n = min(cfg.num_eval_examples, info.split_sizes[cfg.eval_split])
    return {
        **split_setting(cfg),
        "num_examples": n,
        "num_adversarial_examples": min(cfg.num_adversarial_examples or n, n),
        "epsilon": cfg.epsilon,
        "num_steps": cfg.num_steps,
        "step_size": cfg.step_size,
        "random_start": cfg.random_start,
        "loss": _attack_loss(cfg),
        "random_seed": cfg.random_seed,
        "bounds": list(info.value_range),
    }


@locks_model_dir("eval pgd")
def evaluate_pgd(cfg: Any) -> dict[str, Any]:
    """NA on the first ``num_eval_examples`` test images, AA on the first ``num_adversarial_examples``.

    Evaluates the run's latest checkpoint. PGD uses the config's ε, ``num_steps``, ``step_size``,
    ``random_start`` and ``loss_func`` (xent in place of an IG loss), seeded with ``random_seed``;
    batches of ``eval_batch_size``. Writes ``model_dir/eval_pgd.json`` atomically and returns the
    same dict: ``natural_accuracy``, ``adversarial_accuracy`` (fractions in [0, 1]),
    ``num_examples`` (NA), ``num_adversarial_examples`` (AA), mean cross-entropies and the attack
    settings. Raises UserInputError for a run without a checkpoint.
    """

    info = cfg.dataset_info()
    model, meta, split, n, device = load_model_and_data(cfg)
    loss = _attack_loss(cfg)
    if loss != cfg.loss_func:
        logger.info("loss_func=%s is a training loss; PGD accuracy uses xent (spec §10.4)", cfg.loss_func)
    n_adv = min(cfg.num_adversarial_examples or n, n)
    generator = torch.Generator(device=device).manual_seed(cfg.random_seed)
    all_batches = list(batches(list(range(n)), cfg.eval_batch_size))
    mine = {pos for pos, _ in round_robin(all_batches, dist.world_size(), dist.rank())}
    # Per batch: (correct, correct under PGD, clean CE, PGD CE), float64, kept on the device.
    batch_sums: dict[int, torch.Tensor] = {}
    image_shape = tuple(split.batch(all_batches[0][:1])[0].shape[1:]) if all_batches else ()
    with progress(sum(len(all_batches[pos]) for pos in mine), 0, "NA/AA", enabled=dist.is_main()) as bar:
        for pos, idx in enumerate(all_batches):
            k = min(len(idx), n_adv - int(idx[0]))  # AA runs on the first n_adv images only
            if pos not in mine:
                if k > 0 and cfg.random_start:  # the draw this batch's PGD makes in a single process
                    uniform_noise((k, *image_shape), float(cfg.epsilon), generator, device=device)
                continue
            x, y = split.batch(idx)
            x, y = x.to(device), y.to(device)
            sums = torch.zeros(4, dtype=torch.float64, device=device)
            with torch.inference_mode():
                clean = model(x)
            sums[0] += (clean.argmax(1) == y).sum()
            sums[2] += F.cross_entropy(clean, y, reduction="sum").double()
            if k > 0:
                x_adv = pgd(model, x[:k], y[:k], cfg.epsilon, cfg.num_steps, cfg.step_size,
                            random_start=cfg.random_start, loss=loss, bounds=info.value_range,
                            generator=generator)
                with torch.inference_mode():
                    adv = model(x_adv)
                sums[1] += (adv.argmax(1) == y[:k]).sum()
                sums[3] += F.cross_entropy(adv, y[:k], reduction="sum").double()
            batch_sums[pos] = sums
            bar.update(len(idx))
    gathered: dict[int, list[float]] = {}
    for part in dist.all_gather_object({pos: sums.tolist() for pos, sums in batch_sums.items()}):
        gathered.update(part)
    # Added in batch order, as a single process does, so the float64 sums agree to the last bit.
    totals = torch.zeros(4, dtype=torch.float64)
    for pos in range(len(all_batches)):
        totals += torch.tensor(gathered[pos], dtype=torch.float64)
    correct, correct_adv, xent, xent_adv = totals.tolist()
    result = {
        "natural_accuracy": correct / n,
        "adversarial_accuracy": correct_adv / n_adv,
        "num_examples": n,
        "num_adversarial_examples": n_adv,
        "natural_xent": xent / n,
        "adversarial_xent": xent_adv / n_adv,
        "epsilon": cfg.epsilon,
        "num_steps": cfg.num_steps,
        "step_size": cfg.step_size,
        "random_start": cfg.random_start,
        "loss": loss,
        "loss_func": cfg.loss_func,
        "random_seed": cfg.random_seed,
        "bounds": list(info.value_range),
        **split_setting(cfg),
        **checkpoint_settings(cfg, meta),
    }
    if dist.is_main():  # written once, complete, after every rank's batches are in
        write_json_atomic(Path(cfg.model_dir) / PGD_RESULT_FILE, result)
    logger.info("NA %.4f on %d images, AA %.4f on %d", result["natural_accuracy"], n,
                result["adversarial_accuracy"], n_adv)
    return result
