"""When a pipeline stage's result file counts as current (``stages.evaluation_is_current``)."""

from __future__ import annotations

import json
from pathlib import Path

from robustattr.config import load_config
from robustattr.stages import evaluation_is_current

KEYS = ("num_adversarial_examples", "epsilon", "num_steps")


def _run(tmp_path: Path, checkpoint_step: int, **result: object) -> tuple[Path, Path]:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for suffix in (".json", ".safetensors"):  # list_checkpoints only needs both files to exist
        (run_dir / f"checkpoint-{checkpoint_step:08d}{suffix}").write_text("{}")
    path = run_dir / "eval_pgd.json"
    path.write_text(json.dumps({"checkpoint_step": checkpoint_step, "num_examples": 10000,
                                "num_adversarial_examples": 1000, "epsilon": 0.3, "num_steps": 40, **result}))
    return run_dir, path


def _cfg(run_dir: Path, **settings: object):
    return load_config(None, base={"dataset": "mnist", "model_dir": str(run_dir), "epsilon": 0.3, "num_steps": 40,
                                   "num_adversarial_examples": 1000, **settings})


def test_same_settings_on_the_latest_checkpoint_are_current(tmp_path: Path) -> None:
    run_dir, path = _run(tmp_path, 400)
    assert evaluation_is_current(path, _cfg(run_dir), KEYS)
    assert not evaluation_is_current(path, _cfg(run_dir, num_steps=20), KEYS)
    (run_dir / "checkpoint-00000500.json").write_text("{}")
    (run_dir / "checkpoint-00000500.safetensors").write_text("{}")
    assert not evaluation_is_current(path, _cfg(run_dir), KEYS)  # a newer checkpoint


def test_aa_on_every_image_matches_only_a_file_that_attacked_every_image(tmp_path: Path) -> None:
    run_dir, path = _run(tmp_path, 400)
    assert not evaluation_is_current(path, _cfg(run_dir, num_adversarial_examples=None), KEYS)  # 1,000 of 10,000
    path.write_text(json.dumps({**json.loads(path.read_text()), "num_adversarial_examples": 10000}))
    assert evaluation_is_current(path, _cfg(run_dir, num_adversarial_examples=None), KEYS)
    assert not evaluation_is_current(path, _cfg(run_dir), KEYS)  # asks for 1,000 again


def test_a_file_from_before_the_flat_rule_is_not_current_for_the_rule(tmp_path: Path) -> None:
    run_dir, path = _run(tmp_path, 400)  # written before attribution_attack_flat_rule existed
    keys = (*KEYS, "attribution_attack_flat_rule")
    assert not evaluation_is_current(path, _cfg(run_dir), keys)  # the default is random_sign
    assert evaluation_is_current(path, _cfg(run_dir, attribution_attack_flat_rule="none"), keys)
    path.write_text(json.dumps({**json.loads(path.read_text()), "attribution_attack_flat_rule": "random_sign"}))
    assert evaluation_is_current(path, _cfg(run_dir), keys)
