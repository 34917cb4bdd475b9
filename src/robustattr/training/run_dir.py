"""The run directory's bookkeeping: refusing or clearing old runs, config.json, metrics.jsonl.

Files a run owns (and ``overwrite`` deletes): ``config.json``, ``metrics.jsonl``, ``checkpoint-*``,
TensorBoard ``events.out.tfevents.*`` and the evaluation results ``eval_*.json`` / ``eval_*.csv``
(they describe the old weights). Anything else in the folder is left alone.

:func:`plan_run` only reads, so a run that will be refused is refused before anything is created;
:func:`clear_run` deletes, and runs under the run directory's lock once the data is loaded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from robustattr.checkpoints import list_checkpoints
from robustattr.files import atomic_write_bytes, naming_write_errors, open_regular
from robustattr.errors import UserInputError
from robustattr.run_files import read_metrics, read_run_config
from robustattr.training.objectives.registry import resume_keys

__all__ = ["plan_run", "clear_run", "write_config", "MetricsLog"]

log = logging.getLogger(__name__)

_OWNED = ("config.json", "metrics.jsonl", "checkpoint-*", ".checkpoint-*", "events.out.tfevents.*",
          "eval_*.json", "eval_*.csv")

Plan = Literal["fresh", "overwrite", "resume"]


def _has_run(run_dir: Path) -> bool:
    return (run_dir / "config.json").exists() or bool(list_checkpoints(run_dir)) or (
        run_dir / "metrics.jsonl").exists()


def plan_run(run_dir: Path, cfg_dict: dict[str, Any], *, overwrite: bool, continue_train: bool) -> Plan:
    """What training ``cfg_dict`` into ``run_dir`` will do; reads only, creates nothing.

    Returns:
        ``"fresh"`` (no run there), ``"overwrite"`` (a run to clear first) or ``"resume"`` (from its
        latest checkpoint).

    Raises:
        UserInputError: ``run_dir`` is a file; it holds a run and neither ``overwrite`` nor
            ``continue_train`` is set; ``continue_train`` meets a run trained with different
            optimisation keys, or a damaged ``config.json``.
    """
    existing = next((p for p in (run_dir, *run_dir.parents) if p.exists()), run_dir)
    if existing.exists() and not existing.is_dir():
        where = "" if existing == run_dir else f": {existing} is"
        raise UserInputError(f"model_dir {run_dir}{where or ' is'} a file, not a directory; choose another model_dir")
    if not _has_run(run_dir):
        return "fresh"
    if overwrite:
        return "overwrite"
    if not continue_train:
        raise UserInputError(
            f"model_dir {run_dir} already holds a run; pass --overwrite to replace it, "
            "--set continue_train=true to resume it, or choose another model_dir"
        )
    if (run_dir / "config.json").exists():
        old = read_run_config(run_dir)
        changed = [k for k in resume_keys() if k in old and old.get(k) != cfg_dict.get(k)]
        if changed:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {cfg_dict.get(k)!r}" for k in changed)
            raise UserInputError(
                f"continue_train: {run_dir} was trained with different settings ({detail}); "
                "resume with the same values, or start a new model_dir (init_from can load its weights)"
            )
    if not list_checkpoints(run_dir):
        log.warning("continue_train: no checkpoint in %s yet; starting from scratch", run_dir)
        return "fresh"
    return "resume"


def clear_run(run_dir: Path) -> None:
    """Delete the files a run owns in ``run_dir`` (``--overwrite``); symbolic links go, not their targets."""
    log.info("overwrite: clearing the previous run in %s", run_dir)
    for pattern in _OWNED:
        for path in run_dir.glob(pattern):
            if path.is_symlink() or path.is_file():
                path.unlink()


def write_config(run_dir: Path, cfg_dict: dict[str, Any]) -> None:
    """Write the resolved config as ``config.json`` atomically."""
    atomic_write_bytes(run_dir / "config.json", (json.dumps(cfg_dict, indent=2) + "\n").encode("utf-8"))


class MetricsLog:
    """Append-only ``metrics.jsonl``: one JSON object per logged step, flushed at once.

    On resume from step N the lines with ``step >= N`` (written after that checkpoint by the run
    that died) are dropped, so the file tells one history; the file is rewritten atomically.
    A symbolic link at the path is refused, never written through.
    """

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        if path.is_symlink():
            raise UserInputError(f"{path} is a symbolic link; robustattr writes only regular files in a run "
                                 "directory and never through a link: remove the link")
        if resume_step is not None and path.exists():
            kept = [record for record in read_metrics(path) if record["step"] < resume_step]
            atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in kept).encode("utf-8"))
        self._fh = open_regular(path, "a")

    def write(self, record: dict[str, Any]) -> None:
        with naming_write_errors(self.path):
            self._fh.write(json.dumps(record) + "\n")
            self._fh.flush()

    def close(self) -> None:
        with naming_write_errors(self.path):
            self._fh.close()
