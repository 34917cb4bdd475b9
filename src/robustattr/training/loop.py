"""The training loop: data order → objective → update → logs and checkpoints (spec §3.4).

Step numbering: ``step`` counts completed updates. The batch drawn at step s is logged as step s
(metrics describe the weights *before* its update, as the original printed them), and the
checkpoint written after it is checkpoint s+1, holding the weights after s+1 updates; one is
written every ``num_checkpoint_steps`` updates and after the last one. (The original saved before
the update, so its last 100 updates were never kept, §10.12.)

Resuming (``continue_train``) restores weights, optimizer, torch/NumPy RNG and data-order state,
so on CPU the weights after N steps equal those of an uninterrupted run bit for bit.

Under ``torchrun`` (several ranks, see ``robustattr.distributed``) every rank draws the same global
batch from the same data order and takes its contiguous shard; the PGD random start is drawn for
the whole global batch on every rank (so the RNG streams stay those of one process) and sliced.
Each rank's objective returns its share of the single-process loss, and the gradients are summed
over the ranks with one all-reduce after ``backward`` — not DistributedDataParallel, whose hooks
assume one forward and one backward per step, while a step here runs the model hundreds of times
(PGD, IG path points) and differentiates with ``autograd.grad`` and double backprop. Only rank 0
touches the run directory; the checkpoint it writes is the single-process state, so a run can be
resumed with any number of ranks.
"""

from __future__ import annotations

import dataclasses
import logging
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from robustattr import models
from robustattr import distributed as dist
from robustattr.attacks.threat_model import check_epsilon, uniform_noise
from robustattr.attribution import activation_bytes_per_image, default_chunk_size
from robustattr.checkpoints import capture_rng_state, checkpoint_path, save_checkpoint
from robustattr.devices import resolve_device
from robustattr.data.catalog import DATASETS
from robustattr.errors import TrainingError, UserInputError
from robustattr.run_lock import quiet_before_lock, run_dir_lock
from robustattr.training._signals import deferred_sigint, optional_summary_writer
from robustattr.training.data_order import order_for_dataset
from robustattr.training.data_parallel import check_world, combine_gradients, global_logs
from robustattr.training.objectives import ObjectiveParams, get_objective, objective_info
from robustattr.training.resume import load_init, read_init, read_resume_state, resume_from
from robustattr.training.run_dir import MetricsLog, Plan, clear_run, plan_run, write_config
from robustattr.training.schedules import build_optimizer, epsilon_at, learning_rate_at

__all__ = ["train"]

log = logging.getLogger(__name__)


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


def _write_logs(cfg: Any, step: int, record: dict[str, Any], metrics: MetricsLog | None, bar: Any, writer: Any,
                quiet_bar: bool) -> None:
    """A logged step's record to metrics.jsonl, the progress bar (or the log) and TensorBoard."""
    if step % cfg.num_output_steps == 0:
        if metrics is not None:
            metrics.write(record)
        bar.set_postfix({k: (f"{v:.3g}" if v is not None else "-") for k, v in record.items()
                         if k in ("nat_acc", "adv_acc", "ig", "examples_per_s")})
        if quiet_bar:
            log.info("step %d: %s", step, record)
    if writer is not None and step % cfg.num_summary_steps == 0:
        for key, value in record.items():
            if key != "step" and value is not None:
                writer.add_scalar(key, value, step)


def _record(step: int, lr: float, logs: dict[str, torch.Tensor], rate: float | None) -> dict[str, Any]:
    record: dict[str, Any] = {"step": step, "lr": lr}
    record.update({k: float(v) for k, v in logs.items()})  # one host sync, only on output steps
    record["examples_per_s"] = rate
    return record


def _preflight(cfg: Any, cfg_dict: dict[str, Any], run_dir: Path, overwrite: bool
               ) -> tuple[Plan, tuple[dict[str, torch.Tensor], dict[str, Any]] | None]:
    """Everything checkable before anything is created or loaded: the run directory's state, the
    batch against the training-set size, ``data_root``, ``init_from``. Reads only.

    Returns:
        The plan (:func:`plan_run`) and ``init_from``'s weights and sidecar (None when unused).
    """
    plan = plan_run(run_dir, cfg_dict, overwrite=overwrite, continue_train=cfg.continue_train)
    info = DATASETS.get(cfg.dataset)
    if info is not None and cfg.training_batch_size > info.split_sizes["train"]:
        raise UserInputError(f"config key 'training_batch_size' = {cfg.training_batch_size}: larger than the "
                             f"{info.split_sizes['train']} training images of {cfg.dataset}; choose at most that")
    for key in ("data_root", "data_path"):
        folder = getattr(cfg, key)
        if folder is not None and Path(folder).expanduser().exists() and not Path(folder).expanduser().is_dir():
            raise UserInputError(f"config key '{key}' = {json.dumps(folder)}: a file, not a folder; give a folder")
    init = read_init(cfg) if cfg.init_from and plan != "resume" else None
    return plan, init


def train(cfg: Any, overwrite: bool = False, *, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg.training_objective`` on ``cfg.dataset`` into ``cfg.model_dir``.

    Args:
        cfg: a validated ``robustattr.config.Config``.
        overwrite: clear an existing run in ``model_dir`` first (else it is refused unless
            ``cfg.continue_train``, which resumes from its latest checkpoint); overwrite wins over
            continue_train.
        progress: show a tqdm bar (steps, examples/s, nat/adv accuracy, IG term); on rank 0 only.

    Returns:
        JSON-able summary: ``run_dir``, ``steps`` (updates done in total), ``steps_this_run``,
        ``resumed_from``, ``final_checkpoint``, ``seconds_per_step``, ``metrics`` (last logged).

    Raises:
        UserInputError: an existing run without overwrite/continue_train, bad init_from, bad data;
            under torchrun also a batch smaller than the number of ranks, or ranks with different configs.
        TrainingError: the loss became NaN/inf (names the step and the last good checkpoint).
        KeyboardInterrupt: after saving a checkpoint of the current step.
    """
    device = dist.local_device(resolve_device(cfg.device))
    objective = get_objective(cfg.training_objective)
    run_dir = Path(cfg.model_dir)
    cfg_dict = cfg.to_dict()
    if dist.world_size() > 1:
        check_world(cfg_dict, int(cfg.training_batch_size))
    with quiet_before_lock(plan_run.__module__):  # plan_run logs once, under the lock: a refused run prints one line
        plan, init = dist.run_on_main(lambda: _preflight(cfg, cfg_dict, run_dir, overwrite))
    with run_dir_lock(run_dir, "train", create=True):  # one writer per run directory, from here to the end
        plan = dist.run_on_main(  # again under the lock: another process may have been quicker
            lambda: plan_run(run_dir, cfg_dict, overwrite=overwrite, continue_train=cfg.continue_train))
        if cfg.init_from and plan != "resume" and init is None:
            init = dist.run_on_main(lambda: read_init(cfg))
        return _train_holding_lock(cfg, plan=plan, init=init, device=device, objective=objective, progress=progress)


@dataclasses.dataclass
class _Setup:
    """A locked run ready for its first step (:func:`_set_up`)."""

    split: Any
    model: nn.Module
    optimizer: torch.optim.Optimizer
    order: Any
    start: int
    last_ckpt: Path | None
    last_record: dict[str, Any] | None
    metrics: MetricsLog | None


def _set_up(cfg: Any, plan: Plan, init: tuple[dict[str, torch.Tensor], dict[str, Any]] | None,
            device: torch.device) -> _Setup:
    """Data, model, optimizer and data order; the resumed state, or the old run cleared; then
    ``metrics.jsonl`` and ``config.json``. Everything that can still refuse the run (data,
    ``init_from``'s fit, the checkpoint to resume) comes before the old run is cleared
    (``plan == "overwrite"``) and before config.json is written."""
    run_dir = Path(cfg.model_dir)
    cfg_dict = cfg.to_dict()
    batch = int(cfg.training_batch_size)
    resume = plan == "resume"
    split = dist.once_per_machine_first(lambda: cfg.load_split("train"))

    torch.manual_seed(cfg.random_seed)  # initialisation and PGD random starts
    np.random.seed(cfg.np_random_seed % 2**32)
    model = models.create(cfg.model, split.info.num_classes, split.info.image_shape)
    if init is not None and not resume:
        load_init(model, cfg, *init)
    model.to(device)
    optimizer = build_optimizer(cfg, model.parameters())
    try:
        order = order_for_dataset(cfg.dataset, len(split), batch, cfg.np_random_seed)
    except ValueError as exc:
        raise UserInputError(f"config key 'training_batch_size': {exc}") from None
    start = 0
    last_ckpt = None
    last_record: dict[str, Any] | None = None
    if resume:
        saved = dist.run_on_main(lambda: read_resume_state(run_dir))
        last_ckpt, meta = saved["path"], saved["meta"]
        start = resume_from(saved, model, optimizer, order, device, cfg)
        last_record = meta.get("metrics")
        log.info("resuming %s from step %d", run_dir, start)
        if start > cfg.max_num_training_steps:
            log.warning("the run is already at step %d > max_num_training_steps=%d; nothing to do",
                        start, cfg.max_num_training_steps)
    if plan == "overwrite":
        dist.run_on_main(lambda: clear_run(run_dir))
    dist.broadcast_parameters(model)  # replicas start equal, as DistributedDataParallel makes them
    # metrics.jsonl first: a damaged one, or a link there, refuses the run before config.json changes.
    metrics = MetricsLog(run_dir / "metrics.jsonl", resume_step=start if resume else None) if dist.is_main() else None
    if dist.is_main():
        write_config(run_dir, cfg_dict)

    return _Setup(split, model, optimizer, order, start, last_ckpt, last_record, metrics)


def _train_holding_lock(cfg: Any, *, plan: Plan, init: tuple[dict[str, torch.Tensor], dict[str, Any]] | None,
                        device: torch.device, objective: Any, progress: bool) -> dict[str, Any]:
    """:func:`train` once the run directory is locked: :func:`_set_up`, then the steps."""
    run_dir = Path(cfg.model_dir)
    cfg_dict = cfg.to_dict()
    batch = int(cfg.training_batch_size)
    world = dist.world_size()
    resume = plan == "resume"
    setup = _set_up(cfg, plan, init, device)
    split, model, optimizer, order = setup.split, setup.model, setup.optimizer, setup.order
    start, last_ckpt, last_record, metrics = setup.start, setup.last_ckpt, setup.last_record, setup.metrics

    chunk, pgd_chunk = _chunk_sizes(cfg, model, split, device)
    params = ObjectiveParams.from_config(cfg, split.info.value_range, chunk, pgd_chunk)
    total = int(cfg.max_num_training_steps)
    shard = slice(*dist.shard_bounds(batch))  # this rank's examples of each global batch
    if world > 1:
        params = dataclasses.replace(params, global_batch_size=batch)
    draw_start_noise = world > 1 and objective_info(cfg.training_objective).shares_start_noise(params.random_start)
    extra = {"model": cfg.model, "dataset": cfg.dataset, "training_objective": cfg.training_objective,
             "config_digest": cfg.digest(), "config": cfg_dict, "rng_cuda_device": device.index if device.type == "cuda" else None}

    def checkpoint(step: int, rng: dict[str, Any] | None = None, order_state: dict | None = None, *,
                   collective: bool = True) -> Path:
        """Rank 0 writes checkpoint ``step``; with ``collective`` the other ranks wait for it."""
        state = {**extra, "data_order": order_state or order.state_dict(), "metrics": last_record}

        def write() -> Path:
            return save_checkpoint(run_dir, step, model, optimizer, state=state, keep=cfg.keep_checkpoints,
                                   rng_state=rng)

        if not collective:  # a rank stopping on its own (Ctrl-C): no other rank is listening
            return write() if dist.is_main() else checkpoint_path(run_dir, step)
        return dist.run_on_main(write)

    log.info("training %s on %s into %s: steps %d..%d, batch %d, device %s, %d parameters",
             cfg.training_objective, cfg.dataset, run_dir, start, total, batch, device, models.parameter_count(model))
    if world > 1:
        log.info("data parallel: %d processes, this one (rank %d) takes examples %d..%d of each batch",
                 world, dist.rank(), shard.start, shard.stop - 1)
    main = dist.is_main()
    writer = optional_summary_writer(run_dir) if main else None
    bar = tqdm(total=total, initial=start, disable=not (progress and main), unit="step", dynamic_ncols=True,
               desc=f"{cfg.training_objective} {cfg.dataset}")
    stop_requested = False
    step, phase, snapshot = start, "idle", None
    began = window_time = time.perf_counter()
    window_step = start
    model.train()
    try:
        with deferred_sigint() as interrupt_requested:
            if total == start == 0:
                last_ckpt = checkpoint(0)  # nothing to train: keep the initial weights loadable
            while step < total:
                if stop_requested or (world == 1 and interrupt_requested()):
                    raise KeyboardInterrupt
                snapshot = (capture_rng_state(), order.state_dict())  # step-start state, for Ctrl-C
                phase = "forward"
                indices = order.next()
                x, y = split.batch(indices[shard] if world > 1 else indices)
                x, y = x.to(device), y.to(device)
                lr = learning_rate_at(cfg, step)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                step_params = params
                if cfg.epsilon_ramp_steps:
                    step_params = dataclasses.replace(params, epsilon=epsilon_at(cfg, step))
                if draw_start_noise:  # the draw a single process makes for the whole batch, then our slice
                    eps = check_epsilon(step_params.epsilon)
                    noise = uniform_noise((batch, *x.shape[1:]), eps, dtype=x.dtype, device=device)
                    step_params = dataclasses.replace(step_params, start_noise=noise[shard])
                out = objective(model, x, y, step_params)
                if world > 1:
                    out.loss.backward()
                    loss_value, stop_requested = combine_gradients(model, out.loss, interrupt_requested())
                else:
                    loss_value = out.loss.detach()
                if not math.isfinite(float(loss_value)):
                    where = last_ckpt if last_ckpt is not None else "none (no checkpoint was written)"
                    raise TrainingError(
                        f"loss is {float(loss_value)} at step {step} (before update {step + 1}); training "
                        f"stopped without saving these weights; last good checkpoint: {where}")
                if world == 1:
                    out.loss.backward()
                if step % cfg.num_output_steps == 0 or step % cfg.num_summary_steps == 0:
                    now = time.perf_counter()
                    rate = batch * (step - window_step) / (now - window_time) if step > window_step else None
                    window_time, window_step = now, step
                    logs = global_logs(out.logs, x.shape[0], batch) if world > 1 else out.logs
                    record = _record(step, lr, logs, rate)
                    if cfg.epsilon_ramp_steps:
                        record["epsilon"] = step_params.epsilon  # where the warm-up stands
                    if step % cfg.num_output_steps == 0:
                        last_record = record
                    _write_logs(cfg, step, record, metrics, bar, writer, quiet_bar=not progress and main)
                phase = "update"
                optimizer.step()
                step += 1
                phase = "idle"
                bar.update(1)
                if step % cfg.num_checkpoint_steps == 0 or step == total:
                    last_ckpt = checkpoint(step)
    except KeyboardInterrupt:
        # Under torchrun every rank stops after the same update (the request travels with the
        # gradients), but another rank may already be gone: no collective here.
        if phase == "forward" and snapshot is not None:  # weights untouched: rewind to the step start
            last_ckpt = checkpoint(step, *snapshot, collective=False)
        elif phase == "idle":
            last_ckpt = checkpoint(step, collective=False)
        else:  # inside optimizer.step(): the weights may be half-updated, so they are not saved
            log.warning("interrupted during an update; not saving a checkpoint of step %d", step)
        log.warning("interrupted at step %d; checkpoint %s", step, last_ckpt)
        raise
    finally:
        bar.close()
        if metrics is not None:
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
