"""Starting a run from saved state: ``init_from``'s weights, and resuming from the latest checkpoint.

A resumed run restores weights, optimizer, torch/NumPy RNG and data-order state (spec §3.4), so on
CPU the weights after N steps equal an uninterrupted run's bit for bit; every part is checked
before training goes on, and a part that does not fit is one ``UserInputError`` naming it.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustattr.checkpoints import (
    check_run_config, latest_checkpoint, load_checkpoint, load_optimizer_state, restore_rng_state,
)
from robustattr.errors import UserInputError
from robustattr.json_files import check_shape, record
from robustattr.training.data_order import ORDER_STATE

__all__ = ["read_init", "load_init", "read_resume_state", "resume_from", "restore_training_device_rng"]

log = logging.getLogger(__name__)


def read_init(cfg: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``init_from``'s weights and sidecar, checked against the config's model."""
    source = Path(cfg.init_from)
    if not source.exists():
        raise UserInputError(f"init_from {source} does not exist: give a run directory or a checkpoint file")
    state_dict, meta = load_checkpoint(source)
    if meta.get("model", cfg.model) != cfg.model:
        raise UserInputError(f"init_from {source} holds a '{meta['model']}' model, the config asks for '{cfg.model}'")
    return state_dict, meta


def load_init(model: nn.Module, cfg: Any, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """``init_from``: weights only (a fresh optimizer, step 0) from a run dir or checkpoint file."""
    source = Path(cfg.init_from)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise UserInputError(f"init_from {source} does not fit model '{cfg.model}': "
                             f"{str(exc).strip().splitlines()[0]}") from None
    log.info("initialised from %s (step %s of that run)", source, meta.get("step"))


def restore_training_device_rng(meta: dict[str, Any], device: torch.device) -> None:
    """Give this rank's GPU the RNG state of the GPU the checkpoint's run drew from.

    ``restore_rng_state`` restores every GPU's state by index, but a rank computes on
    ``cuda:LOCAL_RANK`` while the checkpoint came from a process that drew on ``rng_cuda_device``
    (rank 0's GPU, or a single process's): without this the random starts would diverge on resume.
    """
    saved = meta.get("rng", {}).get("torch_cuda")
    source = meta.get("rng_cuda_device")
    if device.type != "cuda" or not saved or source is None or source >= len(saved) or source == device.index:
        return
    state = torch.frombuffer(bytearray(base64.b64decode(saved[source])), dtype=torch.uint8).clone()
    torch.cuda.set_rng_state(state, device=device)


def read_resume_state(run_dir: Path) -> dict[str, Any]:
    """The latest checkpoint of ``run_dir``: its path, weights, sidecar and optimizer state.

    The sidecar must carry a data-order state, and the run's ``config.json`` must describe it.
    """
    path = latest_checkpoint(run_dir)
    state_dict, meta = load_checkpoint(path)
    check_shape(meta, record({"data_order": ORDER_STATE}), kind="checkpoint sidecar", path=path.with_suffix(".json"),
                fix="delete this checkpoint to fall back to an older one, or start again with --overwrite")
    check_run_config(run_dir, meta, path)
    return {"path": path, "model": state_dict, "meta": meta, "optimizer": load_optimizer_state(path)}


def resume_from(saved: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, order: Any,
            device: torch.device, cfg: Any) -> int:
    """Load a checkpoint read by :func:`read_resume_state` into the run; return its step.

    Every part is checked before training goes on: a checkpoint that does not fit the model or
    the optimizer, or whose data order or RNG state is damaged, is one ``UserInputError``.
    """
    path, meta = saved["path"], saved["meta"]

    def refuse(what: str, exc: BaseException) -> UserInputError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return UserInputError(f"checkpoint {path} cannot be resumed: {what} ({first}); delete it to fall "
                              "back to an older one, or start again with --overwrite")

    try:
        model.load_state_dict(saved["model"], strict=True)
    except RuntimeError as exc:
        raise refuse(f"its weights do not fit model '{cfg.model}'", exc) from None
    if saved["optimizer"] is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        try:
            for index, slots in saved["optimizer"]["state"].items():
                for slot, value in slots.items():
                    if isinstance(value, torch.Tensor) and value.ndim and value.shape != params[index].shape:
                        raise ValueError(f"{slot} of parameter {index} has shape {tuple(value.shape)}, "
                                         f"the parameter {tuple(params[index].shape)}")
            optimizer.load_state_dict(saved["optimizer"])
        except (ValueError, KeyError, IndexError, TypeError, RuntimeError) as exc:
            raise refuse(f"its optimizer state does not fit the '{cfg.optimizer}' optimizer", exc) from None
    try:
        order.load_state_dict(meta["data_order"])
    except (ValueError, KeyError, TypeError) as exc:
        raise refuse("its data order does not fit this training set", exc) from None
    try:
        restore_rng_state(meta["rng"])
        restore_training_device_rng(meta, device)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise refuse("its RNG state is damaged", exc) from None
    return int(meta["step"])
