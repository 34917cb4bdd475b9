"""The run directory's bookkeeping: refusing or clearing old runs, config.json, metrics.jsonl.

Files a run owns (and ``overwrite`` deletes): ``config.json``, ``metrics.jsonl``, ``checkpoint-*``,
TensorBoard ``events.out.tfevents.*`` and the evaluation results ``eval_*.json`` / ``eval_*.csv``
(they describe the old weights). Anything else in the folder is left alone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from robustattr.checkpoints import list_checkpoints
from robustattr.data._io import atomic_write_bytes
from robustattr.errors import UserInputError

__all__ = ["prepare_run_dir", "write_config", "MetricsLog", "RESUME_KEYS"]

log = logging.getLogger(__name__)

_OWNED = ("config.json", "metrics.jsonl", "checkpoint-*", ".checkpoint-*", "events.out.tfevents.*",
          "eval_*.json", "eval_*.csv")

#: Keys that define the optimisation: a resumed run must agree on them with the run it continues.
RESUME_KEYS = ("dataset", "model", "training_objective", "optimizer", "learning_rate", "step_size_schedule",
               "weight_decay", "momentum", "training_batch_size", "random_seed", "np_random_seed", "m",
               "lambda", "approx_factor", "epsilon", "num_steps", "step_size", "random_start", "loss_func",
               "loss_reduction", "init_from")


def _has_run(run_dir: Path) -> bool:
    return (run_dir / "config.json").exists() or bool(list_checkpoints(run_dir)) or (
        run_dir / "metrics.jsonl").exists()


def prepare_run_dir(run_dir: Path, cfg_dict: dict[str, Any], *, overwrite: bool, continue_train: bool) -> bool:
    """Make ``run_dir`` ready; return True when training should resume from its latest checkpoint.

    Raises:
        UserInputError: the folder holds a run and neither ``overwrite`` nor ``continue_train`` is set,
            or ``continue_train`` meets a run trained with different optimisation keys.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if not _has_run(run_dir):
        return False
    if overwrite:
        log.info("overwrite: clearing the previous run in %s", run_dir)
        for pattern in _OWNED:
            for path in run_dir.glob(pattern):
                if path.is_file():
                    path.unlink()
        return False
    if not continue_train:
        raise UserInputError(
            f"model_dir {run_dir} already holds a run; pass --overwrite to replace it, "
            "--set continue_train=true to resume it, or choose another model_dir"
        )
    old_path = run_dir / "config.json"
    if old_path.exists():
        try:
            old = json.loads(old_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UserInputError(f"{old_path} is not valid JSON ({exc})") from None
        changed = [k for k in RESUME_KEYS if k in old and old.get(k) != cfg_dict.get(k)]
        if changed:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {cfg_dict.get(k)!r}" for k in changed)
            raise UserInputError(
                f"continue_train: {run_dir} was trained with different settings ({detail}); "
                "resume with the same values, or start a new model_dir (init_from can load its weights)"
            )
    if not list_checkpoints(run_dir):
        log.warning("continue_train: no checkpoint in %s yet; starting from scratch", run_dir)
        return False
    return True


def write_config(run_dir: Path, cfg_dict: dict[str, Any]) -> None:
    """Write the resolved config as ``config.json`` atomically."""
    atomic_write_bytes(run_dir / "config.json", (json.dumps(cfg_dict, indent=2) + "\n").encode("utf-8"))


class MetricsLog:
    """Append-only ``metrics.jsonl``: one JSON object per logged step, flushed at once.

    On resume from step N the lines with ``step >= N`` (written after that checkpoint by the run
    that died) are dropped, so the file tells one history.
    """

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        if resume_step is not None and path.exists():
            kept = []
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line)["step"] < resume_step:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill
            path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        self._fh = open(path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
