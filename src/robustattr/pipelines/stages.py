"""Resumable stages shared by the pipelines (``demo``, ``repro``, ``benchmark``).

A stage is finished when its files say so: a run is trained when its config asks for the same
number of steps and a checkpoint at that step exists; an evaluation is current when its result file
was computed on the latest checkpoint with the settings its driver says define the result
(``evaluation.accuracy.result_settings``, ``evaluation.attribution_robustness.result_settings``).
Anything else is (re)done, and an interrupted training run is resumed rather than restarted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robustattr.checkpoints import list_checkpoints
from robustattr.config import Config
from robustattr.evaluation import accuracy, attribution_robustness
from robustattr.evaluation.results import read_result
from robustattr.run_files import read_run_config

__all__ = ["is_trained", "train_or_resume", "result_is_current", "pgd_is_current", "attribution_is_current",
           "certify_is_current"]


def is_trained(cfg: Config) -> bool:
    """True when ``cfg.model_dir`` holds a checkpoint at ``cfg.max_num_training_steps`` of this run."""
    run_dir = Path(cfg.model_dir)
    saved = run_dir / "config.json"
    if not saved.exists():
        return False
    same = read_run_config(run_dir).get("max_num_training_steps") == cfg.max_num_training_steps
    return same and max(list_checkpoints(run_dir), default=-1) >= cfg.max_num_training_steps


def train_or_resume(cfg: Config, *, summary: dict[str, Any] | None = None) -> str:
    """Train ``cfg`` unless finished; resume a run that has a checkpoint. Returns what was done:
    ``"reused"``, ``"resumed"`` or ``"trained"``. ``summary``, when given, receives the training's
    own summary (``training.train``'s: ``steps_this_run``, ``seconds_per_step``, ...) if it trained."""
    from robustattr.training import train

    if is_trained(cfg):
        return "reused"
    run_dir = Path(cfg.model_dir)
    if (run_dir / "config.json").exists() and list_checkpoints(run_dir):
        done, status = train(cfg.replace(continue_train=True)), "resumed"
    else:
        done, status = train(cfg, overwrite=True), "trained"
    if summary is not None:
        summary.update(done)
    return status


# What a key absent from an older result file means: the files written before the key existed
# were computed with this value.
_ABSENT_MEANS = {"attribution_attack_flat_rule": "none"}


def result_is_current(path: Path, settings: Mapping[str, Any], run_dir: str | Path) -> bool:
    """True when the result file ``path`` exists, was computed on ``run_dir``'s latest checkpoint and
    records every one of ``settings`` with the same value (a key it lacks counts as different, unless
    older files lack it with a known meaning, ``_ABSENT_MEANS``)."""
    if not path.exists():
        return False
    result = read_result(path)
    return _records(result, settings) and result.get("checkpoint_step") == max(list_checkpoints(run_dir), default=None)


def _records(result: Mapping[str, Any], settings: Mapping[str, Any]) -> bool:
    """The result file's content ``result`` records every one of ``settings`` with the same value."""
    result = {**_ABSENT_MEANS, **result}
    wanted = json.loads(json.dumps(dict(settings)))  # tuples as the file has them: lists
    return all(key in result and result[key] == value for key, value in wanted.items())


def pgd_is_current(cfg: Config) -> bool:
    """``eval_pgd.json`` of ``cfg``'s run holds what ``evaluate_pgd(cfg)`` would compute."""
    return result_is_current(Path(cfg.model_dir) / accuracy.PGD_RESULT_FILE, accuracy.result_settings(cfg),
                             cfg.model_dir)


def attribution_is_current(cfg: Config) -> bool:
    """The attribution result file of ``cfg``'s evaluation (faithful or strong, by
    ``attribution_attack_method``) holds what ``evaluate_attribution(cfg)`` would compute."""
    name = attribution_robustness.result_files(cfg.attribution_attack_method)[0]
    return result_is_current(Path(cfg.model_dir) / name, _attribution_settings(cfg), cfg.model_dir)


def _attribution_settings(cfg: Config) -> dict[str, Any]:
    """What an attribution result file of ``cfg``'s evaluation records: its images and result settings."""
    images = cfg.dataset_info().split_sizes[cfg.eval_split]
    return {"num_examples": min(cfg.num_attribution_examples or cfg.num_eval_examples, images),
            **attribution_robustness.result_settings(cfg)}


def attribution_result_is_stale(path: Path, cfg: Config) -> bool:
    """True when ``path``, an attribution result file kept apart from its run (a benchmark unit's
    copy), records other settings than ``cfg``'s evaluation would use now — e.g. a strong result from
    an older portfolio, whose ``members`` differ. False when there is no such file."""
    return path.is_file() and not _records(read_result(path), _attribution_settings(cfg))


def certify_is_current(cfg: Config) -> bool:
    """``eval_certify.json`` of ``cfg``'s run holds what ``evaluate_certificate(cfg)`` would compute."""
    from robustattr.evaluation import certify

    images = cfg.dataset_info().split_sizes[cfg.eval_split]
    settings = certify.result_settings(cfg)  # result_is_current checks the checkpoint step itself
    settings["num_examples"] = min(cfg.num_attribution_examples or cfg.num_eval_examples, images)
    return result_is_current(Path(cfg.model_dir) / certify.CERTIFY_RESULT_FILE, settings, cfg.model_dir)
