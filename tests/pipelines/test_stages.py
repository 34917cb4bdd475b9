"""When a pipeline stage's result file counts as current (``pipelines.stages``): the settings its
driver says define the result (``result_settings``), on the run's latest checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from robustattr.config import load_config
from robustattr.evaluation import accuracy
from robustattr.pipelines.stages import pgd_is_current, result_is_current


def _run(tmp_path: Path, checkpoint_step: int, **result: object) -> tuple[Path, Path]:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for suffix in (".json", ".safetensors"):  # list_checkpoints only needs both files to exist
        (run_dir / f"checkpoint-{checkpoint_step:08d}{suffix}").write_text("{}")
    path = run_dir / "eval_pgd.json"
    settings = accuracy.result_settings(_cfg(run_dir))
    path.write_text(json.dumps({"checkpoint_step": checkpoint_step, **settings, **result}))
    return run_dir, path


def _cfg(run_dir: Path, **settings: object):
    return load_config(None, base={"dataset": "mnist", "model_dir": str(run_dir), "epsilon": 0.3, "num_steps": 40,
                                   "num_adversarial_examples": 1000, **settings})


def test_same_settings_on_the_latest_checkpoint_are_current(tmp_path: Path) -> None:
    run_dir, _ = _run(tmp_path, 400)
    assert pgd_is_current(_cfg(run_dir))
    assert not pgd_is_current(_cfg(run_dir, num_steps=20))
    assert not pgd_is_current(_cfg(run_dir, random_seed=1))  # not in any hand-kept list before: a setting all the same
    (run_dir / "checkpoint-00000500.json").write_text("{}")
    (run_dir / "checkpoint-00000500.safetensors").write_text("{}")
    assert not pgd_is_current(_cfg(run_dir))  # a newer checkpoint


def test_aa_on_every_image_matches_only_a_file_that_attacked_every_image(tmp_path: Path) -> None:
    run_dir, path = _run(tmp_path, 400)
    assert not pgd_is_current(_cfg(run_dir, num_adversarial_examples=None))  # 1,000 of 10,000
    path.write_text(json.dumps({**json.loads(path.read_text()), "num_adversarial_examples": 10000}))
    assert pgd_is_current(_cfg(run_dir, num_adversarial_examples=None))
    assert not pgd_is_current(_cfg(run_dir))  # asks for 1,000 again


def test_a_file_lacking_a_setting_is_stale_unless_its_absence_has_a_known_meaning(tmp_path: Path) -> None:
    run_dir, path = _run(tmp_path, 400)
    assert not result_is_current(path, {"strong_budget": "standard"}, run_dir)  # written before the key existed
    assert result_is_current(path, {"attribution_attack_flat_rule": "none"}, run_dir)  # older files: "none"
    assert not result_is_current(path, {"attribution_attack_flat_rule": "random_sign"}, run_dir)
    path.write_text(json.dumps({**json.loads(path.read_text()), "attribution_attack_flat_rule": "random_sign"}))
    assert result_is_current(path, {"attribution_attack_flat_rule": "random_sign"}, run_dir)
