"""``robustattr benchmark DATASET --at-cost``: each finished unit's recipe cut to the steps that fit a
quarter of the reference's training cost, trained, evaluated, reported and counted in the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustattr.cli import main
from robustattr.errors import UserInputError
from robustattr.pipelines.at_cost import at_cost_steps
from tests.pipelines.test_benchmark import _write_recipes


def test_steps_fit_the_budget_after_the_start_run_and_the_margin() -> None:
    # 1 CPU s per step; budget 100 s: 95 s after the 5 % margin, less NATURAL's 72.1 s: 22 steps.
    cost = {"train_cpu_seconds": 500.0, "train_steps": 500, "init_from_train_cpu_seconds": 72.1,
            "init_from_train_core_seconds": 80.0}
    assert at_cost_steps(cost, 100.0) == 22
    # A unit written before the start run's CPU time was recorded: its wall × threads instead.
    assert at_cost_steps({**cost, "init_from_train_cpu_seconds": None}, 100.0) == 15
    assert at_cost_steps(cost, 50.0) == 0  # NATURAL alone is over the budget
    with pytest.raises(UserInputError, match="train_cpu_seconds"):
        at_cost_steps({"train_steps": 10}, 100.0)


def _fake_full_unit(results: Path, method: str, cost: dict) -> None:
    """A finished full unit as the at-cost pipeline reads it: only its ``unit.json`` cost matters."""
    folder = results / "mnist" / method
    folder.mkdir(parents=True)
    (folder / "unit.json").write_text(json.dumps({"method": method, "init_from": None, "cost": cost}))


@pytest.mark.slow
def test_at_cost_units_train_the_cut_recipe_and_enter_the_verdict(mnist_root, tmp_path, capsys) -> None:
    runs, results = tmp_path / "runs", tmp_path / "results"
    recipes = _write_recipes(tmp_path, runs)
    args = ["benchmark", "mnist", "--recipes", str(recipes), "--results", str(results), "--root", str(mnist_root)]

    assert main([*args, "--at-cost"]) == 2  # no reference unit yet: one line, nothing written
    err = capsys.readouterr().err
    assert "--at-cost needs the ig-sum-norm unit" in err and len(err.strip().splitlines()) == 1
    assert not runs.exists()

    # Reference: 20 CPU s of training, so the budget is 5 s: 4.75 s after the margin, less the start
    # run's 0.75 s, at LGA's 1 s per step: 4 steps.
    _fake_full_unit(results, "ig-sum-norm", {"total_train_cpu_seconds": 20.0})
    _fake_full_unit(results, "lga", {"train_cpu_seconds": 100.0, "train_steps": 100,
                                     "init_from_train_cpu_seconds": 0.75, "total_train_cpu_seconds": 100.75})
    _fake_full_unit(results, "natural", {"total_train_cpu_seconds": 0.75, "train_cpu_seconds": 0.75,
                                         "train_steps": 40})
    capsys.readouterr()
    assert main([*args, "--at-cost"]) == 0
    text = capsys.readouterr().out
    unit = json.loads((results / "mnist" / "at-cost-25" / "lga" / "unit.json").read_text())
    assert unit["train_steps"] == 4 and unit["at_cost"]["budget_cpu_seconds"] == 5.0
    assert unit["phases"]["train_init"]["status"] == "trained"  # NATURAL trained first, here
    run_dir = Path(unit["run_dir"])
    assert run_dir == runs.with_name("runs-at-cost-25") / "lga" and (run_dir / "checkpoint-00000004.safetensors").is_file()
    strong = json.loads((results / "mnist" / "at-cost-25" / "lga" / "eval_attribution_strong.json").read_text())
    assert strong["attribution_attack_method"] == "strong" and strong["num_examples"] == 3
    assert strong["checkpoint_step"] == 4
    assert unit["cost"]["total_train_cpu_seconds"] > 0
    assert "natural: its full unit already costs ≤ 25%" in text
    assert "## At 25% of IG-SUM-NORM's training cost" in text and "| LGA | 4 |" in text
    assert (results / "mnist" / "report.md").read_text() == text

    # Finished: skipped, nothing retrained.
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    assert main([*args, "--at-cost", "--methods", "lga"]) == 0
    assert "finished before (4 steps)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()} == before

    # A named method whose full unit is not finished is refused.
    assert main([*args, "--at-cost", "--methods", "igr"]) == 2
    assert "its full unit is not finished" in capsys.readouterr().err
