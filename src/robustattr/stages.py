"""Resumable pipeline stages shared by ``robustattr demo`` and ``robustattr repro``.

A stage is finished when its files say so: a run is trained when its config asks for the same
number of steps and a checkpoint at that step exists; an evaluation is current when its result
file was computed on the latest checkpoint with the same settings. Anything else is (re)done,
and an interrupted training run is resumed rather than restarted.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from robustattr.config import Config
from robustattr.evaluation.results import read_result
from robustattr.run_files import read_run_config

__all__ = ["evaluation_is_current", "is_trained", "train_or_resume"]


def is_trained(cfg: Config) -> bool:
    """True when ``cfg.model_dir`` holds a checkpoint at ``cfg.max_num_training_steps`` of this run."""
    from robustattr.checkpoints import list_checkpoints

    run_dir = Path(cfg.model_dir)
    saved = run_dir / "config.json"
    if not saved.exists():
        return False
    same = read_run_config(run_dir).get("max_num_training_steps") == cfg.max_num_training_steps
    return same and max(list_checkpoints(run_dir), default=-1) >= cfg.max_num_training_steps


def train_or_resume(cfg: Config) -> str:
    """Train ``cfg`` unless finished; resume a run that has a checkpoint. Returns what was done:
    ``"reused"``, ``"resumed"`` or ``"trained"``."""
    from robustattr.checkpoints import list_checkpoints
    from robustattr.training import train

    if is_trained(cfg):
        return "reused"
    run_dir = Path(cfg.model_dir)
    if (run_dir / "config.json").exists() and list_checkpoints(run_dir):
        train(cfg.replace(continue_train=True))
        return "resumed"
    train(cfg, overwrite=True)
    return "trained"


# What a key absent from an older result file means: the files written before the key existed
# were computed with this value.
_ABSENT_MEANS = {"attribution_attack_flat_rule": "none"}


def evaluation_is_current(path: Path, cfg: Config, keys: Iterable[str]) -> bool:
    """True when the result file ``path`` was computed on the run's latest checkpoint with the
    values of ``keys`` that ``cfg`` has now (keys absent from the file are not compared, except
    those that older files lack and whose meaning is known, ``_ABSENT_MEANS``)."""
    from robustattr.checkpoints import list_checkpoints

    if not path.exists():
        return False
    result: dict[str, Any] = read_result(path)
    settings = cfg.to_dict()
    if settings.get("num_adversarial_examples") is None and "num_examples" in result:
        # None asks for AA on every evaluated image; the file records the count that resolved to.
        settings["num_adversarial_examples"] = result["num_examples"]
    result = {**_ABSENT_MEANS, **result}
    same_settings = all(result[k] == settings[k] for k in keys if k in result)
    return same_settings and result.get("checkpoint_step") == max(list_checkpoints(cfg.model_dir), default=None)
