"""The training loop: data order → objective → update → logs and checkpoints (spec §3.4).

Step numbering: ``step`` counts completed updates. The batch drawn at step s is logged as step s
(metrics describe the weights *before* its update, as the original printed them), and the
checkpoint written after it is checkpoint s+1, holding the weights after s+1 updates; one is
written every ``num_checkpoint_steps`` updates and after the last one. (The original saved before
the update, so its last 100 updates were never kept, §10.12.)

Resuming (``continue_train``) restores weights, optimizer, torch/NumPy RNG and data-order state,
so on CPU the weights after N steps equal those of an uninterrupted run bit for bit.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from robustattr import data, models
from robustattr.attribution import activation_bytes_per_image, default_chunk_size
from robustattr.checkpoints import (
    capture_rng_state, latest_checkpoint, load_checkpoint, load_optimizer_state, restore_rng_state,
    save_checkpoint,
)
from robustattr.config import resolve_device
from robustattr.errors import TrainingError, UserInputError
from robustattr.training._signals import deferred_sigint, optional_summary_writer
from robustattr.training.data_order import order_for_dataset
from robustattr.training.objectives import ObjectiveParams, get_objective
from robustattr.training.run_dir import MetricsLog, prepare_run_dir, write_config
from robustattr.training.schedules import build_optimizer, learning_rate_at

__all__ = ["train"]

log = logging.getLogger(__name__)


def _load_init(model: nn.Module, cfg: Any) -> None:
    """``init_from``: weights only (a fresh optimizer, step 0) from a run dir or checkpoint file."""
    source = Path(cfg.init_from)
    if not source.exists():
        raise UserInputError(f"init_from {source} does not exist: give a run directory or a checkpoint file")
    state_dict, meta = load_checkpoint(source)
    if meta.get("model", cfg.model) != cfg.model:
        raise UserInputError(f"init_from {source} holds a '{meta['model']}' model, the config asks for '{cfg.model}'")
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise UserInputError(f"init_from {source} does not fit model '{cfg.model}': "
                             f"{str(exc).strip().splitlines()[0]}") from None
    log.info("initialised from %s (step %s of that run)", source, meta.get("step"))


def _chunk_sizes(cfg: Any, model: nn.Module, split: Any, device: torch.device) -> tuple[int | None, int | None]:
    """Examples per chunk for the update's regulariser and for PGD.

    ``memory_budget_mb`` bounds them (a double-backprop pass keeps about 3× the activations of
    each path point, spec §8); on a CPU a pass is also kept near 128 path points, the fastest size
    measured there. Chunking changes only the order of float additions, not the objective.
    """
    act = 0
    if cfg.memory_budget_mb is not None:
        act = 3 * activation_bytes_per_image(model, split.batch(slice(0, 1))[0].to(device))
    uses_ig = cfg.loss_func not in ("xent", "cw")
    pgd_points = (math.ceil(cfg.m / cfg.approx_factor) if cfg.loss_func.endswith("_approx") else cfg.m) if uses_ig else 1
    update = default_chunk_size(cfg.m, device, cfg.memory_budget_mb, act)
    attack = default_chunk_size(pgd_points, device, cfg.memory_budget_mb, act)
    log.info("%s examples per regulariser pass, %s per PGD pass (memory_budget_mb=%s, device %s)",
             update, attack, cfg.memory_budget_mb, device)
    return update, attack


def _record(step: int, lr: float, logs: dict[str, torch.Tensor], rate: float | None) -> dict[str, Any]:
    record: dict[str, Any] = {"step": step, "lr": lr}
    record.update({k: float(v) for k, v in logs.items()})  # one host sync, only on output steps
    record["examples_per_s"] = rate
    return record


def train(cfg: Any, overwrite: bool = False, *, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg.training_objective`` on ``cfg.dataset`` into ``cfg.model_dir``.

    Args:
        cfg: a validated ``robustattr.config.Config``.
        overwrite: clear an existing run in ``model_dir`` first (else it is refused unless
            ``cfg.continue_train``, which resumes from its latest checkpoint); overwrite wins over
            continue_train.
        progress: show a tqdm bar (steps, examples/s, nat/adv accuracy, IG term).

    Returns:
        JSON-able summary: ``run_dir``, ``steps`` (updates done in total), ``steps_this_run``,
        ``resumed_from``, ``final_checkpoint``, ``seconds_per_step``, ``metrics`` (last logged).

    Raises:
        UserInputError: an existing run without overwrite/continue_train, bad init_from, bad data.
        TrainingError: the loss became NaN/inf (names the step and the last good checkpoint).
        KeyboardInterrupt: after saving a checkpoint of the current step.
    """
    device = resolve_device(cfg.device)
    objective = get_objective(cfg.training_objective)
    run_dir = Path(cfg.model_dir)
    cfg_dict = cfg.to_dict()
    resume = prepare_run_dir(run_dir, cfg_dict, overwrite=overwrite, continue_train=cfg.continue_train)
    split = data.load(cfg.dataset, "train", root=cfg.data_root, source_dir=cfg.data_path,
                      label_order=cfg.flower_label_order)

    torch.manual_seed(cfg.random_seed)  # initialisation and PGD random starts
    np.random.seed(cfg.np_random_seed % 2**32)
    model = models.create(cfg.model, split.info.num_classes)
    if cfg.init_from and not resume:
        _load_init(model, cfg)
    model.to(device)
    optimizer = build_optimizer(cfg, model.parameters())
    try:
        order = order_for_dataset(cfg.dataset, len(split), cfg.training_batch_size, cfg.np_random_seed)
    except ValueError as exc:
        raise UserInputError(f"config key 'training_batch_size': {exc}") from None
    start = 0
    last_ckpt = None
    last_record: dict[str, Any] | None = None
    if resume:
        last_ckpt = latest_checkpoint(run_dir)
        state_dict, meta = load_checkpoint(last_ckpt)
        model.load_state_dict(state_dict, strict=True)
        opt_state = load_optimizer_state(last_ckpt)
        if opt_state is not None:
            optimizer.load_state_dict(opt_state)
        order.load_state_dict(meta["data_order"])
        restore_rng_state(meta["rng"])
        start = int(meta["step"])
        last_record = meta.get("metrics")
        log.info("resuming %s from step %d", run_dir, start)
        if start > cfg.max_num_training_steps:
            log.warning("the run is already at step %d > max_num_training_steps=%d; nothing to do",
                        start, cfg.max_num_training_steps)
    write_config(run_dir, cfg_dict)

    chunk, pgd_chunk = _chunk_sizes(cfg, model, split, device)
    params = ObjectiveParams.from_config(cfg, split.info.value_range, chunk, pgd_chunk)
    total = int(cfg.max_num_training_steps)
    batch = int(cfg.training_batch_size)
    extra = {"model": cfg.model, "dataset": cfg.dataset, "training_objective": cfg.training_objective,
             "config_digest": cfg.digest()}

    def checkpoint(step: int, rng: dict[str, Any] | None = None, order_state: dict | None = None) -> Path:
        state = {**extra, "data_order": order_state or order.state_dict(), "metrics": last_record}
        return save_checkpoint(run_dir, step, model, optimizer, state=state, keep=cfg.keep_checkpoints,
                               rng_state=rng)

    log.info("training %s on %s into %s: steps %d..%d, batch %d, device %s, %d parameters",
             cfg.training_objective, cfg.dataset, run_dir, start, total, batch, device, models.parameter_count(model))
    metrics = MetricsLog(run_dir / "metrics.jsonl", resume_step=start if resume else None)
    writer = optional_summary_writer(run_dir)
    bar = tqdm(total=total, initial=start, disable=not progress, unit="step", dynamic_ncols=True,
               desc=f"{cfg.training_objective} {cfg.dataset}")
    step, phase, snapshot = start, "idle", None
    began = window_time = time.perf_counter()
    window_step = start
    model.train()
    try:
        with deferred_sigint() as interrupt_requested:
            if total == start == 0:
                last_ckpt = checkpoint(0)  # nothing to train: keep the initial weights loadable
            while step < total:
                if interrupt_requested():
                    raise KeyboardInterrupt
                snapshot = (capture_rng_state(), order.state_dict())  # step-start state, for Ctrl-C
                phase = "forward"
                x, y = split.batch(order.next())
                x, y = x.to(device), y.to(device)
                lr = learning_rate_at(cfg, step)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                out = objective(model, x, y, params)
                if not bool(torch.isfinite(out.loss)):
                    where = last_ckpt if last_ckpt is not None else "none (no checkpoint was written)"
                    raise TrainingError(
                        f"loss is {float(out.loss.detach())} at step {step} (before update {step + 1}); training "
                        f"stopped without saving these weights; last good checkpoint: {where}")
                out.loss.backward()
                if step % cfg.num_output_steps == 0 or step % cfg.num_summary_steps == 0:
                    now = time.perf_counter()
                    rate = batch * (step - window_step) / (now - window_time) if step > window_step else None
                    window_time, window_step = now, step
                    record = _record(step, lr, out.logs, rate)
                    if step % cfg.num_output_steps == 0:
                        last_record = record
                        metrics.write(record)
                        bar.set_postfix({k: (f"{v:.3g}" if v is not None else "-") for k, v in record.items()
                                         if k in ("nat_acc", "adv_acc", "ig", "examples_per_s")})
                        if not progress:
                            log.info("step %d: %s", step, record)
                    if writer is not None and step % cfg.num_summary_steps == 0:
                        for key, value in record.items():
                            if key != "step" and value is not None:
                                writer.add_scalar(key, value, step)
                phase = "update"
                optimizer.step()
                step += 1
                phase = "idle"
                bar.update(1)
                if step % cfg.num_checkpoint_steps == 0 or step == total:
                    last_ckpt = checkpoint(step)
    except KeyboardInterrupt:
        if phase == "forward" and snapshot is not None:  # weights untouched: rewind to the step start
            last_ckpt = checkpoint(step, *snapshot)
        elif phase == "idle":
            last_ckpt = checkpoint(step)
        else:  # inside optimizer.step(): the weights may be half-updated, so they are not saved
            log.warning("interrupted during an update; not saving a checkpoint of step %d", step)
        log.warning("interrupted at step %d; checkpoint %s", step, last_ckpt)
        raise
    finally:
        bar.close()
        metrics.close()
        if writer is not None:
            writer.close()
    elapsed = time.perf_counter() - began
    done = step - start
    return {
        "run_dir": str(run_dir),
        "training_objective": cfg.training_objective,
        "steps": step,
        "steps_this_run": done,
        "resumed_from": start if resume else None,
        "final_checkpoint": str(last_ckpt) if last_ckpt is not None else None,
        "seconds_per_step": elapsed / done if done else None,
        "metrics": last_record,
    }
