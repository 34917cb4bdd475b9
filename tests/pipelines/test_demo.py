"""``robustattr demo`` end to end at a tiny budget: every stage, the report, the figure, and reuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustattr.pipelines.demo import DEMO_EVAL, DEMO_SETTINGS, run_demo

TINY = {
    "natural": {"max_num_training_steps": 30, "num_checkpoint_steps": 15},
    "ig-norm": {"max_num_training_steps": 4, "num_checkpoint_steps": 2,
                "learning_rate_schedule": [[0, 1e-3], [2, 1e-4]]},
    "evaluation": {"num_eval_examples": 200, "num_adversarial_examples": 20, "num_attribution_examples": 2,
                   "num_steps": 3, "attribution_attack_steps": 2, "num_IG_steps": 2},
}


@pytest.mark.slow
def test_demo_runs_every_stage_then_reuses_them(tmp_path: Path, mnist_root: Path) -> None:
    out = tmp_path / "demo"
    text = run_demo(out, data_root=str(mnist_root), budgets=TINY)
    for name in DEMO_SETTINGS:
        run = out / name
        for file in ("eval_pgd.json", "eval_attribution.json", "eval_attribution_strong.json"):
            assert (run / file).is_file(), f"{name}: {file}"
        pgd = json.loads((run / "eval_pgd.json").read_text())
        assert pgd["num_examples"] == 200 and pgd["num_adversarial_examples"] == 20
        assert json.loads((run / "config.json").read_text())["max_num_training_steps"] == TINY[name]["max_num_training_steps"]
    assert (out / "demo-figure.png").stat().st_size > 0 and (out / "demo-report.md").read_text() == text
    assert "| mnist | NATURAL |" in text and "| mnist | IG-NORM |" in text and "Stages:" in text
    # IG-NORM is fine-tuned from NATURAL's run (init_from), as the shipped demo does.
    assert json.loads((out / "ig-norm" / "config.json").read_text())["init_from"] == str(out / "natural")

    again = run_demo(out, data_root=str(mnist_root), budgets=TINY)
    stages = again.split("Stages: ")[1]
    assert stages.count("reused") == 2 + 3 * len(DEMO_SETTINGS), stages  # trainings and evaluations

    # A changed evaluation setting makes exactly the evaluations that depend on it stale.
    changed = {**TINY, "evaluation": {**TINY["evaluation"], "num_adversarial_examples": 30}}
    third = run_demo(out, data_root=str(mnist_root), budgets=changed).split("Stages: ")[1]
    assert "NA/AA natural: evaluated" in third and "NA/AA ig-norm: evaluated" in third
    assert "IN/CO natural: reused" in third and "IN/CO strong ig-norm: reused" in third


def test_demo_budgets_are_the_documented_ones() -> None:
    """The shipped budgets (docs/demo.md): what the README's time and NA cost were measured with."""
    assert DEMO_SETTINGS["natural"]["max_num_training_steps"] == 1000
    assert DEMO_EVAL["num_eval_examples"] == 10_000 and DEMO_EVAL["num_attribution_examples"] == 30
