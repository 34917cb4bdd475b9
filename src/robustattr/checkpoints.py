"""Checkpoints as plain data: ``.safetensors`` tensors plus a JSON sidecar, never a pickle.

Layout in a run directory (``model_dir``)::

    checkpoint-00000300.safetensors   model weights ("model.<name>") and optimizer tensors
                                      ("optimizer.<param index>.<key>")
    checkpoint-00000300.json          the sidecar: step, optimizer hyper-parameters and non-tensor
                                      state, RNG states (base64), data-iterator state, config digest,
                                      robustattr version, sha256 and size of the .safetensors file

Numbering: the checkpoint at step N holds the weights after N optimizer updates (the original
saved *before* the update, spec §3.4/§10.12; we save after it, so the final weights are kept).
Both files are written to a temporary name, fsynced and renamed; the sidecar goes last, so a
weights file without its sidecar (a crash in between) is ignored, and the sidecar's digest
catches a weights file that was changed or truncated afterwards.

Every sidecar is read through ``robustattr.json_files`` and checked against :data:`SIDECAR`
(types, base64, the step its file name gives), so a damaged one is a one-line error naming it. The
sidecar written by training also holds the resolved config and its digest: evaluations and resume
refuse a checkpoint whose training settings disagree with the run's ``config.json``.

Written by ``robustattr.training``, read by ``robustattr.evaluation`` (which may not import
training): this module imports only ``models``, ``data``, ``json_files``, ``run_files`` and ``errors``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from robustattr.files import atomic_write_bytes, naming_write_errors, refuse_link
from robustattr.errors import UserInputError
from robustattr.json_files import (
    ANY, BASE64, INT, NUMBER, SHA256, STR, Shape, at_least_int, dict_of, list_of, nullable, read_json, record,
)
from robustattr.run_files import ABSENT_RESUME_KEYS, read_run_config
from robustattr.training.objectives.registry import resume_keys

__all__ = [
    "save_checkpoint",
    "checkpoint_path",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_optimizer_state",
    "capture_rng_state",
    "restore_rng_state",
    "load_run_model",
    "check_run_config",
    "SIDECAR",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_NAME = re.compile(r"^checkpoint-(\d+)\.json$")

_RNG = record(
    {"torch_cpu": BASE64,
     "numpy": record({"name": STR, "keys": BASE64, "pos": INT, "has_gauss": INT, "cached_gaussian": NUMBER})},
    optional={"torch_cuda": list_of(BASE64)},
)
_PARAM_INDEX = Shape("a parameter index (digits)", lambda k: isinstance(k, str) and k.isdigit())
_OPTIMIZER = record({"class": STR, "param_groups": list_of(record({"params": list_of(INT)})),
                     "state": dict_of(dict_of(ANY), key=_PARAM_INDEX)})
#: What every sidecar must look like (training adds ``data_order``, checked when resuming).
SIDECAR = record(
    {"step": at_least_int(0), "weights_sha256": SHA256, "rng": _RNG},
    optional={"format_version": INT, "weights_bytes": at_least_int(0), "optimizer": nullable(_OPTIMIZER),
              "model": STR, "config_digest": STR, "config": dict_of(ANY), "metrics": nullable(dict_of(ANY)),
              "rng_cuda_device": nullable(INT)},
)
_SIDECAR_FIX = "delete this checkpoint (its .json and .safetensors) to fall back to an older one, or retrain"


def _paths(run_dir: Path, step: int) -> tuple[Path, Path]:
    stem = run_dir / f"checkpoint-{step:08d}"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().contiguous().numpy().tobytes()).decode("ascii")


def capture_rng_state() -> dict[str, Any]:
    """JSON-able RNG states: torch CPU, every initialised CUDA device, NumPy's global generator."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch_cpu": _b64(torch.get_rng_state()),
        "numpy": {"name": np_state[0], "keys": base64.b64encode(np_state[1].tobytes()).decode("ascii"),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states only where CUDA is available)."""

    def tensor(text: str) -> torch.Tensor:
        return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()

    torch.set_rng_state(tensor(state["torch_cpu"]))
    cuda = state.get("torch_cuda")
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([tensor(s) for s in cuda])
        else:
            log.warning("checkpoint has RNG states of %d CUDA devices, this machine %d: not restored",
                        len(cuda), torch.cuda.device_count())
    npst = state["numpy"]
    keys = np.frombuffer(base64.b64decode(npst["keys"]), dtype=np.uint32).copy()
    np.random.set_state((npst["name"], keys, npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))


def _split_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state_dict → (tensors for safetensors, JSON-able rest)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for idx, slots in sd["state"].items():
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{idx}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                plain.setdefault(str(idx), {})[key] = value
    return tensors, {"class": type(optimizer).__name__, "param_groups": sd["param_groups"], "state": plain}


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    state: dict[str, Any] | None = None,
    keep: int | None = 3,
    rng_state: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint ``step`` of ``model`` (and ``optimizer``) into ``run_dir`` atomically.

    Args:
        run_dir: the run directory; created if missing.
        step: number of optimizer updates the weights have seen (≥ 0).
        model: its ``state_dict`` tensors are saved on CPU under ``model.<name>``.
        optimizer: optional; its tensors go to the ``.safetensors`` file, the rest to the sidecar.
        state: extra JSON-able data for the sidecar (data-iterator state, config digest, metrics).
        keep: keep only the newest ``keep`` checkpoints (None: keep all).
        rng_state: a :func:`capture_rng_state` result taken earlier (default: captured now).

    Returns:
        Path of the ``.safetensors`` file.
    """
    run_dir = Path(run_dir)
    with naming_write_errors(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    opt_meta = None
    if optimizer is not None:
        opt_tensors, opt_meta = _split_optimizer(optimizer)
        tensors.update(opt_tensors)
    # One metadata entry: safetensors writes its metadata map in hash order, which changes from call
    # to call, so with two entries the same weights made files (and checkpoint_sha256) that differ.
    blob = safetensors_bytes(tensors, metadata={"format": f"robustattr-checkpoint step {step}"})
    weights, sidecar = _paths(run_dir, step)
    from robustattr import __version__

    meta = {
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "robustattr_version": __version__,
        "torch_version": torch.__version__,
        "weights_file": weights.name,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "weights_bytes": len(blob),
        "optimizer": opt_meta,
        "rng": rng_state if rng_state is not None else capture_rng_state(),
        **(state or {}),
    }
    atomic_write_bytes(weights, blob)
    atomic_write_bytes(sidecar, json.dumps(meta, indent=1).encode("utf-8"))  # last: marks it complete
    log.debug("saved checkpoint %s", weights)
    if keep is not None:
        for old in list_checkpoints(run_dir)[:-keep]:
            old_weights, old_sidecar = _paths(run_dir, old)
            old_sidecar.unlink(missing_ok=True)  # sidecar first: a half-deleted one is never trusted
            old_weights.unlink(missing_ok=True)
    return weights


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    """The ``.safetensors`` path checkpoint ``step`` of ``run_dir`` has (whether or not it exists)."""
    return _paths(Path(run_dir), step)[0]


def list_checkpoints(run_dir: str | Path) -> list[int]:
    """Steps of the complete checkpoints (sidecar and weights present) in ``run_dir``, ascending."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    steps = []
    for p in run_dir.iterdir():
        match = _NAME.match(p.name)
        if match and p.with_suffix(".safetensors").is_file():
            steps.append(int(match.group(1)))
    return sorted(steps)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The ``.safetensors`` path of the newest complete checkpoint in ``run_dir``, or None."""
    steps = list_checkpoints(run_dir)
    return _paths(Path(run_dir), steps[-1])[0] if steps else None


def _resolve(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise UserInputError(f"no checkpoint in {path}; train first: robustattr train CONFIG")
        path = latest
    weights, sidecar = path.with_suffix(".safetensors"), path.with_suffix(".json")
    for part in (sidecar, weights):  # a checkpoint is two regular files, never links to elsewhere
        refuse_link(part)
    if not weights.is_file() or not sidecar.is_file():
        raise UserInputError(
            f"checkpoint {weights} is incomplete or missing: need both {weights.name} and {sidecar.name}"
        )
    return weights, sidecar


def _read_sidecar(sidecar: Path) -> dict[str, Any]:
    """The sidecar, checked against :data:`SIDECAR` and against the step in its file name."""
    meta = read_json(sidecar, SIDECAR, kind="checkpoint sidecar", fix=_SIDECAR_FIX)
    named = _NAME.match(sidecar.name)
    if named and int(named.group(1)) != meta["step"]:
        raise UserInputError(f"checkpoint sidecar {sidecar} is corrupt: it says step {meta['step']}, its file "
                             f"name step {int(named.group(1))}; {_SIDECAR_FIX}")
    return meta


def _read(path: str | Path, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any], Path]:
    weights, sidecar = _resolve(path)
    meta = _read_sidecar(sidecar)
    expected = meta["weights_sha256"]
    blob = weights.read_bytes()
    if len(blob) != meta.get("weights_bytes", len(blob)) or hashlib.sha256(blob).hexdigest() != expected:
        raise UserInputError(
            f"checkpoint {weights} is truncated or corrupt (size/sha256 differ from {sidecar.name}); "
            "delete it to fall back to an older one, or retrain"
        )
    try:
        with safe_open(str(weights), framework="pt", device="cpu") as fh:
            tensors = {k[len(prefix):]: fh.get_tensor(k) for k in fh.keys() if k.startswith(prefix)}
    except (SafetensorError, OSError) as exc:
        raise UserInputError(f"checkpoint {weights} cannot be read: {exc}") from None
    return tensors, meta, weights


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read the model weights and the sidecar of a checkpoint; nothing is unpickled.

    Args:
        path: the ``.safetensors`` or ``.json`` file of a checkpoint, or a run directory (its latest).

    Returns:
        ``(state_dict, meta)``: CPU tensors keyed like ``model.state_dict()``, and the sidecar dict
        (``step``, ``rng``, ``optimizer``, ``data``, ``config_digest``, ...).

    Raises:
        UserInputError: naming the path, when a file is missing, truncated or corrupt.
    """
    tensors, meta, _ = _read(path, "model.")
    return tensors, meta


def load_optimizer_state(path: str | Path) -> dict[str, Any] | None:
    """Rebuild the ``optimizer.state_dict()`` saved with a checkpoint (None if none was saved)."""
    tensors, meta, _ = _read(path, "optimizer.")
    opt = meta.get("optimizer")
    if opt is None:
        return None
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        idx, slot = key.split(".", 1)
        state.setdefault(int(idx), {})[slot] = value
    for idx, slots in opt["state"].items():
        state.setdefault(int(idx), {}).update(slots)
    return {"state": state, "param_groups": opt["param_groups"]}


def load_run_model(cfg: Any, device: str | torch.device | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build ``cfg.model`` and load the latest checkpoint of ``cfg.model_dir`` into it.

    Args:
        cfg: a ``robustattr.config.Config`` (uses ``model``, ``dataset``, ``model_dir``, ``device``).
        device: where to put the model (default: ``resolve_device(cfg.device)``).

    Returns:
        ``(model, meta)``: the model in eval mode on ``device``, and the checkpoint's sidecar.

    Raises:
        UserInputError: no checkpoint in the run dir, or one that does not fit the architecture.
    """
    from robustattr import models

    run_dir = Path(cfg.model_dir)
    latest = latest_checkpoint(run_dir)
    if latest is None:
        raise UserInputError(f"no checkpoint in {run_dir}; train first: robustattr train CONFIG")
    state_dict, meta = load_checkpoint(latest)
    check_run_config(run_dir, meta, latest)
    if meta.get("model", cfg.model) != cfg.model:
        raise UserInputError(f"checkpoint {latest} holds a '{meta['model']}' model, the config asks for '{cfg.model}'")
    info = cfg.dataset_info()
    model = models.create(cfg.model, info.num_classes, info.image_shape)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserInputError(f"checkpoint {latest} does not fit model '{cfg.model}': {first}") from None
    if device is None:
        from robustattr.devices import resolve_device

        device = resolve_device(cfg.device)
    return model.to(device).eval(), meta


def config_digest(config: dict[str, Any]) -> str:
    """sha256 of a resolved config's canonical JSON; equals ``Config.digest()`` of the same values."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_run_config(run_dir: str | Path, meta: dict[str, Any], checkpoint: str | Path) -> None:
    """Refuse a checkpoint that a configuration other than the run's ``config.json`` trained.

    The sidecar's ``config_digest`` must match ``run_dir/config.json``; where it does not (a resumed
    run rewrites config.json with its new budget before its first checkpoint), the sidecar's own
    copy of the config must agree with config.json on :func:`~robustattr.training.objectives.resume_keys`. Nothing is compared when
    either side is absent (a checkpoint saved outside training, a run without config.json).

    Raises:
        UserInputError: naming both files and the keys that differ.
    """
    config_file = Path(run_dir) / "config.json"
    recorded = meta.get("config_digest")
    if recorded is None or not config_file.exists():
        return
    config = read_run_config(run_dir)
    if config_digest(config) == recorded:
        return
    trained = meta.get("config")
    if isinstance(trained, dict):
        differing = [key for key in resume_keys()
                     if trained.get(key, ABSENT_RESUME_KEYS.get(key)) != config.get(key, ABSENT_RESUME_KEYS.get(key))]
        if not differing:
            return
        detail = "; ".join(f"{key} {json.dumps(trained.get(key))} there, {json.dumps(config.get(key))} here"
                           for key in differing[:3]) + ("; ..." if len(differing) > 3 else "")
    else:
        detail = "its config_digest differs from this config.json's"
    raise UserInputError(
        f"{config_file} does not describe checkpoint {checkpoint} ({detail}): the run directory mixes two "
        "runs; retrain it (robustattr train CONFIG --overwrite) or put back the config.json it was trained with")
